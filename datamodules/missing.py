"""Stage 2 of the pipeline (after a reader lists its images): the missing-file policy, repeated rows and unusable
paths, recorded on the reader so the result file and data report count what was left out and why."""

from __future__ import annotations

import logging
import os

import pandas as pd

from datamodules.manifest import ManifestError, path_problem, printable, repeated_images

log = logging.getLogger(__name__)

MISSING_POLICIES = ("skip", "keep", "error")  # what to do with images listed in metadata but absent on disk
MISSING_LISTED = 20  # up to this many absent images are named one by one in the log; more are summarised


def empty_problems(*columns: str) -> pd.DataFrame:
    """An empty string table of ``columns`` (the reader's missing / rejected / conflict records)."""
    return pd.DataFrame({c: pd.Series(dtype=str) for c in columns})


def drop_missing(reader, frame: pd.DataFrame, *, origin, exists: pd.Series | None = None) -> pd.DataFrame:
    """Handle manifest rows whose image file is not on disk, per ``reader.missing_policy``.

    ``skip`` (default): drop them, record them in ``reader.missing`` (path, problem; counted as
    ``excluded['missing_file']``) and log one warning that names them, or summarises them when there are many
    (a subset of a large dataset may lack 100k files). ``keep``: leave them in, so the cache reports each one
    as unreadable. ``error``: raise a ManifestError. ``exists`` may give the check precomputed.
    """
    frame = pd.DataFrame(frame).reset_index(drop=True)
    if exists is None:
        exists = frame["path"].map(lambda p: os.path.isfile(p))
    exists = pd.Series(exists, index=frame.index).astype(bool)
    absent = frame.loc[~exists, "path"].astype(str)
    if absent.empty or reader.missing_policy == "keep":
        return frame
    if exists.sum() == 0:
        raise ManifestError(f"{origin}: none of the {len(frame)} images it lists is on disk (e.g. {absent.iloc[0]})")
    if reader.missing_policy == "error":
        raise ManifestError(f"{origin}: {len(absent)} listed images are not on disk, e.g. {', '.join(absent.iloc[:5])}")
    problem = f"listed in {origin} but file not found"
    reader.missing = pd.concat([reader.missing, pd.DataFrame({"path": absent.to_numpy(), "problem": problem})], ignore_index=True)
    reader.missing = reader.missing.drop_duplicates("path").reset_index(drop=True)
    shown = list(absent.iloc[:MISSING_LISTED]) if len(absent) <= MISSING_LISTED else list(absent.iloc[:3]) + ["..."]
    log.warning("%s: %d of %d images listed in %s are not on disk and are excluded: %s", reader.name, len(absent), len(frame), origin, ", ".join(shown))
    return frame[exists].reset_index(drop=True)


def drop_conflicting_labels(reader, frame: pd.DataFrame, *, origin, key: str = "path") -> pd.DataFrame:
    """Merge rows that list one image (``key``) twice: the same label twice keeps one row; different labels
    leave the image out, logged (image, labels, ``origin``) and counted as ``excluded['conflicting_labels']``."""
    frame, conflicts = repeated_images(pd.DataFrame(frame), key=key)
    if len(conflicts):
        reader.label_conflicts = pd.concat([reader.label_conflicts, conflicts.assign(origin=str(origin))], ignore_index=True).drop_duplicates()
        reader.manifest_excluded["conflicting_labels"] = reader.manifest_excluded.get("conflicting_labels", 0) + len(conflicts)
        shown = "; ".join(f"{printable(r.image)} ({r.labels})" for r in conflicts.head(MISSING_LISTED).itertuples())
        log.warning("%s: %d images are listed in %s with different labels and are left out: %s%s", reader.name, len(conflicts),
                    origin, shown, " ..." if len(conflicts) > MISSING_LISTED else "")
    return frame.reset_index(drop=True)


def screen_paths(reader, manifest: pd.DataFrame) -> pd.DataFrame:
    """Leave out the images whose path cannot be used at all (a file name that is not valid UTF-8, a symlink
    loop: manifest.path_problem); each is reported with the cache's problems and counted as unreadable."""
    problems = manifest["path"].map(path_problem)
    bad = problems != ""
    if not bad.any():
        return manifest
    rejected = pd.DataFrame({"path": manifest.loc[bad, "path"].map(printable).to_numpy(), "problem": problems[bad].to_numpy()})
    for row in rejected.itertuples():
        log.warning("unreadable image excluded: %s (%s)", row.path, row.problem)
    reader.rejected = pd.concat([reader.rejected, rejected], ignore_index=True).drop_duplicates("path").reset_index(drop=True)
    return manifest[~bad].reset_index(drop=True)
