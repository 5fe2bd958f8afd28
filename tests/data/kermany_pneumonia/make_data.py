"""Make a tiny fake Kermany chest_xray/{train,val,test}/{NORMAL,PNEUMONIA} with the real naming schemes:
IM-XXXX-YYYY.jpeg, IM-XXXX-YYYY-ZZZZ.jpeg, NORMAL2-IM-XXXX-YYYY.jpeg, personN_bacteria_M.jpeg, personN_virus_M.jpeg,
plus the macOS __MACOSX junk the Kaggle zip carries. Run as a script to write it to ./chest_xray.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

FILES = {
    ("train", "NORMAL"): ["IM-0115-0001.jpeg", "IM-0115-0002.jpeg", "IM-0117-0001.jpeg", "IM-0119-0001-0001.jpeg",
                          "IM-0119-0001-0002.jpeg", "IM-0122-0001.jpeg", "NORMAL2-IM-0115-0001.jpeg", "NORMAL2-IM-0200-0001.jpeg"],
    ("train", "PNEUMONIA"): ["person1_bacteria_1.jpeg", "person1_bacteria_2.jpeg", "person2_bacteria_3.jpeg", "person3_bacteria_4.jpeg",
                             "person4_bacteria_5.jpeg", "person1_virus_6.jpeg", "person2_virus_7.jpeg", "person3_virus_8.jpeg",
                             "person5_virus_9.jpeg"],
    ("val", "NORMAL"): ["NORMAL2-IM-1427-0001.jpeg"],
    ("val", "PNEUMONIA"): ["person1946_bacteria_4874.jpeg"],
    ("test", "NORMAL"): ["IM-0001-0001.jpeg", "IM-0003-0001.jpeg", "NORMAL2-IM-0007-0001.jpeg"],
    ("test", "PNEUMONIA"): ["person78_bacteria_378.jpeg", "person80_bacteria_390.jpeg", "person10_virus_35.jpeg", "person11_virus_38.jpeg"],
}


def create(root: Path, size: int = 24) -> Path:
    base = Path(root) / "chest_xray"
    rng = np.random.default_rng(0)
    for (split, folder), names in FILES.items():
        directory = base / split / folder
        directory.mkdir(parents=True, exist_ok=True)
        for name in names:
            cv2.imwrite(str(directory / name), rng.integers(0, 256, (size, size), dtype=np.uint8))
    junk = base / "__MACOSX" / "train" / "NORMAL"
    junk.mkdir(parents=True, exist_ok=True)
    (junk / "._IM-0115-0001.jpeg").write_bytes(b"\x00\x05\x16\x07")
    (base / "train" / "NORMAL" / ".DS_Store").write_bytes(b"\x00")
    return base


if __name__ == "__main__":
    print(create(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
