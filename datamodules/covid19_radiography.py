"""Kaggle COVID-19 Radiography Database: class folders COVID, Normal, Viral Pneumonia, Lung_Opacity.

Each class folder holds its PNGs directly (early versions) or in an ``images/`` sub-folder (v4, beside
``masks/``). The database gives no patient identifiers, so by default every image is its own patient; a
``patient_map.csv`` (columns ``image,patient_id``, image relative to the dataset folder) beside the class
folders supplies real ones when the user has them (the synthetic phantoms ship one).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from datamodules.base import CXRDataModule
from datamodules.manifest import ManifestError, make_manifest

FOLDER_LABELS = {
    "COVID": "COVID-19",
    "Normal": "normal",
    "Viral Pneumonia": "pneumonia",
    "Lung_Opacity": "lung_opacity",
}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
PATIENT_MAP = "patient_map.csv"


class Covid19RadiographyDataModule(CXRDataModule):
    name = "covid19_radiography"
    classes = ("COVID-19", "normal", "pneumonia", "lung_opacity")
    folder_names = (
        "COVID-19_Radiography_Dataset",
        "covid19-radiography-database",
        "covid19-radiography-database/COVID-19_Radiography_Dataset",
        "COVID-19 Radiography Database",
    )

    @classmethod
    def looks_like_root(cls, path: Path) -> bool:
        return any((path / folder).is_dir() for folder in FOLDER_LABELS)

    def dataset_dir(self) -> Path:
        return self.locate(self.root)

    def build_manifest(self) -> pd.DataFrame:
        base = self.dataset_dir()
        patients = self._patient_map(base)
        rows = []
        for folder, label in FOLDER_LABELS.items():
            directory = base / folder
            if (directory / "images").is_dir():
                directory = directory / "images"
            if not directory.is_dir():
                continue
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
