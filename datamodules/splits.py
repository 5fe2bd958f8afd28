"""Patient-level, label-stratified, seeded train/val/test splits, and the split CSV every method shares.

A patient's images always land in one split. Patients are stratified by their most frequent label, then
shuffled within each stratum by a seeded generator, so the same manifest and seed always give the same split.
A dataset's official split (manifest column ``official_split``) wins where it exists.

An optional manifest column ``group_id`` draws the split by groups instead of patients (a combined dataset joins
each patient with every image that duplicates one of its images, so duplicates never straddle splits); the
leakage check still checks patients. ``official_split == "excluded"`` keeps an image out of every split.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from datamodules.atomic import atomic_path
from datamodules.manifest import ManifestError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")  # the splits every DataModule has, with the loaders train/val/test_dataloader
# A leave-one-source-out split's in-distribution test of its training sources (source_split.py, WILDS-style); only
# such a split has it. Every check of patients and duplicates covers it too (USED_SPLITS).
IN_SOURCE_TEST = "test_in_source"
USED_SPLITS = (*SPLITS, IN_SOURCE_TEST)
EXCLUDED = "excluded"
SPLIT_COLUMNS = ["image", "patient_id", "label", "split"]
ROWS_SHOWN = 5  # offending rows an error message names
REDRAW = "delete it (or use a new --out) to draw a new split"


class LeakageError(ManifestError, AssertionError):
    """A patient occurs in more than one split (a ManifestError, so the CLI reports it as an ``error:`` line)."""


class SplitMismatchError(ManifestError):
    """The shared split file is malformed or disagrees with the dataset (an image's label or patient, its images)."""


def _patient_strata(frame: pd.DataFrame, key: str = "patient_id") -> pd.Series:
    """Each patient's (or group's) most frequent label (ties broken alphabetically), the stratum it is drawn from.

    A manifest column ``stratum`` replaces the label here (multi-label datasets, whose label combinations are
    too many and too small to stratify by)."""
    column = "stratum" if "stratum" in frame.columns else "label"
    if column == "stratum":  # rows without a stratum (e.g. from another component of a combined set) use their label
        frame = frame.assign(stratum=frame["stratum"].where(frame["stratum"].fillna("") != "", frame["label"]))
    counts = frame.groupby([key, column]).size().reset_index(name="n")
    counts = counts.sort_values([key, "n", column], ascending=[True, False, True])
    return counts.drop_duplicates(key).set_index(key)[column]


def _draw(patients: pd.Series, rng: np.random.Generator, fractions: dict[str, float]) -> dict[str, str]:
    """Assign the patients of each stratum to splits in the given fractions (train takes the rest)."""
    assignment: dict[str, str] = {}
    for stratum in sorted(patients.unique()):
        members = np.array(sorted(patients.index[patients == stratum]))
        rng.shuffle(members)
        n = len(members)
        start = 0
        for split, fraction in fractions.items():
            take = int(round(n * fraction))
            if fraction > 0 and take == 0 and n >= len(fractions) + 1:
                take = 1  # keep every class present in every split when the stratum allows it
            for patient in members[start : start + take]:
                assignment[patient] = split
            start += take
        for patient in members[start:]:
            assignment[patient] = "train"
    return assignment


def assign_splits(
    manifest: pd.DataFrame, *, seed: int, val_fraction: float = 0.15, test_fraction: float = 0.15
) -> pd.Series:
    """Return the split of every manifest row: train, val, test or excluded."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(f"bad split fractions val={val_fraction} test={test_fraction}")
    rng = np.random.default_rng(seed)
    official = manifest.get("official_split", pd.Series("", index=manifest.index)).fillna("")
    key = "group_id" if "group_id" in manifest.columns else "patient_id"  # what is drawn: groups or patients
    split = pd.Series("", index=manifest.index, dtype=object)

    split[official == "test"] = "test"
    split[official == "val"] = "val"
    fixed_patients = set(manifest.loc[split != "", key])
    split[official == EXCLUDED] = EXCLUDED
    clash = (split == "") & manifest[key].isin(fixed_patients)
    if clash.any():
        log.warning(
            "%d images of %d %s who also appear in the official val/test lists are excluded from training",
            int(clash.sum()),
            manifest.loc[clash, key].nunique(),
            "patients" if key == "patient_id" else "patients or duplicate groups",
        )
        split[clash] = EXCLUDED

    free = manifest[split == ""]
    if len(free):
        fractions = {}
        if not (official == "val").any():
            fractions["val"] = val_fraction
        if not (official == "test").any():
            fractions["test"] = test_fraction
        assignment = _draw(_patient_strata(free, key), rng, fractions)
        split[split == ""] = free[key].map(assignment)
    return split


def assert_patient_disjoint(frame: pd.DataFrame, *, where: str = "split") -> None:
    """Raise LeakageError if any patient_id occurs in two of train/val/test/test_in_source."""
    used = frame[frame["split"].isin(USED_SPLITS)]
    per_patient = used.groupby("patient_id")["split"].nunique()
    leaking = per_patient[per_patient > 1]
    if len(leaking):
        examples = ", ".join(map(str, leaking.index[:5]))
        raise LeakageError(f"{where}: {len(leaking)} patients occur in more than one split (e.g. {examples})")


def write_split_csv(manifest: pd.DataFrame, split: pd.Series, root: Path, path: Path) -> None:
    """Write the shared split: image paths relative to the dataset root, so the file is portable."""
    root = Path(root).resolve()
    frame = pd.DataFrame(
        {
            "image": [Path(p).resolve().relative_to(root).as_posix() for p in manifest["path"]],
            "patient_id": manifest["patient_id"].to_numpy(),
            "label": manifest["label"].to_numpy(),
            "split": split.to_numpy(),
        }
    )
    if "group_id" in manifest.columns:
        frame["group_id"] = manifest["group_id"].astype(str).to_numpy()
    frame = frame.sort_values("image", kind="stable")
    assert_patient_disjoint(frame, where=str(path))
    with atomic_path(path) as tmp:  # a unique temporary name: two writers never share one
        frame.to_csv(tmp, index=False, lineterminator="\n")


def read_split_csv(path: Path) -> pd.DataFrame:
    """Read a split file; SplitMismatchError when it is not a readable table, lacks a column, lists an image
    twice or holds an unknown split value."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise SplitMismatchError(f"{path}: not a readable split file ({error}); {REDRAW}") from None
    missing = [c for c in SPLIT_COLUMNS if c not in frame.columns]
    if missing:
        raise SplitMismatchError(f"{path}: split file lacks columns {missing}; {REDRAW}")
    _refuse(frame, frame["image"].duplicated(keep=False), path, "rows list the same image", lambda r: f"{r.image} ({r.split})")
    _refuse(frame, ~frame["split"].isin((*USED_SPLITS, EXCLUDED)), path, f"rows have a split other than {', '.join((*USED_SPLITS, EXCLUDED))}",
            lambda r: f"{r.image}: {r.split!r}")
    return frame


def check_split(split: pd.DataFrame, dataset: pd.DataFrame, *, where: str | Path, origin: str | Path) -> None:
    """Raise SplitMismatchError naming the rows when an image (``path``) has another label or patient in the split
    file (``where``) than in the dataset read from ``origin``: the split's labels are the ground truth a run uses."""
    both = split[["image", "path", "label", "patient_id"]].merge(dataset[["path", "label", "patient_id"]], on="path", suffixes=("", "_now"))
    for column in ("label", "patient_id"):
        _refuse(both, both[column] != both[f"{column}_now"].astype(str), where, f"images have another {column} than in {origin}",
                lambda r, c=column: f"{r.image}: {getattr(r, c)!r} in the split file, {getattr(r, c + '_now')!r} in the dataset")


def _refuse(frame: pd.DataFrame, bad: pd.Series, where, problem: str, describe) -> None:
    """Raise SplitMismatchError naming the first ROWS_SHOWN ``bad`` rows (``describe`` formats one)."""
    if bad.any():
        rows = "; ".join(describe(r) for r in frame[bad].head(ROWS_SHOWN).itertuples(index=False))
        more = f" (and {int(bad.sum()) - ROWS_SHOWN} more)" if bad.sum() > ROWS_SHOWN else ""
        raise SplitMismatchError(f"{where}: {int(bad.sum())} {problem}: {rows}{more}; {REDRAW}")
