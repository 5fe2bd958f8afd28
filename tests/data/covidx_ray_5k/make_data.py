"""Make a tiny fake COVID-Xray-5k (DeepCovid): {train,test}/{covid,non}/ image folders. COVID-19 files carry
ieee8023 names, non-COVID ones CheXpert-style names, some with the patientNNNNN the reader can use.
Run as a script to write it to ./data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

FILES = {
    ("train", "covid"): ["covid-19-pneumonia-15-PA.jpg", "1-s2.0-S0140673620303706-fx1_lrg.jpg", "nejmoa2001191_f3-PA.jpeg", "ryct.2020200034.fig2.jpeg"],
    ("train", "non"): ["patient00001-study1-view1_frontal.jpg", "patient00001-study2-view1_frontal.jpg", "patient00002-study1-view1_frontal.jpg",
                       "patient00003-study1-view1_frontal.jpg", "patient00004-study1-view1_frontal.jpg", "00000005.jpg", "00000006.jpg"],
    ("test", "covid"): ["covid-19-pneumonia-7-PA.jpg", "lancet-case2a.jpg"],
    ("test", "non"): ["patient64541-study1-view1_frontal.jpg", "patient64542-study1-view1_frontal.jpg", "00000101.jpg"],
}


def create(root: Path, size: int = 24) -> Path:
    base = Path(root) / "data"
    rng = np.random.default_rng(0)
    for (split, folder), names in FILES.items():
        directory = base / split / folder
        directory.mkdir(parents=True, exist_ok=True)
        for name in names:
            cv2.imwrite(str(directory / name), rng.integers(0, 256, (size, size), dtype=np.uint8))
    return base


if __name__ == "__main__":
    print(create(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
