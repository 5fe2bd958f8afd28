"""Stage 5, second half: the shared split file read back and checked against the dataset as read now.

The split file's labels are the ground truth of every run: an image with another label or patient, or one the
dataset no longer holds although its file is there, is a SplitMismatchError; an image that is unreadable or gone
now is reported and counted; a dataset image the split does not know is counted and not used.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from datamodules.missing import MISSING_LISTED
from datamodules.splits import EXCLUDED, REDRAW, SplitMismatchError, check_split, read_split_csv

log = logging.getLogger(__name__)


def resolved(path: str | Path) -> str:
    """The absolute path with symlinks resolved; a path that cannot be resolved (a link loop) stays absolute."""
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):
        return os.path.abspath(path)


def read_split(split_path: Path, reader, manifest: pd.DataFrame, cache) -> tuple[pd.DataFrame, dict[str, int]]:
    """The split's usable rows with their cache ``row`` (and the reader's target columns), and the exclusion counts."""
    frame = read_split_csv(split_path)
    root = reader.image_root.resolve()
    frame["path"] = [str(root / image) for image in frame["image"]]
    manifest = manifest.assign(path=[resolved(p) for p in manifest["path"]])
    index = cache.index.assign(path=[resolved(p) for p in cache.index["path"]])
    unreadable = set(index.loc[index["problem"] != "", "path"])
    usable = manifest[~manifest["path"].isin(unreadable)]
    check_split(frame, usable, where=split_path, origin=reader.root)
    known = frame["path"].isin(usable["path"])
    if not known.all():
        _not_in_dataset(split_path, reader, frame[~known], unreadable)
    unsplit = int((~usable["path"].isin(frame["path"])).sum())
    if unsplit:
        log.warning("%s: %d images of the dataset are not in the shared split file %s and are not used; "
                    "delete that file (or use a new --out) to split again", reader.name, unsplit, split_path)
    excluded = {
        "unreadable": len(cache.problems),
        "not_in_split_file": unsplit,
        # rows the split keeps out of train/val/test: their patient (or a duplicate of one of their images) is
        # in a fixed official val/test list (splits.assign_splits)
        "duplicate_or_patient_of_fixed_split": int((frame["split"] == EXCLUDED).sum()),
        "missing_file": len(reader.missing),
        **reader.manifest_excluded,
    }
    frame = frame[known]
    if reader.target_columns:
        frame = frame.merge(manifest[["path", *reader.target_columns]], on="path", how="left")
    frame = frame.merge(index, on="path", how="left")
    frame["row"] = frame["row"].astype(np.int64)
    return frame, excluded


def _not_in_dataset(split_path: Path, reader, rows: pd.DataFrame, unreadable: set[str]) -> None:
    """Split rows the dataset does not hold now: unreadable or listed-but-absent ones are reported already; a
    file gone from disk is reported as missing and counted; one still on disk but no longer read (its metadata
    row or label changed) is a SplitMismatchError."""
    reported = rows["path"].isin(unreadable | {resolved(p) for p in reader.missing["path"]})
    gone = ~reported & ~rows["path"].map(os.path.lexists)
    stray = rows[~reported & ~gone]
    if len(stray):
        shown = "; ".join(f"{r.image} ({r.label})" for r in stray.head(5).itertuples())
        raise SplitMismatchError(f"{split_path}: {len(stray)} images are in the split file but not in the dataset as {reader.name} "
                                 f"reads {reader.root} now (their metadata rows or labels changed?): {shown}; {REDRAW}")
    if gone.any():
        problem = f"in the split file {split_path} but file not found"
        reader.missing = pd.concat([reader.missing, pd.DataFrame({"path": rows.loc[gone, "path"].to_numpy(), "problem": problem})], ignore_index=True)
        log.warning("%s: %d images of the split file %s are no longer on disk and are excluded: %s", reader.name, int(gone.sum()),
                    split_path, ", ".join(rows.loc[gone, "image"].head(MISSING_LISTED)))
