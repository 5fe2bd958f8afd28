"""CheXpert (Irvin et al., AAAI 2019): 14 observations from radiology reports, multi-label with uncertainty.

``train.csv`` and ``valid.csv`` list one row per image: Path (``CheXpert-v1.0-small/train/patient00001/study1/
view1_frontal.jpg``, relative to the folder above the dataset), Sex, Age, Frontal/Lateral, AP/PA, and the 14
observations, each 1.0 (positive), 0.0 (negative), -1.0 (uncertain) or blank (not mentioned = negative).
Frontal images are kept by default. ``valid.csv`` (200 studies labelled by radiologists; the official test set is
not public) is the official test split; train.csv's patients are split into train and val, stratified by their
images' rarest common finding (``stratum``). Patient ids are the ``patientNNNNN`` folder of the path.

Uncertain labels follow the paper's policies (section 4.1): ``u_ones`` (positive), ``u_zeros`` (negative) or
``u_ignore`` (target -1, left out of the masked BCE loss and the multi-label metrics). The manifest label holds
the certain positives ('|'-joined) and the ``uncertain`` column the uncertain ones, whatever the policy: the
policy only changes the targets, so all three share one split file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from datamodules.readers import READERS
from datamodules.readers.base import Reader, encode_targets
from datamodules.manifest import ManifestError, make_manifest, metadata_error, multilabel_strata, read_metadata_csv

OBSERVATIONS = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture",
    "Support Devices",
)
COMPETITION = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")  # paper, section 5
REQUIRED = ("Path", "Frontal/Lateral") + OBSERVATIONS
POLICIES = ("u_ones", "u_zeros", "u_ignore")
VIEWS = ("frontal", "lateral")
CSV_SPLITS = {"train.csv": "train", "valid.csv": "test"}
VALUES = {"1.0": 1, "1": 1, "0.0": 0, "0": 0, "-1.0": -1, "-1": -1, "": 0}
PATIENT = re.compile(r"(patient\d+)")


@READERS.register()
class CheXpertReader(Reader):
    """CheXpert from its train.csv / valid.csv.

    Args:
        uncertainty: ``"u_ones"``, ``"u_zeros"`` or ``"u_ignore"`` (default; targets of -1 are masked).
        views: ``["frontal"]`` (default), ``["lateral"]`` or both.
        Use the base's ``class_names`` to train on a subset, e.g. the 5 competition observations (``COMPETITION``).
    """

    name = "chexpert"
    multilabel = True
    classes = OBSERVATIONS
    folder_names = ("CheXpert-v1.0-small", "CheXpert-v1.0", "chexpert", "CheXpert")
    layout = "train.csv and/or valid.csv beside train/ and valid/"
    target_columns = ("uncertain",)

    def __init__(self, root, *, uncertainty: str = "u_ignore", views: list[str] | tuple[str, ...] | str = ("frontal",)):
        super().__init__(root)
        if uncertainty not in POLICIES:
            raise ValueError(f"chexpert: uncertainty={uncertainty!r}; use one of {POLICIES}")
        views = (views,) if isinstance(views, str) else tuple(views)
        if not views or any(v.lower() not in VIEWS for v in views):
            raise ValueError(f"chexpert: views={views!r}; use 'frontal', 'lateral' or both")
        self.uncertainty = uncertainty
        self.views = tuple(sorted({v.lower() for v in views}))

    @classmethod
    def looks_like_root(cls, path: Path) -> bool:
        return (path / "train.csv").is_file() or (path / "valid.csv").is_file()

    @property
    def variant(self) -> str:
        return "" if self.views == ("frontal",) else "+".join(self.views)

    def _image_path(self, relative: str) -> Path:
        """Paths in the CSVs start with the dataset folder's published name; the folder may have been renamed."""
        parts = Path(relative).parts
        if len(parts) > 1 and parts[1] in ("train", "valid", "test"):
            return self.root.joinpath(*parts[1:])
        return self.root / relative

    def _read(self, path: Path, split: str) -> pd.DataFrame:
        meta = read_metadata_csv(path, required=REQUIRED)
        lines = np.arange(len(meta)) + 2
        values = {}
        for column in OBSERVATIONS:
            cells = meta[column].str.strip()
            bad = ~cells.isin(VALUES)
            if bad.any():
                row = int(bad.to_numpy().nonzero()[0][0])
                raise metadata_error(path, int(lines[row]), column, f"value {cells.iloc[row]!r} is not 1.0, 0.0, -1.0 or blank")
            values[column] = cells.map(VALUES).to_numpy()
        patients = meta["Path"].str.extract(PATIENT)[0]
        if patients.isna().any():
            row = int(patients.isna().to_numpy().nonzero()[0][0])
            raise metadata_error(path, int(lines[row]), "Path", f"no patientNNNNN folder in {meta['Path'].iloc[row]!r}")
        view = meta["Frontal/Lateral"].str.strip().str.lower()
        unknown = ~view.isin(VIEWS)
        if unknown.any():
            row = int(unknown.to_numpy().nonzero()[0][0])
            raise metadata_error(path, int(lines[row]), "Frontal/Lateral", f"value {meta['Frontal/Lateral'].iloc[row]!r} is not Frontal or Lateral")
        matrix = np.stack([values[c] for c in OBSERVATIONS], axis=1)
        join = lambda mask: ["|".join(o for o, m in zip(OBSERVATIONS, row) if m) for row in mask]  # noqa: E731
        ap_pa = meta.get("AP/PA", pd.Series("", index=meta.index)).str.strip()
        frame = pd.DataFrame({
            "path": [str(self._image_path(p)) for p in meta["Path"]],
            "label": join(matrix == 1),
            "uncertain": join(matrix == -1),
            "patient_id": patients.to_numpy(),
            "source": self.name,
            "view": np.where(view == "lateral", "L", ap_pa.to_numpy()),
            "sex": meta.get("Sex", pd.Series("", index=meta.index)).map({"Male": "M", "Female": "F"}).fillna("").to_numpy(),
            "age": pd.to_numeric(meta.get("Age", pd.Series("", index=meta.index)), errors="coerce").to_numpy(),
            "official_split": split,
        })
        keep = view.isin(self.views).to_numpy()
        self.manifest_excluded["view"] = self.manifest_excluded.get("view", 0) + int((~keep).sum())
        return frame[keep]

    def build_manifest(self) -> pd.DataFrame:
        self.manifest_excluded = {}
        parts = [self._read(self.root / name, split) for name, split in CSV_SPLITS.items() if (self.root / name).is_file()]
        if not parts:
            raise ManifestError(f"chexpert: neither train.csv nor valid.csv in {self.root}")
        frame = pd.concat(parts, ignore_index=True)
        frame = self.drop_conflicting_labels(frame, origin=" and ".join(n for n in CSV_SPLITS if (self.root / n).is_file()))
        frame = self.drop_missing(frame, origin=" and ".join(str(self.root / n) for n in CSV_SPLITS if (self.root / n).is_file()))
        frame["stratum"] = multilabel_strata(frame["label"])
        return make_manifest(frame, origin=self.root)

    def encode_frame(self, frame: pd.DataFrame, class_names: list[str]) -> np.ndarray:
        """Multi-hot targets of the certain positives, with the uncertain findings set by the policy."""
        targets = encode_targets(frame["label"], class_names, multilabel=True)
        if self.uncertainty == "u_zeros":
            return targets
        value = 1.0 if self.uncertainty == "u_ones" else -1.0
        for i, uncertain in enumerate(frame["uncertain"].fillna("")):
            for finding in filter(None, str(uncertain).split("|")):
                if finding in class_names:
                    targets[i, class_names.index(finding)] = value
        return targets

