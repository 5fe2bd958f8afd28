"""Make a tiny fake COVID-19 Radiography Database: class folders of small grayscale PNGs.

`COVID` and `Normal` are flat (early releases); `Viral Pneumonia` keeps its images in `images/` beside a
`masks/` folder (v4). Run as a script to write it to ./COVID-19_Radiography_Dataset.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

LAYOUT = {"COVID": ("COVID", False), "Normal": ("Normal", False), "Viral Pneumonia": ("Viral Pneumonia", True)}


def create(root: Path, per_class: int = 6, size: int = 40) -> Path:
    base = Path(root) / "COVID-19_Radiography_Dataset"
    rng = np.random.default_rng(0)
    for folder, (stem, nested) in LAYOUT.items():
        directory = base / folder / "images" if nested else base / folder
        directory.mkdir(parents=True, exist_ok=True)
        if nested:
            (base / folder / "masks").mkdir(exist_ok=True)
        for i in range(1, per_class + 1):
            cv2.imwrite(str(directory / f"{stem}-{i}.png"), rng.integers(0, 256, (size, size), dtype=np.uint8))
    (base / "COVID.metadata.xlsx").write_bytes(b"not read")  # v4 ships these; the reader ignores them
    return base


if __name__ == "__main__":
    print(create(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
