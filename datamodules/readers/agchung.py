"""The two COVID-Net team collections on GitHub (agchung/Figure1-COVID-chestxray-dataset and
agchung/Actualmed-COVID-chestxray-dataset): a ``metadata.csv`` in the ieee8023 style (patientid, finding, view,
modality, ...) beside ``images/``.

- Figure 1: the image is ``images/<patientid>.jpg`` (or .png), as COVID-Net's create_COVIDx reads it; the file is
  Latin-1 encoded. Ids ``COVID-00003a`` / ``COVID-00003b`` are two images of one patient (the letter numbers the
  image), so the patient id drops a trailing letter.
- Actualmed: the image is ``images/<imagename>``; patient ids (``ANONnn``) repeat over a patient's images.

Findings are 'COVID-19', 'No finding' or blank (inconclusive: excluded, counted as unlabelled), mapped as in
``cohen_covid`` (three_class: COVID-19 / normal / pneumonia; binary: COVID-19 / non-COVID). Views: frontal by
default, as for cohen_covid. Neither collection publishes a split.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from datamodules.readers import READERS
from datamodules.readers.cohen_covid import NOT_PNEUMONIA, UNLABELLED, FindingsReader, finding_category
from datamodules.manifest import COVID, NON_COVID, NORMAL, PNEUMONIA, make_manifest, metadata_error, read_metadata_csv


class AgchungReader(FindingsReader):
    """Shared reader; subclasses say how a metadata row names its image and its patient.

    Args:
        task: ``"three_class"`` (COVID-19 / normal / pneumonia) or ``"binary"`` (COVID-19 / non-COVID).
        views: views to keep (case-insensitive); ``None`` keeps all, blank included.
    """

    image_column = ""

    @classmethod
    def looks_like_root(cls, path: Path) -> bool:
        columns = cls.metadata_columns(path)
        if not columns:
            return False
        if cls.image_column:
            return cls.image_column in columns
        return "imagename" not in columns and "filename" not in columns  # not Actualmed, not ieee8023

    def image_path(self, record) -> Path:
        raise NotImplementedError

    def patient_of(self, patientid: str) -> str:
        return patientid

    def build_manifest(self) -> pd.DataFrame:
        path = self.root / "metadata.csv"
        meta = read_metadata_csv(path, required=("patientid", "finding", "view") + ((self.image_column,) if self.image_column else ()))
        meta["line"] = np.arange(len(meta)) + 2
        excluded = {"not_xray": 0, "view": 0, "unlabelled": 0, "label_outside_task": 0}
        if "modality" in meta.columns:
            xray = meta["modality"].str.strip().str.lower().isin(["x-ray", ""])
            excluded["not_xray"] = int((~xray).sum())
            meta = meta[xray]
        rows = []
        for record in meta.itertuples(index=False):
            category = finding_category(record.finding.split(",")[0])
            if category is None:
                excluded["unlabelled"] += 1
                continue
            if category == "unknown":
                raise metadata_error(path, record.line, "finding", f"unknown finding {record.finding!r}: not COVID-19, 'No finding', "
                                     f"a pneumonia, or one of {sorted(NOT_PNEUMONIA | UNLABELLED)}")
            if self.views is not None and record.view.strip().lower() not in {v.lower() for v in self.views}:
                excluded["view"] += 1
                continue
            label = (COVID if category == "covid" else NON_COVID) if self.task == "binary" else {"covid": COVID, "normal": NORMAL, "pneumonia": PNEUMONIA}.get(category)
            if label is None:
                excluded["label_outside_task"] += 1
                continue
            if not record.patientid.strip():
                raise metadata_error(path, record.line, "patientid", "empty patientid")
            rows.append(self.metadata_row(record, self.image_path(record), label, self.patient_of(record.patientid.strip())))
        self.manifest_excluded = excluded
        if not rows:
            return make_manifest(rows, origin=path)
        frame = self.drop_conflicting_labels(pd.DataFrame(rows), origin=path)  # an image listed twice: once, or out if labels differ
        return make_manifest(self.drop_missing(frame, origin=path), origin=path)


@READERS.register()
class Figure1CovidReader(AgchungReader):
    """Figure 1 COVID-19 Chest X-ray Dataset Initiative (images named by patientid)."""

    name = "figure1_covid"
    folder_names = ("Figure1-COVID-chestxray-dataset", "figure1-covid-chestxray-dataset", "figure1")
    layout = "metadata.csv (without an 'imagename' or 'filename' column) beside images/"

    def image_path(self, record) -> Path:
        stem = record.patientid.strip()
        for suffix in (".jpg", ".png", ".jpeg"):
            if (self.root / "images" / f"{stem}{suffix}").is_file():
                return self.root / "images" / f"{stem}{suffix}"
        return self.root / "images" / f"{stem}.jpg"  # absent: reported as missing under the name COVID-Net expects

    def patient_of(self, patientid: str) -> str:
        return re.sub(r"(?<=\d)[a-z]$", "", patientid)


@READERS.register()
class ActualmedCovidReader(AgchungReader):
    """Actualmed COVID-19 Chest X-ray Dataset Initiative (images named in the imagename column)."""

    name = "actualmed_covid"
    image_column = "imagename"
    folder_names = ("Actualmed-COVID-chestxray-dataset", "actualmed-covid-chestxray-dataset", "actualmed")
    layout = "metadata.csv (with an 'imagename' column) beside images/"

    def image_path(self, record) -> Path:
        if not record.imagename.strip():
            raise metadata_error(self.root / "metadata.csv", record.line, "imagename", "empty imagename")
        return self.root / "images" / record.imagename.strip()
