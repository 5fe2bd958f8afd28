"""Stage 4 of the pipeline: the one duplicate-grouping stage, used by every DataModule (single and combined)
and by the data report.

Duplicates (datamodules/duplicates.py: identical bytes, or pHash distance <= ``max_distance`` and pixel
correlation >= ``min_correlation``) are found on the preprocessing cache. Every patient is joined with every
image that duplicates one of its images (connected components) into a ``group_id``; the split is drawn over these
groups (splits.py), so a copy of an image never sits in train while the original is in test.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from datamodules.duplicates import DEFAULT_MAX_DISTANCE, DEFAULT_MIN_CORRELATION, duplicate_groups, find_duplicates
from datamodules.splits import USED_SPLITS

log = logging.getLogger(__name__)

SCOPES = ("all", "cross_source")
REFERENCE = "reference"  # a combined task's role of images read only for look-up (no task label)


@dataclass(frozen=True)
class DuplicateSearch:
    """Which pairs count as duplicates: ``scope`` all pairs or only pairs between ``source_column`` values."""

    scope: str = "all"
    max_distance: int = DEFAULT_MAX_DISTANCE
    min_correlation: float = DEFAULT_MIN_CORRELATION
    source_column: str = "source"

    def __post_init__(self):
        if self.scope not in SCOPES:
            raise ValueError(f"duplicate_scope must be 'all' or 'cross_source', not {self.scope!r}")


def search_duplicates(manifest: pd.DataFrame, cache, search: DuplicateSearch = DuplicateSearch()) -> pd.DataFrame:
    """Duplicate pairs among the manifest's cached images, with each side's task label (None for a reference)."""
    indexed = manifest.set_index("path")
    pairs = find_duplicates(cache, sources=indexed[search.source_column], scope=search.scope,
                            max_distance=search.max_distance, min_correlation=search.min_correlation)
    labels = indexed["label"].where(indexed["role"] != REFERENCE, None) if "role" in indexed.columns else indexed["label"]
    labels = labels.astype(object)
    return pairs.drop(columns=["row_a", "row_b"]).assign(label_a=pairs["path_a"].map(labels), label_b=pairs["path_b"].map(labels))


def join_duplicates(manifest: pd.DataFrame, pairs: pd.DataFrame, *, name: str) -> pd.DataFrame:
    """Give every row a ``group_id``: its patient joined with all patients whose images duplicate its own."""
    manifest = manifest.assign(group_id=duplicate_groups(manifest, pairs))
    joined = manifest.groupby("group_id")["patient_id"].nunique()
    log.info("%s: %d duplicate pairs (%d across sources) join %d patients into %d groups that the split keeps together", name,
             len(pairs), int((pairs["source_a"] != pairs["source_b"]).sum()), int(joined[joined > 1].sum()), int((joined > 1).sum()))
    return manifest


def summarise_duplicates(pairs: pd.DataFrame, splits: pd.DataFrame) -> dict[str, Any]:
    """Counts of duplicate pairs, and the pairs with the split of each side (``splits``: path, split)."""
    split_of = dict(zip(splits["path"], splits["split"]))
    pairs = pairs.assign(split_a=pairs["path_a"].map(split_of).fillna(""), split_b=pairs["path_b"].map(split_of).fillna(""))
    used = pairs["split_a"].isin(USED_SPLITS) & pairs["split_b"].isin(USED_SPLITS)
    across = used & (pairs["split_a"] != pairs["split_b"])
    cross = pairs["source_a"] != pairs["source_b"]
    if "label_a" in pairs.columns:
        conflicts = (pairs["label_a"] != pairs["label_b"]) & pairs["label_a"].notna() & pairs["label_b"].notna()
    else:
        conflicts = pd.Series(False, index=pairs.index)
    return {
        "pairs": pairs,
        "pair_count": int(len(pairs)),
        "identical": int((pairs["kind"] == "identical").sum()),
        "near": int((pairs["kind"] == "near").sum()),
        "cross_source": int(cross.sum()),
        "by_sources": {f"{a}~{b}": int(n) for (a, b), n in pairs.groupby(["source_a", "source_b"]).size().items()} if len(pairs) else {},
        "label_conflicts": int(conflicts.sum()),
        "pairs_across_splits": int(across.sum()),
    }
