"""Make a tiny fake COVIDx: COVID-Net split files in labels/ and, separately, a folder holding the images.

The v5 files mix the line formats of the real ones: 3 fields (rsna lines without a source), 4 fields, a sirm
line whose patient id has a space (5 tokens, as from v7A on) and the 'rnsa' misspelling of v9. The images lie
in images/{train,test}/, except one flat in images/, one in an unrelated sub-folder (found by name) and one that
is listed but absent. v9B is a binary (positive/negative) pair. Run as a script to write it to ./covidx.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

# (patient_id, filename, label, source or "")
TRAIN = [
    ("3", "SARS-fig8a-day0.jpeg", "pneumonia", "cohen"),
    ("3", "SARS-fig8b-day5.jpeg", "pneumonia", "cohen"),
    ("p-10", "p10.png", "pneumonia", ""),
    ("p-11", "p11.png", "pneumonia", "rnsa"),
    ("p-12", "p12.png", "pneumonia", "rsna"),
    ("n-20", "n20.png", "normal", ""),
    ("n-21", "n21.png", "normal", ""),
    ("n-22", "n22.png", "normal", "rsna"),
    ("n-23", "n23.png", "normal", "rsna"),
    ("COVID-00001", "COVID-00001.jpg", "COVID-19", "fig1"),
    ("COVID 1", "COVID(1).png", "COVID-19", "sirm"),
    ("COVID 1", "COVID(2).png", "COVID-19", "sirm"),
    ("ANON7", "CR.1.2.840.7.png", "COVID-19", "actmed"),
    ("ANON8", "CR.1.2.840.8.png", "COVID-19", "actmed"),
]
TEST = [
    ("t-1", "t1.png", "normal", ""),
    ("t-2", "t2.png", "normal", ""),
    ("t-3", "t3.png", "pneumonia", ""),
    ("t-4", "t4.png", "pneumonia", ""),
    ("41", "covid-41.jpg", "COVID-19", "cohen"),
    ("42", "covid-42.jpg", "COVID-19", "cohen"),
]
FLAT = "n23.png"  # lies in images/ itself
ELSEWHERE = "CR.1.2.840.8.png"  # lies in images/actualmed/images/
ABSENT = "p12.png"  # listed, not on disk


def _line(patient, filename, label, source):
    return " ".join(filter(None, [patient, filename, label, source]))


def create(root: Path, size: int = 24) -> Path:
    """Write covidx/labels/*.txt and covidx/images/; return the covidx folder (images are in covidx/images)."""
    base = Path(root) / "covidx"
    labels = base / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    (labels / "train_COVIDx5.txt").write_text("\n".join(_line(*r) for r in TRAIN) + "\n")
    (labels / "test_COVIDx5.txt").write_text("\n".join(_line(*r) for r in TEST) + "\n")
    binary = {"COVID-19": "positive", "normal": "negative", "pneumonia": "negative"}
    (labels / "train_COVIDx9B.txt").write_text("\n".join(_line(p, f, binary[l], s) for p, f, l, s in TRAIN) + "\n")
    (labels / "test_COVIDx9B.txt").write_text("\n".join(_line(p, f, binary[l], s) for p, f, l, s in TEST) + "\n")
    rng = np.random.default_rng(0)
    images = base / "images"
    for split, rows in (("train", TRAIN), ("test", TEST)):
        for _, filename, _, _ in rows:
            if filename == ABSENT:
                continue
            folder = images if filename == FLAT else images / "actualmed" / "images" if filename == ELSEWHERE else images / split
            folder.mkdir(parents=True, exist_ok=True)
            ok, data = cv2.imencode(".png" if filename.endswith(".png") else ".jpg", rng.integers(0, 256, (size, size), dtype=np.uint8))
            (folder / filename).write_bytes(data.tobytes())
    return base


if __name__ == "__main__":
    print(create(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
