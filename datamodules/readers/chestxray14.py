"""NIH ChestX-ray14 (Wang et al., CVPR 2017): 14 thoracic findings, multi-label.

Labels come from ``Data_Entry_2017.csv`` or ``Data_Entry_2017_v2020.csv`` (plain or ``.gz``): Image Index,
Finding Labels ('|'-joined findings or 'No Finding'), Patient ID, Patient Age, Patient Gender, View Position.
The images are found by name in any sub-folder of the root (the release unpacks to ``images_001/images/`` ...
``images_012/images/``; subsets use other folders). Rows whose image is absent are dropped with one summary line
(see ``missing`` in the base): a subset holding 1,000 of the 112,120 images is normal, not 111k errors.
``test_list.txt`` / ``train_val_list.txt``, when present, give the official patient-wise test split.

The manifest label keeps the file's findings verbatim, 'No Finding' included. The 14 findings are the classes;
``no_finding=True`` adds 'No Finding' as a 15th output, as the twice-transfer paper's ChestX-ray14 network has
(Bassi & Attux, section 5.1). Patient ids are the file's Patient ID. Patients are stratified by their images'
rarest common finding (the ``stratum`` column), not by the full label combination.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from datamodules.readers import READERS
from datamodules.readers.base import Reader
from datamodules.manifest import ManifestError, index_by_name, make_manifest, metadata_error, multilabel_strata, read_metadata_csv

FINDINGS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
    "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
)
NO_FINDING = "No Finding"
LABEL_FILES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv", "Data_Entry_2017_v2020.csv.gz", "Data_Entry_2017.csv.gz")
REQUIRED = ("Image Index", "Finding Labels", "Patient ID")


@READERS.register()
class ChestXray14Reader(Reader):
    """NIH ChestX-ray14.

    Args:
        no_finding: add 'No Finding' as a class (15 outputs) instead of coding it as all 14 findings absent.
        views: keep only these View Position values (e.g. ``["PA"]``); ``None`` keeps all.
    """

    name = "chestxray14"
    multilabel = True
    classes = FINDINGS
    findings = FINDINGS  # the findings a label file may name besides 'No Finding'
    synthetic_stand_in = ("synthetic_chestxray14", {})
    folder_names = ("ChestX-ray14", "chestxray14", "NIH", "nih-chestxray14", "nih-chestxray14-nih1000", "CXR8", "data")
    layout = f"a label file ({' or '.join(LABEL_FILES)}) with the images in any sub-folder"

    def __init__(self, root, *, no_finding: bool = False, views: list[str] | tuple[str, ...] | None = None):
        super().__init__(root)
        self.no_finding = bool(no_finding)
        self.views = None if views is None else tuple(views)
        self.classes = self.findings + ((NO_FINDING,) if self.no_finding else ())

    @classmethod
    def looks_like_root(cls, path: Path) -> bool:
        return any((path / name).is_file() for name in LABEL_FILES)

    @property
    def variant(self) -> str:
        return "" if self.views is None else "+".join(self.views)

    def label_file(self) -> Path:
        for name in LABEL_FILES:
            if (self.root / name).is_file():
                return self.root / name
        raise ManifestError(f"chestxray14: no label file ({' or '.join(LABEL_FILES)}) in {self.root}")

    def build_manifest(self) -> pd.DataFrame:
        path = self.label_file()
        meta = read_metadata_csv(path, required=REQUIRED)
        self._check_findings(meta, path)
        excluded = {}
        if self.views is not None and "View Position" in meta.columns:
            keep = meta["View Position"].isin(self.views)
            excluded["view"] = int((~keep).sum())
            meta = meta[keep]
        names = meta["Image Index"].str.strip()
        index, duplicated = index_by_name(self.root, set(names))
        if duplicated:
            excluded["same_name_in_two_folders"] = duplicated
        official = self._official_split(names)
        absent_dir = str(self.root / "images")  # where an absent image is reported as expected
        frame = pd.DataFrame({
            "path": [str(index[n]) if n in index else f"{absent_dir}/{n}" for n in names],
            "label": meta["Finding Labels"].str.strip().to_numpy(),
            "patient_id": meta["Patient ID"].str.strip().to_numpy(),
            "source": self.name,
            "view": meta.get("View Position", pd.Series("", index=meta.index)).to_numpy(),
            "sex": meta.get("Patient Gender", pd.Series("", index=meta.index)).to_numpy(),
            "age": pd.to_numeric(meta.get("Patient Age", pd.Series("", index=meta.index)).str.extract(r"(\d+)")[0], errors="coerce").to_numpy(),
            "official_split": official,
        })
        self.manifest_excluded = excluded
        frame = self.drop_conflicting_labels(frame.assign(_name=names.to_numpy()), origin=path, key="_name")
        frame = self.drop_missing(frame.drop(columns="_name"), origin=path, exists=frame["_name"].isin(set(index)))
        frame["stratum"] = multilabel_strata(frame["label"])
        return make_manifest(frame, origin=path)

    def _check_findings(self, meta: pd.DataFrame, path: Path) -> None:
        known = set(self.findings) | {NO_FINDING}
        findings = meta["Finding Labels"].str.strip().str.split("|")
        unknown = findings.map(lambda f: next((x for x in f if x not in known), None))
        bad = unknown.notna().to_numpy().nonzero()[0]
        if len(bad):
            row = int(bad[0])
            raise metadata_error(path, row + 2, "Finding Labels", f"unknown finding {unknown.iloc[row]!r} (known: {', '.join(sorted(known))})")
        for column in ("Image Index", "Patient ID"):
            blank = (meta[column].str.strip() == "").to_numpy().nonzero()[0]
            if len(blank):
                raise metadata_error(path, int(blank[0]) + 2, column, f"empty {column}")

    def _official_split(self, names: pd.Series) -> np.ndarray:
        test_list = self.root / "test_list.txt"
        if not test_list.is_file():
            return np.full(len(names), "", dtype=object)
        test = set(test_list.read_text().split())
        return np.where(names.isin(test), "test", "train").astype(object)
