"""The manifest: one row per image, the single source every later stage (split, cache, loaders) reads.

Columns (see README "Manifest"):
  path        absolute path of the image file
  label       class name; for multi-label datasets the findings joined by "|" ("" = no finding)
  patient_id  patient identifier, unique within the dataset (splits are made over these)
  source      where the image comes from (dataset or sub-collection)
  view        radiographic view (PA, AP, AP Supine, L, ...) or "" when unknown
  sex, age    when the dataset gives them, else "" / NaN
  official_split  "train", "val", "test" or "" when the dataset publishes a split
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

COLUMNS = ["path", "label", "patient_id", "source", "view", "sex", "age", "official_split"]
REQUIRED = ["path", "label", "patient_id"]


class ManifestError(ValueError):
    """A dataset's native metadata cannot be turned into a manifest; the message names file, column, row."""


def make_manifest(rows: list[dict] | pd.DataFrame, *, origin: str | Path) -> pd.DataFrame:
    """Normalise rows into the manifest schema, checking the required columns.

    ``origin`` names the file or folder the rows came from, so errors point the user at it.
    """
    frame = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows.copy()
    if frame.empty:
        raise ManifestError(f"{origin}: no images found")
    for column in REQUIRED:
        if column not in frame.columns:
            raise ManifestError(f"{origin}: manifest has no column {column!r}")
        missing = frame[column].isna() | (frame[column].astype(str) == "")
        if column != "label" and missing.any():
            row = int(missing.to_numpy().nonzero()[0][0])
            raise ManifestError(f"{origin}: row {row} has an empty {column!r}")
    defaults = {"source": "", "view": "", "sex": "", "age": float("nan"), "official_split": ""}
    for column, value in defaults.items():
        if column not in frame.columns:
            frame[column] = value
    frame["path"] = frame["path"].map(lambda p: str(Path(p)))
    frame["patient_id"] = frame["patient_id"].astype(str)
    frame["label"] = frame["label"].fillna("").astype(str)
    for column in ("source", "view", "sex", "official_split"):
        frame[column] = frame[column].fillna("").astype(str)
    duplicated = frame["path"].duplicated()
    if duplicated.any():
        first = frame.loc[duplicated, "path"].iloc[0]
        raise ManifestError(f"{origin}: image {first} is listed more than once")
    return frame[COLUMNS + [c for c in frame.columns if c not in COLUMNS]].reset_index(drop=True)
