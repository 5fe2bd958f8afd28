"""Make a tiny fake data root holding several datasets in their native layouts, with planted duplicates across them.

The layouts come from the datasets' own makers (tests/data/<dataset>/make_data.py); every decodable image is then
repainted with a distinct smooth random image (so that only the planted copies are near-duplicates), and
``PLANTED`` copies are written: ``near`` = resized to 3/4 and re-encoded (JPEG quality 80 / PNG), ``identical`` = the
same bytes. Run as a script to write it to ./combined-root.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
SUFFIXES = {".png", ".jpg", ".jpeg"}
COMPONENTS = ("covid19_radiography", "cohen_covid", "covidx_ray_5k", "chestxray14")
# (original, copy, kind), paths relative to the data root; the copy overwrites an image of another dataset.
PLANTED = (
    ("COVID-19_Radiography_Dataset/COVID/COVID-1.png", "covid-chestxray-dataset/images/c18.png", "near"),
    ("COVID-19_Radiography_Dataset/Normal/Normal-2.png", "covid-chestxray-dataset/images/nf11.png", "identical"),
    ("COVID-19_Radiography_Dataset/COVID/COVID-3.png", "covid-chestxray-dataset/images/c19.png", "near"),
    ("COVID-19_Radiography_Dataset/Normal/Normal-4.png", "covid-chestxray-dataset/images/nf12.png", "near"),
    ("covid-chestxray-dataset/images/c1-l.jpg", "COVID-19_Radiography_Dataset/COVID/COVID-5.png", "near"),  # a lateral view
    ("data/test/covid/lancet-case2a.jpg", "covid-chestxray-dataset/images/c4.jpeg", "near"),  # COVID-Xray-5k test in Cohen
    ("data/test/non/00000101.jpg", "covid-chestxray-dataset/images/leg16-pa2.jpg", "near"),  # and a patient with 2 images
)


def _maker(dataset: str):
    spec = importlib.util.spec_from_file_location(f"make_{dataset}", HERE.parent / dataset / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def smooth_image(seed: int, size: int = 64) -> np.ndarray:
    """A distinct, X-ray-like smooth grey image: low-frequency random field plus a little noise."""
    rng = np.random.default_rng([20240, seed])
    field = cv2.resize(rng.random((6, 6)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    field = (field - field.min()) / max(float(field.max() - field.min()), 1e-6)
    return np.clip(field * 220 + 20 + rng.normal(0, 3, (size, size)), 0, 255).astype(np.uint8)


def write(path: Path, pixels: np.ndarray, quality: int = 95) -> None:
    suffix = ".png" if path.suffix.lower() == ".png" else ".jpg"
    ok, data = cv2.imencode(suffix, pixels, [cv2.IMWRITE_JPEG_QUALITY, quality] if suffix == ".jpg" else [])
    path.write_bytes(data.tobytes())


def create(root: Path, components: tuple[str, ...] = COMPONENTS, planted=PLANTED) -> Path:
    root = Path(root)
    for dataset in components:
        _maker(dataset).create(root)
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file() and not p.name.startswith("."))
    for seed, path in enumerate(images):
        if cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None:  # corrupt files the makers planted stay corrupt
            write(path, smooth_image(seed))
    for original, copy, kind in planted:
        source, target = root / original, root / copy
        if not (source.exists() and target.parent.is_dir()):
            continue
        if kind == "identical":
            shutil.copyfile(source, target)
        else:
            pixels = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE)
            height, width = pixels.shape
            write(target, cv2.resize(pixels, (width * 3 // 4, height * 3 // 4), interpolation=cv2.INTER_AREA), quality=80)
    return root


if __name__ == "__main__":
    print(create(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd() / "combined-root"))
