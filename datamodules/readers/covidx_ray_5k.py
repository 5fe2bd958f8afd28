"""COVID-Xray-5k (Minaee et al., Deep-COVID, Medical Image Analysis 2020; github.com/shervinmin/DeepCovid).

Layout ``{train,test}/{covid,non}/`` (the authors' scripts also use ``val/`` as the test folder name: it is read
as the test split when there is no ``test/``). COVID-19 images come from the ieee8023 collection, non-COVID ones
from CheXpert; the label is the class folder. The published train/test split is the official one; the authors
kept each patient's images in one of them, but publish no patient ids: each image is its own patient, except
non-COVID files whose name still carries a CheXpert ``patientNNNNN``, which is used.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from datamodules.readers import READERS
from datamodules.readers.base import Reader
from datamodules.manifest import COVID, NON_COVID, ManifestError, image_files, make_manifest

CLASS_FOLDERS = {"covid": COVID, "non": NON_COVID}
CHEXPERT_PATIENT = re.compile(r"(patient\d{5})", re.IGNORECASE)


@READERS.register()
class CovidXray5kReader(Reader):
    """COVID-Xray-5k: binary COVID-19 / non-COVID; no options beyond the base's."""

    name = "covidx_ray_5k"
    classes = (COVID, NON_COVID)
    folder_names = ("data", "data_upload_v2", "data_upload_v3", "covid5k", "COVID-XRay-5K", "covidx-ray-5k")
    layout = "train/covid/ and train/non/ (and test/ or val/ alike)"

    @classmethod
    def looks_like_root(cls, path: Path) -> bool:
        return (path / "train" / "covid").is_dir() and (path / "train" / "non").is_dir()

    def split_folders(self) -> dict[str, str]:
        """folder name -> official split."""
        test = "test" if (self.root / "test").is_dir() else "val"
        return {"train": "train", test: "test"}

    def build_manifest(self) -> pd.DataFrame:
        rows = []
        for folder, split in self.split_folders().items():
            for class_folder, label in CLASS_FOLDERS.items():
                for path in image_files(self.root / folder / class_folder, recursive=True):
                    relative = path.relative_to(self.root).as_posix()
                    match = CHEXPERT_PATIENT.search(path.name) if label == NON_COVID else None
                    rows.append({"path": str(path), "label": label, "patient_id": f"chexpert-{match[1].lower()}" if match else relative,
                                 "source": "chexpert" if label == NON_COVID else "cohen", "official_split": split})
        if not rows:
            raise ManifestError(f"{self.name}: no images in {self.root}/{{train,test}}/{{covid,non}}")
        return make_manifest(rows, origin=self.root)
