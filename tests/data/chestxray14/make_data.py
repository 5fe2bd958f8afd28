"""Make a tiny fake NIH ChestX-ray14: Data_Entry_2017_v2020.csv.gz (the real header) listing 24 images of 10
patients, 21 of them on disk split over images_001/images/ and images_002/images/ (3 listed, absent, as in a
subset), with the official train_val_list.txt / test_list.txt. Some images are RGBA, like the NIH1000 subset.
Run as a script to write it to ./ChestX-ray14.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import cv2
import numpy as np

HEADER = "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
LABELS = [
    "Cardiomegaly", "Cardiomegaly|Emphysema", "No Finding",  # patient 1
    "No Finding", "Effusion|Infiltration",  # 2
    "Hernia", "No Finding",  # 3
    "Atelectasis|Effusion|Mass", "Nodule",  # 4
    "No Finding", "Pneumothorax", "Consolidation",  # 5
    "Edema", "Fibrosis|Pleural_Thickening",  # 6
    "Pneumonia", "Infiltration",  # 7
    "No Finding", "Emphysema",  # 8
    "No Finding", "Effusion",  # 9 (test list)
    "Mass|Nodule", "No Finding",  # 10 (test list)
    "No Finding", "Cardiomegaly",  # 11
]
PATIENTS = [1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11]
ABSENT = {"00000003_001.png", "00000008_000.png", "00000011_001.png"}
TEST_PATIENTS = {9, 10}


def names() -> list[str]:
    counters: dict[int, int] = {}
    result = []
    for patient in PATIENTS:
        follow_up = counters.get(patient, 0)
        counters[patient] = follow_up + 1
        result.append(f"{patient:08d}_{follow_up:03d}.png")
    return result


def create(root: Path, size: int = 64) -> Path:
    base = Path(root) / "ChestX-ray14"
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = [HEADER]
    for i, (name, label, patient) in enumerate(zip(names(), LABELS, PATIENTS)):
        view = "AP" if i % 3 == 0 else "PA"
        lines.append(f"{name},{label},{int(name[9:12])},{patient},{40 + patient},{'MF'[i % 2]},{view},2500,2048,0.143,0.143")
        if name in ABSENT:
            continue
        folder = base / ("images_001" if patient <= 5 else "images_002") / "images"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (size, size, 4 if i % 4 == 0 else 3), dtype=np.uint8)
        cv2.imwrite(str(folder / name), pixels)
    with gzip.open(base / "Data_Entry_2017_v2020.csv.gz", "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    test = [n for n, p in zip(names(), PATIENTS) if p in TEST_PATIENTS]
    (base / "test_list.txt").write_text("\n".join(test) + "\n")
    (base / "train_val_list.txt").write_text("\n".join(n for n in names() if n not in test) + "\n")
    return base


if __name__ == "__main__":
    print(create(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
