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

import errno
import os
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
    if duplicated.any():  # readers merge repeated rows first (repeated_images); this is the safety net
        first = frame.loc[duplicated, "path"].iloc[0]
        raise ManifestError(f"{origin}: image {printable(first)} is listed more than once")
    return frame[COLUMNS + [c for c in frame.columns if c not in COLUMNS]].reset_index(drop=True)


def printable(path: str | Path) -> str:
    """``path`` as text that can always be printed and written as UTF-8 (undecodable bytes shown as \\xff)."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def path_problem(path: str) -> str:
    """Why a manifest path cannot be used even before decoding ("" when it can): a file name that is not valid
    UTF-8 (it could never be hashed or written to a CSV) or a symbolic link loop. Other errors (absent, no
    permission, corrupt) are left to the cache, which reports them when it decodes the file."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8"
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symbolic link loop"
    return ""


def repeated_images(frame: pd.DataFrame, *, key: str = "path") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows that list one image (``key``) more than once: repeats with the same label keep their first row; an
    image listed with different labels is left out. Returns the rows kept and the conflicts (image, labels)."""
    repeated = frame[frame[key].duplicated(keep=False)]
    labels = repeated.groupby(key, sort=False)["label"].agg(lambda values: list(dict.fromkeys(values)))
    conflicting = labels[labels.map(len) > 1]
    kept = frame[~frame[key].isin(conflicting.index) & ~frame[key].duplicated()]
    conflicts = pd.DataFrame({"image": conflicting.index.astype(str), "labels": conflicting.map(" / ".join).to_numpy()})
    return kept, conflicts


# ----- shared helpers for the dataset readers (additive) -----

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm"})

# Label names shared by the single-label COVID datasets, so that combined datasets line up.
COVID = "COVID-19"
NORMAL = "normal"
PNEUMONIA = "pneumonia"
NON_COVID = "non-COVID"


def metadata_error(path: str | Path, line: int | None, column: str, problem: str) -> ManifestError:
    """A ManifestError naming file, line (header = line 1) and column."""
    where = f"{path}, line {line}" if line is not None else str(path)
    return ManifestError(f"{where}, column {column!r}: {problem}")


def read_metadata_csv(path: str | Path, *, required: list[str] | tuple[str, ...], **read_kwargs) -> pd.DataFrame:
    """Read a metadata table with every cell as a string (blank = ""): UTF-8 first, Latin-1 as the fallback
    (some agchung/COVID-Net files are Latin-1). Raises ManifestError naming the file and any missing column."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: metadata file not found")
    for encoding in ("utf-8", "latin-1"):
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding, **read_kwargs)
            break
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            raise ManifestError(f"{path}: not a readable CSV table ({error})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ManifestError(f"{path}: missing column {missing[0]!r} (columns found: {', '.join(frame.columns)})")
    return frame


def image_files(directory: str | Path, *, recursive: bool = False) -> list[Path]:
    """Image files (by suffix) in ``directory``, sorted; hidden files and macOS ``__MACOSX`` copies are skipped."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for folder, subfolders, files in os.walk(directory):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and d != "__MACOSX") if recursive else []
        found += [Path(folder) / f for f in files if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_SUFFIXES]
    return sorted(found)


def index_by_name(directory: str | Path, names: set[str] | None = None) -> tuple[dict[str, Path], int]:
    """Map file name -> path for the image files anywhere under ``directory`` (only ``names`` if given).

    When a name occurs in several sub-folders the first in sorted order wins; the second value counts such names.
    """
    index: dict[str, Path] = {}
    duplicated = 0
    for path in image_files(directory, recursive=True):
        if names is not None and path.name not in names:
            continue
        if path.name in index:
            duplicated += 1
            continue
        index[path.name] = path
    return index, duplicated


def multilabel_strata(labels: pd.Series, *, min_images: int = 50, no_finding: tuple[str, ...] = ("No Finding",)) -> pd.Series:
    """A split stratum per multi-label image (the manifest's ``stratum`` column): its rarest finding among those
    with at least ``min_images`` images, so every common finding reaches val and test in proportion; 'finding'
    when it has only rarer ones; 'No Finding' when it has none. Stratifying by the full label combination would
    leave most combinations too small to reach val or test at all."""
    findings = labels.fillna("").astype(str).map(lambda label: [f for f in label.split("|") if f and f not in no_finding])
    counts = findings.explode().value_counts()
    common = counts[counts >= min_images]
    rank = {finding: n for finding, n in common.items()}

    def stratum(image_findings: list[str]) -> str:
        if not image_findings:
            return "No Finding"
        known = [f for f in image_findings if f in rank]
        return min(known, key=lambda f: (rank[f], f)) if known else "finding"

    return findings.map(stratum)
