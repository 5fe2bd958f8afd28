"""Make a tiny fake CheXpert-v1.0-small: train.csv / valid.csv (the real 19 columns; 1.0, 0.0, -1.0 and blank
cells) and train|valid/patientNNNNN/studyK/viewJ_{frontal,lateral}.jpg. Paths in the CSVs start with
'CheXpert-v1.0-small/', as published. Run as a script to write it to ./CheXpert-v1.0-small.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import cv2
import numpy as np

OBSERVATIONS = [
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture",
    "Support Devices",
]
HEADER = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA"] + OBSERVATIONS

# (patient, study, view, AP/PA, {observation: value}); value "1.0", "0.0", "-1.0"; unlisted = blank
TRAIN = [
    (1, 1, "frontal", "AP", {"No Finding": "1.0", "Support Devices": "1.0"}),
    (1, 1, "lateral", "", {"No Finding": "1.0", "Support Devices": "1.0"}),
    (1, 2, "frontal", "AP", {"Cardiomegaly": "1.0", "Edema": "-1.0"}),
    (2, 1, "frontal", "PA", {"Atelectasis": "-1.0", "Pleural Effusion": "1.0", "Edema": "0.0"}),
    (3, 1, "frontal", "AP", {"Consolidation": "1.0"}),
    (3, 1, "lateral", "", {"Consolidation": "1.0"}),
    (4, 1, "frontal", "PA", {"No Finding": "1.0"}),
    (5, 1, "frontal", "AP", {"Cardiomegaly": "-1.0", "Lung Opacity": "1.0"}),
    (6, 1, "frontal", "PA", {"Pneumothorax": "1.0", "Fracture": "0.0"}),
    (7, 1, "frontal", "AP", {"Edema": "1.0", "Pleural Effusion": "-1.0"}),
    (8, 1, "frontal", "PA", {"No Finding": "1.0"}),
    (9, 1, "frontal", "AP", {"Lung Lesion": "1.0"}),
    (10, 1, "frontal", "AP", {"Atelectasis": "1.0"}),
]
VALID = [
    (64541, 1, "frontal", "AP", {"Cardiomegaly": "1.0", "Edema": "1.0"}),
    (64542, 1, "frontal", "PA", {"No Finding": "1.0"}),
    (64542, 1, "lateral", "", {"No Finding": "1.0"}),
    (64543, 1, "frontal", "AP", {"Pleural Effusion": "1.0"}),
]


def _relative(split, patient, study, number, view):
    return f"{split}/patient{patient:05d}/study{study}/view{number}_{view}.jpg"


def create(root: Path, size: int = 24) -> Path:
    base = Path(root) / "CheXpert-v1.0-small"
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, rows in (("train", TRAIN), ("valid", VALID)):
        with open(base / f"{split}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            numbers: dict[tuple, int] = {}
            for i, (patient, study, view, ap_pa, values) in enumerate(rows):
                number = numbers[(patient, study)] = numbers.get((patient, study), 0) + 1
                relative = _relative(split, patient, study, number, view)
                sex = "Female" if i % 2 else "Male"
                writer.writerow([f"CheXpert-v1.0-small/{relative}", sex, 40 + i, view.capitalize(), ap_pa] + [values.get(o, "") for o in OBSERVATIONS])
                target = base / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(target), rng.integers(0, 256, (size, size), dtype=np.uint8))
    return base


if __name__ == "__main__":
    print(create(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
