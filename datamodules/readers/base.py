"""Stage 1 of the pipeline: a reader finds a dataset's native layout and lists its images as a manifest.

A dataset file subclasses ``Reader``: ``name``, ``classes``, ``folder_names``, ``layout``, ``looks_like_root`` and
``build_manifest`` (return ``make_manifest(rows, origin=...)``); its own options are constructor arguments. It
knows nothing of caches, splits or loaders (datamodules/datamodule.py runs those), as torchgeo keeps its
Dataset classes apart from its DataModules.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from datamodules import missing as missing_stage
from datamodules.grouping import DuplicateSearch
from datamodules.manifest import printable

FOUND_LISTED = 12  # entries of a folder a "dataset not found" error names


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's native files are not where the user pointed."""


def _found(folder: Path) -> str:
    """What a folder holds (sub-folders marked with /), for an error message."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as error:
        return f"{folder} cannot be listed ({error.strerror or error})"
    names = [printable(e.name) + ("/" if e.is_dir() else "") for e in entries if not e.name.startswith(".")]
    shown = ", ".join(names[:FOUND_LISTED]) + (f", ... ({len(names)} entries)" if len(names) > FOUND_LISTED else "")
    return f"{folder} holds {shown or 'nothing'}"


class Reader:
    """One dataset's native files -> manifest; subclasses set ``name``, ``classes`` and implement ``build_manifest``."""

    name: str = "base"
    classes: tuple[str, ...] = ()  # canonical class order of the dataset's task
    multilabel: bool = False
    is_synthetic: bool = False
    folder_names: tuple[str, ...] = ()  # sub-folders of a data root where the dataset may lie
    layout: str = ""  # the native layout looks_like_root expects, in words (named when the dataset is not found)
    target_columns: tuple[str, ...] = ()  # extra manifest columns that encode_frame needs (joined onto the split)
    # The generated set (reader name, options) that stands in for this dataset when a suite has no data root.
    synthetic_stand_in: tuple[str, dict] = ("synthetic", {})
    # Draw the split over duplicate groups (datamodules/duplicates.py), so a copied image never straddles splits.
    group_duplicates_by_default: bool = True

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        self.missing_policy = "skip"  # the DataModule's ``missing`` option (datamodules/missing.py)
        self.reset()

    def reset(self) -> None:
        """Forget what the last build_manifest left out (missing, conflicting, rejected and excluded rows)."""
        self.missing = missing_stage.empty_problems("path", "problem")
        self.rejected = missing_stage.empty_problems("path", "problem")
        self.label_conflicts = missing_stage.empty_problems("image", "labels", "origin")
        # Metadata rows left out on purpose, by reason (e.g. {"view": 54, "unlabelled": 78}).
        self.manifest_excluded: dict[str, int] = {}

    # ----- what a dataset file implements -----
    def build_manifest(self) -> pd.DataFrame:
        raise NotImplementedError

    @classmethod
    def locate(cls, data_root: str | Path) -> Path:
        """Find this dataset's root under ``data_root`` (the folder itself or one of ``folder_names``)."""
        data_root = Path(data_root).expanduser()
        candidates = [data_root] + [data_root / name for name in cls.folder_names]
        for candidate in candidates:
            if candidate.is_dir() and cls.looks_like_root(candidate):
                return candidate
        tried = ", ".join(str(c) for c in candidates)
        expected = f"; expected {cls.layout}" if cls.layout else ""
        found = _found(data_root) if data_root.is_dir() else f"{data_root} does not exist"
        raise DatasetNotFoundError(f"{cls.name}: no dataset in its native layout found; looked in {tried}{expected}; {found}")

    @classmethod
    def looks_like_root(cls, path: Path) -> bool:
        return path.is_dir()

    @property
    def variant(self) -> str:
        """The options that change which images or labels the manifest holds (task, views, version), as a short
        tag in the split file name, so that two option sets never share a split file. '' when there are none."""
        return ""

    @property
    def image_root(self) -> Path:
        """The folder the split CSV's image paths are relative to: the dataset root, unless images lie elsewhere."""
        return self.root

    def encode_frame(self, frame: pd.DataFrame, class_names: list[str]) -> np.ndarray:
        """Targets of a split frame; a dataset overrides this when its targets need more than ``label``."""
        return encode_targets(frame["label"], class_names, self.multilabel)

    # ----- hooks of a combined task (combined/compose.py); a single dataset keeps these defaults -----
    needs_duplicates = False  # True: the manifest depends on the duplicates (views, fixed test sets), so they are always searched
    duplicate_search = DuplicateSearch()  # which pairs count (grouping.py)

    def after_duplicates(self, manifest: pd.DataFrame, pairs: pd.DataFrame, *, split_seed: int) -> pd.DataFrame:
        """The manifest once its duplicate pairs are known, before the split is drawn."""
        return manifest

    def describe_extra(self, dm) -> dict:
        """Keys a result file records beyond the DataModule's own (describe.py)."""
        return {}

    # ----- bookkeeping the readers call (datamodules/missing.py) -----
    def drop_missing(self, frame: pd.DataFrame, *, origin, exists: pd.Series | None = None) -> pd.DataFrame:
        return missing_stage.drop_missing(self, frame, origin=origin, exists=exists)

    def drop_conflicting_labels(self, frame: pd.DataFrame, *, origin, key: str = "path") -> pd.DataFrame:
        return missing_stage.drop_conflicting_labels(self, frame, origin=origin, key=key)


def encode_targets(labels: pd.Series, class_names: list[str], multilabel: bool) -> np.ndarray:
    """Class indices (single-label) or a multi-hot float matrix (multi-label, '|'-joined findings)."""
    if multilabel:
        hot = np.zeros((len(labels), len(class_names)), dtype=np.float32)
        for i, label in enumerate(labels):
            for finding in filter(None, str(label).split("|")):
                if finding in class_names:
                    hot[i, class_names.index(finding)] = 1.0
        return hot
    return labels.map(class_names.index).to_numpy(dtype=np.int64)
