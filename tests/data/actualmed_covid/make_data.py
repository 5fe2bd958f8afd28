"""Make a tiny fake agchung/Actualmed-COVID-chestxray-dataset: metadata.csv with the published columns
(patientid, offset, sex, age, finding, survival, temperature, pO2 saturation, view, modality, imagename,
artifacts/distortion, notes) and images/<imagename>. Blank findings are the 'Inconclusive' rows; patients have
several images; one listed image is absent. Run as a script to write it to ./Actualmed-COVID-chestxray-dataset.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import cv2
import numpy as np

HEADER = ["patientid", "offset", "sex", "age", "finding", "survival", "temperature", "pO2 saturation", "view", "modality",
          "imagename", "artifacts/distortion", "notes"]
# patientid, finding, view, imagename
ROWS = [
    ("ANON196", "", "PA", "CR.1.2.840.113564.1722810170.20200313090023421700.1003000225002.png"),
    ("ANON56", "No finding", "PA", "CR.1.2.840.113564.1722810170.20200317090830828260.1003000225002.png"),
    ("ANON56", "No finding", "PA", "CR.1.2.840.113564.1722810170.20200317104341875470.1003000225002.png"),
    ("ANON196", "COVID-19", "PA", "CR.1.2.840.113564.1722810170.20200318082923328940.1003000225002.png"),
    ("ANON91", "No finding", "AP", "CR.1.2.840.113564.1722810170.20200319202613984410.1003000225002.png"),
    ("ANON170", "COVID-19", "AP", "CR.1.2.840.113564.1722810170.20200320011259312440.1003000225002.png"),
    ("ANON45", "COVID-19", "AP", "CR.1.2.840.113564.1722810170.20200320071047906500.1003000225002.png"),
    ("ANON234", "COVID-19", "AP", "CR.1.2.840.113564.1722810170.20200320072856343530.1003000225002.png"),
    ("ANON24", "COVID-19", "AP", "CR.1.2.840.113564.1722810170.20200320103403375580.1003000225002.png"),
    ("ANON8", "", "PA", "CR.1.2.840.113564.1722810170.20200321174111187570.1003000225002.png"),
    ("ANON245", "No finding", "PA", "CR.1.2.840.113564.1722810170.20200323115834968210.1003000225002.png"),
    ("ANON239", "No finding", "AP", "CR.1.2.840.113564.1722810170.202003241816485934.1003000225002.png"),
    ("ANON191", "COVID-19", "AP", "CR.1.2.840.113564.1722810170.20200325010134750210.1003000225002.png"),
    ("ANON191", "COVID-19", "AP", "CR.1.2.840.113564.1722810170.20200325012424140230.1003000225002.png"),
    ("ANON58", "No finding", "PA", "DX.1.2.840.113564.1722810162.20200320112920531100.1203801020003.png"),
]
ABSENT = "DX.1.2.840.113564.1722810162.20200320112920531100.1203801020003.png"


def create(root: Path, size: int = 24) -> Path:
    base = Path(root) / "Actualmed-COVID-chestxray-dataset"
    (base / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with open(base / "metadata.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for patientid, finding, view, imagename in ROWS:
            note = "Inconclusive, date taken (YYYYMMDD): 20200313" if not finding else ", date taken (YYYYMMDD): 20200318"
            writer.writerow([patientid, "", "", "", finding, "", "", "", view, "X-ray", imagename, "", note])
            if imagename != ABSENT:
                cv2.imwrite(str(base / "images" / imagename), rng.integers(0, 256, (size, size), dtype=np.uint8))
    return base


if __name__ == "__main__":
    print(create(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
