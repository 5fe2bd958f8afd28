"""Leave-one-source-out (LOSO) splits: whole sources held out as the test split, the rest drawn as usual.

A model that is scored on images of the sources it was trained on can learn a source's look (scanner, hospital,
publication) instead of the disease. A LOSO split holds the images of one or more sources (a manifest column:
``component`` of a combined task, else ``source``) out as ``test``; the other sources are drawn by group/patient
with the seeded stratified draw of splits.py into train, val (``validation="random"``) and ``test_in_source``,
the in-distribution test of the training sources (as WILDS reports both). With ``validation="source"`` one more
training source is held out whole as ``val``.

Duplicates (``group_id``, grouping.py) go with the held-out source: a row of another source whose group holds a
held-out row is ``excluded`` (never trained or validated on, not scored twice) and counted, and likewise for the
val source. Official splits (``official_split``) are ignored by a LOSO split, except ``excluded`` rows, which stay
excluded.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np
import pandas as pd

from datamodules.manifest import ManifestError
from datamodules.splits import EXCLUDED, IN_SOURCE_TEST, _draw, _patient_strata

VALIDATIONS = ("random", "source")
HELD_OUT_DEFAULTS: dict[str, Any] = {"field": "auto", "test": [], "validation": "random", "val_source": None}
HELD_OUT_DUPLICATE = "duplicate_of_held_out_source"
VAL_SOURCE_DUPLICATE = "duplicate_of_val_source"


def held_out_options(held_out: dict[str, Any], *, name: str = "held_out") -> dict[str, Any]:
    """The ``held_out`` option with its defaults filled in and checked (ValueError naming the bad key or value)."""
    unknown = set(held_out) - set(HELD_OUT_DEFAULTS)
    if unknown:
        raise ValueError(f"{name}: held_out has unknown keys {sorted(unknown)}; known: {list(HELD_OUT_DEFAULTS)}")
    options = {**HELD_OUT_DEFAULTS, **held_out}
    test = options["test"]
    options["test"] = [test] if isinstance(test, str) else [str(t) for t in test or []]
    if not options["test"]:
        raise ValueError(f"{name}: held_out.test names no source; give the source values to hold out as the test split")
    if options["validation"] not in VALIDATIONS:
        raise ValueError(f"{name}: held_out.validation={options['validation']!r}; use one of {VALIDATIONS}")
    if options["val_source"] is not None and options["validation"] != "source":
        raise ValueError(f"{name}: held_out.val_source={options['val_source']!r} needs validation: source")
    if options["val_source"] in options["test"]:
        raise ValueError(f"{name}: held_out.val_source={options['val_source']!r} is also a held-out test source")
    return options


def _safe(text) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", str(text))


def held_out_tag(options: dict[str, Any]) -> str:
    """The split file name's part naming the held-out sources (filesystem-safe; long lists end in a hash)."""
    tag = "loso-" + "+".join(_safe(t) for t in sorted(options["test"]))
    if options["validation"] == "source":
        tag += f"-valsource-{_safe(options['val_source'] or 'auto')}"
    if options["field"] != "auto":
        tag += f"-field-{_safe(options['field'])}"
    if len(tag) > 120:
        tag = tag[:100] + "-" + hashlib.sha256(tag.encode()).hexdigest()[:12]
    return tag


def source_field(manifest: pd.DataFrame, field: str = "auto") -> str:
    """The manifest column naming each image's source: ``component`` when there is one, else ``source`` for "auto"."""
    if field == "auto":
        field = "component" if "component" in manifest.columns else "source"
    if field not in manifest.columns:
        raise ManifestError(f"held_out.field={field!r}: the manifest has no such column; columns: {sorted(manifest.columns)}")
    return field


def source_counts(manifest: pd.DataFrame, field: str = "auto", labels: pd.Series | None = None) -> dict[str, dict[str, int]]:
    """Images per source and task label: ``labels`` (one per manifest row, e.g. after a class map; None or NaN =
    outside the task) default to the manifest's ``label``. Rows an official split excludes are not counted."""
    field = source_field(manifest, field)
    labels = manifest["label"] if labels is None else pd.Series(labels, index=manifest.index)
    official = manifest.get("official_split", pd.Series("", index=manifest.index)).fillna("")
    frame = pd.DataFrame({"source": manifest[field].astype(str), "label": labels})[official != EXCLUDED]
    counts: dict[str, dict[str, int]] = {str(s): {} for s in sorted(frame["source"].unique())}
    for (source, label), n in frame.dropna(subset=["label"]).groupby(["source", "label"]).size().items():
        counts[str(source)][str(label)] = int(n)
    return counts


def sources_with_classes(counts: dict[str, dict[str, int]], min_classes: int = 2) -> list[str]:
    """The sources (sorted) holding images of at least ``min_classes`` labels: those a LOSO test can score."""
    return [s for s in sorted(counts) if sum(1 for n in counts[s].values() if n > 0) >= min_classes]


def _known(counts: dict[str, dict[str, int]], images: pd.Series) -> str:
    return ", ".join(f"{s} ({int(images.get(s, 0))} images)" for s in sorted(counts))


def check_sources(counts: dict[str, dict[str, int]], images: pd.Series, names: list[str], field: str, what: str) -> None:
    """ManifestError naming the field, the unknown name and the known sources with their image counts."""
    for source in names:
        if source not in counts:
            raise ManifestError(f"held_out.{what}: no image has {field}={source!r}; known sources: {_known(counts, images)}")


def check_held_out_classes(counts: dict[str, dict[str, int]], test: list[str], where: str) -> None:
    """A held-out source with fewer than two task classes cannot be scored (single-label tasks)."""
    for source in test:
        present = sorted(label for label, n in counts.get(source, {}).items() if n > 0)
        if len(present) < 2:
            raise ManifestError(f"{where}: the held-out source {source!r} holds only the classes {present}: its balanced accuracy "
                                "and AUROC are not defined; hold out a source with at least two classes")


def _exclude_mates(split: pd.Series, keys: pd.Series, taken: pd.Series) -> int:
    """Mark the undecided rows of every group (or patient) holding a ``taken`` row as excluded; return how many."""
    mates = (split == "") & keys.isin(set(keys[taken]))
    split[mates] = EXCLUDED
    return int(mates.sum())


def assign_source_splits(manifest: pd.DataFrame, *, field: str = "auto", test: list[str], validation: str = "random",
                         val_source: str | None = None, seed: int, val_fraction: float = 0.15, test_fraction: float = 0.15,
                         labels: pd.Series | None = None) -> pd.Series:
    """The split of every manifest row: test (held-out sources), val, train, test_in_source or excluded.

    Official splits are ignored, except ``official_split == "excluded"`` rows, which stay excluded. Rows of other
    sources sharing a group (``group_id``, else patient) with a held-out (or val-source) row are excluded; the
    counts are in ``split.attrs`` (``duplicate_of_held_out_source``, ``duplicate_of_val_source``). ``labels``: the
    task labels (after a class map) used to choose the default ``val_source``, the first training source in sorted
    order with at least two classes.
    """
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(f"bad split fractions val={val_fraction} test={test_fraction}")
    options = held_out_options({"field": field, "test": test, "validation": validation, "val_source": val_source})
    field = source_field(manifest, field)
    sources = manifest[field].astype(str)
    counts = source_counts(manifest, field, labels)
    images = sources.value_counts()
    check_sources(counts, images, options["test"], field, "test")
    training = [s for s in sorted(counts) if s not in options["test"]]
    if not training:
        raise ManifestError(f"held_out.test holds out every source ({_known(counts, images)}); no source is left to train on")

    key = "group_id" if "group_id" in manifest.columns else "patient_id"
    keys = manifest[key].astype(str)
    official = manifest.get("official_split", pd.Series("", index=manifest.index)).fillna("")
    split = pd.Series("", index=manifest.index, dtype=object)
    split[official == EXCLUDED] = EXCLUDED
    held = (split == "") & sources.isin(options["test"])
    split[held] = "test"
    excluded = {HELD_OUT_DUPLICATE: _exclude_mates(split, keys, held), VAL_SOURCE_DUPLICATE: 0}

    fractions = {"val": val_fraction} if options["validation"] == "random" else {}
    if options["validation"] == "source":
        val_source = options["val_source"]
        if val_source is None:
            candidates = [s for s in sources_with_classes(counts) if s in training]
            if not candidates:
                raise ManifestError(f"held_out: validation 'source' needs a training source with at least two classes; "
                                    f"training sources: {_known({s: counts[s] for s in training}, images)}")
            val_source = candidates[0]
        check_sources(counts, images, [val_source], field, "val_source")
        if len(training) < 2:
            raise ManifestError(f"held_out: validation 'source' holds out {val_source!r} too, leaving no source to train on")
        in_val = (split == "") & (sources == val_source)
        split[in_val] = "val"
        excluded[VAL_SOURCE_DUPLICATE] = _exclude_mates(split, keys, in_val)
    fractions[IN_SOURCE_TEST] = test_fraction

    free = manifest[split == ""].assign(**{key: keys[split == ""]})
    if len(free):
        assignment = _draw(_patient_strata(free, key), np.random.default_rng(seed), fractions)
        split[split == ""] = free[key].map(assignment)
    split.attrs.update(excluded, val_source=val_source if options["validation"] == "source" else None)
    return split


def count_source_duplicates(split: pd.DataFrame, official_excluded: pd.Series) -> dict[str, int]:
    """From a LOSO split file (``split``, ``group_id``): excluded rows, not excluded by an official split, whose
    group holds a held-out (``test``) row, and those whose group holds a ``val`` row (the val source's duplicates)."""
    key = "group_id" if "group_id" in split.columns else "patient_id"
    rest = (split["split"] == EXCLUDED) & ~official_excluded.to_numpy()
    of_test = rest & split[key].isin(set(split.loc[split["split"] == "test", key]))
    of_val = rest & ~of_test & split[key].isin(set(split.loc[split["split"] == "val", key]))
    return {HELD_OUT_DUPLICATE: int(of_test.sum()), VAL_SOURCE_DUPLICATE: int(of_val.sum())}
