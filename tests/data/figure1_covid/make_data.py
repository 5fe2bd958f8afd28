"""Make a tiny fake agchung/Figure1-COVID-chestxray-dataset: a Latin-1 metadata.csv with the published columns
(patientid, offset, sex, age, finding, survival, temperature, pO2 saturation, view, modality, originalfile,
artifacts/distortion, notes) and images/<patientid>.jpg|.png. Rows without a finding (most of the real file)
have no label; COVID-00003a/b are two images of one patient; one labelled image is absent.
Run as a script to write it to ./Figure1-COVID-chestxray-dataset.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import cv2
import numpy as np

HEADER = ["patientid", "offset", "sex", "age", "finding", "survival", "temperature", "pO2 saturation", "view", "modality",
          "originalfile", "artifacts/distortion", "notes"]
# patientid, finding, view, suffix of the image file ("" = no file)
ROWS = [
    ("COVID-00001", "COVID-19", "AP erect", ".jpg"),
    ("COVID-00002", "", "AP erect", ".jpg"),
    ("COVID-00003a", "COVID-19", "AP erect", ".jpg"),
    ("COVID-00003b", "COVID-19", "AP erect", ".png"),
    ("COVID-00004", "COVID-19", "PA", ".jpg"),
    ("COVID-00005", "Pneumonia", "PA", ".jpg"),
    ("COVID-00006", "No finding", "PA", ".jpg"),
    ("COVID-00007", "No finding", "AP", ".png"),
    ("COVID-00008", "COVID-19", "L", ".jpg"),
    ("COVID-00009", "COVID-19", "PA", ""),  # absent
    ("COVID-00010", "No finding", "PA", ".jpg"),
    ("COVID-00011", "COVID-19", "AP", ".jpg"),
    ("COVID-00012", "COVID-19, ARDS", "AP", ".jpg"),
]


def create(root: Path, size: int = 24) -> Path:
    base = Path(root) / "Figure1-COVID-chestxray-dataset"
    (base / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with open(base / "metadata.csv", "w", newline="", encoding="latin-1") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i, (patientid, finding, view, suffix) in enumerate(ROWS):
            note = "Patient seen at Hôpital, 39.1°C" if i % 3 == 0 else ""  # Latin-1 bytes, not UTF-8
            writer.writerow([patientid, "", "MF"[i % 2], 30 + i, finding, "", "", "", view, "X-ray", f"COVID-{i:04d}.jpeg", "", note])
            if suffix:
                cv2.imwrite(str(base / "images" / f"{patientid}{suffix}"), rng.integers(0, 256, (size, size), dtype=np.uint8))
    return base


if __name__ == "__main__":
    print(create(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
