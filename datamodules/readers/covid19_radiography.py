"""Kaggle COVID-19 Radiography Database: class folders COVID, Normal, Viral Pneumonia, Lung_Opacity.

Each class folder holds its PNGs directly (early versions) or in an ``images/`` sub-folder (v4, beside
``masks/``); the first release names its folders ``COVID-19``, ``NORMAL`` and ``Viral Pneumonia`` (3 classes),
which are read too. ``task="three_class"`` leaves Lung_Opacity out (the set the twice-transfer paper used,
Chowdhury et al.'s 3 classes); the default reads every class folder present.

The database gives no patient identifiers, so by default every image is its own patient; a ``patient_map.csv``
(columns ``image,patient_id``, image relative to the dataset folder) beside the class folders supplies real ones
when the user has them (the synthetic phantoms ship one).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from datamodules.readers import READERS
from datamodules.readers.base import Reader
from datamodules.manifest import IMAGE_SUFFIXES, ManifestError, make_manifest

FOLDER_LABELS = {
    "COVID": "COVID-19",
    "COVID-19": "COVID-19",  # first release
    "Normal": "normal",
    "NORMAL": "normal",  # first release
    "Viral Pneumonia": "pneumonia",
    "Lung_Opacity": "lung_opacity",
}
COVID_FOLDERS = ("COVID", "COVID-19")  # every release has one; Kermany's NORMAL/ + PNEUMONIA/ alone is not this database
TASKS = (None, "three_class", "four_class")
PATIENT_MAP = "patient_map.csv"


@READERS.register()
class Covid19RadiographyReader(Reader):
    name = "covid19_radiography"
    classes = ("COVID-19", "normal", "pneumonia", "lung_opacity")
    folder_names = (
        "COVID-19_Radiography_Dataset",
        "covid19-radiography-database",
        "covid19-radiography-database/COVID-19_Radiography_Dataset",
        "COVID-19 Radiography Database",
    )
    layout = "class folders COVID/ (first release: COVID-19/) beside Normal/, Viral Pneumonia/ or Lung_Opacity/ (first release: NORMAL/)"

    def __init__(self, root, *, task: str | None = None):
        """``task``: None reads every class folder present; "three_class" leaves Lung_Opacity out; "four_class"
        reads all four (the same images as None on the current release, but a separate split file name)."""
        super().__init__(root)
        if task not in TASKS:
            raise ValueError(f"{self.name}: task={task!r}; use one of {TASKS}")
        self.task = task
        if task == "three_class":
            self.classes = tuple(c for c in self.classes if c != "lung_opacity")

    @classmethod
    def looks_like_root(cls, path: Path) -> bool:
        """A COVID class folder and at least one other class folder of the database."""
        classes = [folder for folder in FOLDER_LABELS if (path / folder).is_dir()]
        return any(folder in COVID_FOLDERS for folder in classes) and len(classes) >= 2

    @property
    def variant(self) -> str:
        return self.task or ""

    def dataset_dir(self) -> Path:
        return self.locate(self.root)

    def build_manifest(self) -> pd.DataFrame:
        base = self.dataset_dir()
        patients = self._patient_map(base)
        rows = []
        seen = set()  # COVID-19/COVID and NORMAL/Normal are one folder on a case-insensitive file system
        for folder, label in FOLDER_LABELS.items():
            if self.task == "three_class" and label == "lung_opacity":
                continue
            directory = base / folder
            if (directory / "images").is_dir():
                directory = directory / "images"
            if not directory.is_dir() or (directory.stat().st_dev, directory.stat().st_ino) in seen:
                continue
            seen.add((directory.stat().st_dev, directory.stat().st_ino))
            for path in sorted(directory.iterdir()):
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                image = path.relative_to(base).as_posix()
                rows.append(
                    {
                        "path": str(path),
                        "label": label,
                        "patient_id": patients.get(image, image),
                        "source": self.name,
                    }
                )
        return make_manifest(rows, origin=base)

    @staticmethod
    def _patient_map(base: Path) -> dict[str, str]:
        path = base / PATIENT_MAP
        if not path.exists():
            return {}
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        for column in ("image", "patient_id"):
            if column not in frame.columns:
                raise ManifestError(f"{path}: missing column {column!r}")
        empty = frame["patient_id"] == ""
        if empty.any():
            raise ManifestError(f"{path}: row {int(empty.to_numpy().nonzero()[0][0]) + 2} has an empty patient_id")
        return dict(zip(frame["image"], frame["patient_id"]))
