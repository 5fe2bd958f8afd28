"""A suite's ``split: {by: source, test: ...}`` expanded into the held-out splits its runs train on.

``test: NAME`` holds out one source, ``test: [A, B]`` two together (one run), ``test: each`` every source that
holds at least two of the task's classes, one run each (a source of one class has no balanced accuracy or AUROC;
it always trains). With ``tuning.select: leave-one-source-out-validation`` the runs validate on a whole training
source (``val_source``) instead of random patients of the training sources (DomainBed's training-domain
validation, Gulrajani and Lopez-Paz 2021, section 3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.config import ConfigError

DEFAULT_CACHE = Path(".cache/cxrbench")


def held_out_splits(dataset: dict, split: dict | None, *, suite_data: dict, tuning: dict | None, cache_dir: str | Path | None,
                    where: str) -> list[dict[str, Any] | None]:
    """The ``held_out`` data setting of each run on ``dataset`` ([None]: the usual patient split)."""
    if not split:
        return [None]
    validation = "source" if tuning and tuning["select"] == "leave-one-source-out-validation" else "random"
    test = split["test"]
    if test == "each":
        groups = [[source] for source in sources_to_hold_out(dataset, split["field"], suite_data, cache_dir=cache_dir, where=where)]
    else:
        groups = [[test] if isinstance(test, str) else list(test)]
    return [{"field": split["field"], "test": group, "validation": validation, "val_source": split.get("val_source")} for group in groups]


def sources_to_hold_out(dataset: dict, field: str, suite_data: dict, *, cache_dir: str | Path | None, where: str) -> list[str]:
    """The sources of ``dataset``'s manifest holding at least two of the task's classes (after the suite's class map)."""
    from benchmark.runner import datamodule_for
    from datamodules.source_split import source_counts, sources_with_classes

    from datamodules.manifest import ManifestError
    from datamodules.readers.base import DatasetNotFoundError

    datamodule = datamodule_for(dataset, suite_data, cache_dir=Path(cache_dir or DEFAULT_CACHE), split_dir=None, seed=0)
    try:
        manifest = datamodule.build_manifest()
    except (DatasetNotFoundError, ManifestError) as error:
        raise ConfigError(f"{where}: test: each reads the dataset's sources, and could not: {error}") from None
    counts = source_counts(manifest, field, datamodule.task_labels(manifest))  # under the suite's class map
    sources = sources_with_classes(counts, min_classes=1 if datamodule.multilabel else 2)
    if not sources:
        listed = "; ".join(f"{source}: {', '.join(labels)}" for source, labels in counts.items())
        raise ConfigError(f"{where}: test: each found no source with two classes to hold out ({listed or 'no sources'})")
    return sources

