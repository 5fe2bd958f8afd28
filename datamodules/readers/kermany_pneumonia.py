"""Chest X-Ray Images (Pneumonia) (Kermany et al., Cell 2018; Kaggle paultimothymooney/chest-xray-pneumonia).

Layout ``chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg``; the label is the folder, and the pneumonia
file names give the subtype (``personN_bacteria_M.jpeg``, ``personN_virus_M.jpeg``). The published ``test``
folder is the official test split. The Kaggle ``val`` folder holds only 16 images, so by default its images
join the train pool and the validation split is drawn by patient (``official_val=True`` keeps it as is).

Patient ids, as far as the names allow:
- pneumonia ``personN_<type>_M``: ``personN_<type>``. The bacterial and the viral series are numbered on their
  own (within a series the image counter M rises with N and no N is in both train and test; across the series
  170 numbers are, which a patient-level split would never give), so person 100 of each series is a different
  patient.
- normal ``IM-XXXX-YYYY[-ZZZZ].jpeg``: ``IM-XXXX`` (XXXX numbers the patient, YYYY the image); the second batch
  ``NORMAL2-IM-XXXX-YYYY`` is numbered on its own and gets ``NORMAL2-IM-XXXX``.
- any other name is its own patient.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from datamodules.readers import READERS
from datamodules.readers.base import Reader
from datamodules.manifest import NORMAL, PNEUMONIA, ManifestError, image_files, make_manifest

SPLIT_FOLDERS = ("train", "val", "test")
CLASS_FOLDERS = ("NORMAL", "PNEUMONIA")
BACTERIAL, VIRAL = "bacterial_pneumonia", "viral_pneumonia"
TASKS = ("binary", "three_class")
PNEUMONIA_NAME = re.compile(r"^(person\d+)_(bacteria|virus)_", re.IGNORECASE)
NORMAL_NAME = re.compile(r"^((?:NORMAL2-)?IM-\d+)-", re.IGNORECASE)


def patient_of(filename: str) -> str:
    """The patient id a Kermany file name implies (see the module docstring)."""
    match = PNEUMONIA_NAME.match(filename)
    if match:
        return f"{match[1]}_{match[2].lower()}"
    match = NORMAL_NAME.match(filename)
    if match:
        return match[1]
    return Path(filename).stem


@READERS.register()
class KermanyPneumoniaReader(Reader):
    """Kermany pediatric chest X-rays.

    Args:
        task: ``"binary"`` (normal / pneumonia) or ``"three_class"`` (normal / bacterial_pneumonia /
            viral_pneumonia, from the file names; a pneumonia file whose name gives no type is a ManifestError).
        official_val: use the published ``val`` folder as the validation split instead of drawing one.
    """

    name = "kermany_pneumonia"
    folder_names = ("chest_xray", "chest_xray/chest_xray", "chest-xray-pneumonia/chest_xray", "kermany-chest-xray-pneumonia/dataset", "dataset")
    layout = "split folders train/, val/ and test/, each holding NORMAL/ and PNEUMONIA/"

    def __init__(self, root, *, task: str = "binary", official_val: bool = False):
        super().__init__(root)
        if task not in TASKS:
            raise ValueError(f"kermany_pneumonia: task={task!r}; use one of {TASKS}")
        self.task = task
        self.official_val = bool(official_val)
        self.classes = (NORMAL, PNEUMONIA) if task == "binary" else (NORMAL, BACTERIAL, VIRAL)

    @classmethod
    def looks_like_root(cls, path: Path) -> bool:
        return any((path / split / folder).is_dir() for split in SPLIT_FOLDERS for folder in CLASS_FOLDERS)

    @property
    def variant(self) -> str:
        return self.task + ("-officialval" if self.official_val else "")

    def _label(self, folder: str, path: Path) -> str:
        if folder == "NORMAL":
            return NORMAL
        if self.task == "binary":
            return PNEUMONIA
        match = PNEUMONIA_NAME.match(path.name)
        if not match:
            raise ManifestError(f"{path}: the file name gives no pneumonia type (expected personN_bacteria_M or personN_virus_M)")
        return BACTERIAL if match[2].lower() == "bacteria" else VIRAL

    def build_manifest(self) -> pd.DataFrame:
        rows = []
        for split in SPLIT_FOLDERS:
            for folder in CLASS_FOLDERS:
                for path in image_files(self.root / split / folder):
                    official = split if split != "val" or self.official_val else "train"
                    rows.append({"path": str(path), "label": self._label(folder, path), "patient_id": patient_of(path.name),
                                 "source": self.name, "official_split": official})
        return make_manifest(rows, origin=self.root)
