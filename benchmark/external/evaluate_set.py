"""External test sets: a trained run scored on every image of another dataset (``python -m benchmark evaluate``,
and a suite's ``external:`` list at the end of every run).

The external dataset's reader lists its images (stage 1) and they are cached at the run's image size (stage 3);
their labels are mapped onto the run's classes (labels.py); images that copy one of the run's train/val
images are found (duplicates.py) and, by default, left out; the rest go through the run's eval transform
(its training split's normalisation) into the tested best checkpoint, scored by the method's own ``test_step``
(the siamese net against class templates of the run's training split), and measured by the same
``benchmark.evaluate`` as the internal test. Every image left out is counted by reason.

The result is ``<out>/external/<run_id>/<dataset>.json`` with ``<dataset>.predictions.csv`` beside it (scores,
labels, patient ids, paths: enough for bootstrap intervals later), never under ``<out>/results``, which the
leaderboard reads as internal runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.config import ConfigError
from benchmark.evaluate import evaluate
from benchmark.external.duplicates import train_val_duplicates
from benchmark.external.labels import check_label_map, map_findings, map_labels
from benchmark.external.metrics import external_intervals, present_class_metrics
from benchmark.external.report import duplicate_report, fmt, per_class, set_name, write_predictions
from benchmark.external.table import external_dir
from benchmark.external.trained_run import TrainedRun, describe_run, load_run, score
from benchmark.results import write_result
from datamodules.cache import ImageCache
from datamodules.locking import file_lock
from datamodules.manifest import ManifestError
from datamodules.missing import screen_paths
from datamodules.readers.base import encode_targets

log = logging.getLogger(__name__)
DUPLICATE_POLICIES = ("exclude", "keep")
PIPELINE_OPTIONS = ("missing",)  # the only DataModule options an external set may set; the rest are the run's


def resolve_root(name: str, root: str | Path | None, *, where: str) -> Path | None:
    """The dataset's folder: ``root`` itself or the dataset's folder under it (the reader's ``locate``); the
    phantoms need none. An unknown name is a ConfigError, a wrong folder a DatasetNotFoundError naming it."""
    from benchmark.schema import closest
    from datamodules import DATAMODULES

    if name not in DATAMODULES:
        raise ConfigError(f"{where}: unknown dataset {name!r}{closest(name, DATAMODULES)} (known: {', '.join(sorted(DATAMODULES))})")
    if root is None:
        if DATAMODULES[name].is_synthetic:
            return None
        raise ConfigError(f"{where}: dataset {name!r} needs a root (--root DIR, or the suite's --data-root)")
    return DATAMODULES[name].locate(root)


def check_options(name: str, options: dict | None, *, where: str) -> dict:
    """Reader options (as in a suite's dataset entry) plus ``missing``; image size, classes and the like are the run's."""
    from benchmark.schema import dataset_options
    from datamodules import DATAMODULES, CXRDataModule, constructor_parameters

    if options is not None and not isinstance(options, dict):
        raise ConfigError(f"{where}: options must be a JSON object, got {options!r}")
    options = dataset_options(DATAMODULES[name], options or {}, where=where)
    reader_options = constructor_parameters(DATAMODULES[name].reader)
    fixed = [k for k in options if k in constructor_parameters(CXRDataModule) and k not in reader_options and k not in PIPELINE_OPTIONS]
    if fixed:
        raise ConfigError(f"{where}: option(s) {fixed} of dataset {name!r} come from the run being evaluated, not from the external set")
    return options


def _images(name: str, root: Path | None, options: dict, *, image_size: int, cache_dir: Path, lung_crop: bool = False):
    """(reader, manifest, cache) of every image the external dataset lists, cached at the run's image size (and
    cropped to the lung region as the run's images were: ``lung_crop``, siamese paper 3.3.1)."""
    from datamodules import DATAMODULES

    datamodule = DATAMODULES[name](root, image_size=image_size, cache_dir=cache_dir, **options)
    reader = datamodule.reader
    manifest = screen_paths(reader, reader.build_manifest())
    with file_lock(Path(cache_dir) / f"{name}.lock"):
        cache = ImageCache(cache_dir, name, image_size, lung_crop=lung_crop).build(manifest)
    cache.rejected = reader.rejected
    if reader.needs_duplicates:  # a combined task's manifest depends on its own duplicates (views, references)
        from datamodules.grouping import search_duplicates

        manifest = reader.after_duplicates(manifest, search_duplicates(manifest, cache, reader.duplicate_search), split_seed=0)
    return reader, manifest, cache


def evaluate_external(run: TrainedRun, name: str, *, root: str | Path | None = None, options: dict | None = None,
                      label_map: dict | None = None, duplicates: str = "exclude", cache_dir: Path, command: str | None = None,
                      where: str = "evaluate", title: str | None = None, max_per_class: int | None = None, sample_seed: int = 0) -> dict[str, Any]:
    """Score ``run`` on every image of dataset ``name``; write and return the external result (``title``: how
    tables name the set, default its file name)."""
    if duplicates not in DUPLICATE_POLICIES:
        raise ConfigError(f"{where}: duplicates={duplicates!r}; use one of {', '.join(DUPLICATE_POLICIES)}")
    root = resolve_root(name, root, where=where)
    options = check_options(name, options, where=f"{where}: options")
    dm = run.datamodule
    classes, multilabel = list(dm.class_names), bool(dm.multilabel)
    given = check_label_map(label_map, classes, multilabel=multilabel, where=f"{where}: label map")
    reader, manifest, cache = _images(name, root, options, image_size=dm.image_size, cache_dir=Path(cache_dir),
                                     lung_crop=getattr(dm, "lung_crop", False))

    left_out: dict[str, int] = {"missing_file": len(reader.missing), "unreadable": len(reader.rejected)}
    left_out.update({f"reader_{reason}": int(n) for reason, n in reader.manifest_excluded.items()})
    if "exclusion" in manifest.columns:  # rows a combined reader keeps out (references, views)
        for reason, n in manifest.loc[manifest["exclusion"] != "", "exclusion"].value_counts().items():
            left_out[f"reader_{reason}"] = left_out.get(f"reader_{reason}", 0) + int(n)
        manifest = manifest[manifest["exclusion"] == ""]
    frame = manifest.merge(cache.index, on="path", how="left")
    readable = frame["problem"].fillna("") == ""
    left_out["unreadable"] += int((~readable).sum())
    frame = frame[readable].reset_index(drop=True)

    frame["mapped"], used, unscored = map_labels(frame["label"], classes, given, dm.class_map, multilabel=multilabel)
    unmapped = frame["mapped"].isna()
    left_out["no_counterpart"] = int(unmapped.sum())
    no_counterpart = {str(k): int(v) for k, v in frame.loc[unmapped, "label"].value_counts().sort_index().items()}
    frame = frame[~unmapped].reset_index(drop=True)

    pairs = train_val_duplicates(cache, dm._prepare(), dm.frames)  # the run's built cache (_prepare returns it, no rebuild)
    copied = frame["path"].isin(set(pairs["external_path"]))
    left_out["duplicate_of_train_val"] = int(copied.sum()) if duplicates == "exclude" else 0
    kept_copies = int(copied.sum()) if duplicates == "keep" else 0
    if duplicates == "exclude":
        frame = frame[~copied].reset_index(drop=True)
    sampled = {}
    if max_per_class:
        frame, sampled = sample_per_class(frame, int(max_per_class), seed=int(sample_seed))
        left_out["not_sampled"] = int(sum(total - kept for kept, total in sampled.values()))
    if frame.empty:
        raise ManifestError(f"{where}: no image of {name} at {root} is left to score (left out: {left_out}; labels without a "
                            f"counterpart among {classes}: {no_counterpart}); give a label map")

    if multilabel and reader.multilabel:  # columns the reader encodes beside the label (CheXpert's uncertain findings)
        for column in reader.target_columns:
            frame[column] = [map_findings(v, classes, given, dm.class_map) for v in frame[column].fillna("")]
    mapped = frame.assign(label=frame["mapped"])
    targets = reader.encode_frame(mapped, classes) if reader.multilabel == multilabel else encode_targets(mapped["label"], classes, multilabel)
    scores, labels = score(run, cache.array_path, frame["row"].astype("int64").to_numpy(), targets)
    evaluation = evaluate(scores, labels, classes, multilabel=multilabel)
    evaluation["metrics"] = present_class_metrics(evaluation["metrics"], scores, labels, classes, multilabel=multilabel)
    intervals = external_intervals(evaluation["metrics"], scores, labels, frame["patient_id"].astype(str).to_numpy(), classes,
                                   multilabel=multilabel, settings=run.result.get("bootstrap"))
    stem = set_name(name, options, reader.variant, given, duplicates, (int(max_per_class), int(sample_seed)) if max_per_class else None)
    folder = external_dir(run.out_dir, run.run_id)
    predictions_file = folder / f"{stem}.predictions.csv"
    write_predictions(predictions_file, frame, reader, scores, classes)
    result = {
        "kind": "external",
        "set_name": stem,
        "title": title or stem,
        "run": describe_run(run),
        "run_id": run.run_id,
        "config_fingerprint": run.result.get("config_fingerprint"),
        "external_dataset": {"name": name, "root": None if root is None else str(root), "options": options, "variant": reader.variant,
                             "synthetic": reader.is_synthetic, "multilabel": reader.multilabel, "labels": sorted(map(str, manifest["label"].unique()))},
        "classes": classes,
        "multilabel": multilabel,
        "label_map": {"given": given, "used": used},
        "counts": {"listed": int(len(frame) + sum(left_out.values())), "scored": int(len(frame)), "left_out": left_out,
                   "no_counterpart_by_label": no_counterpart, "unscored_findings": unscored, "duplicates_kept": kept_copies,
                   "sample": {"max_per_class": max_per_class, "seed": sample_seed, "kept_of": {k: list(v) for k, v in sampled.items()}} if max_per_class else None,
                   "per_class": per_class(frame["mapped"], classes, multilabel)},
        "duplicates": duplicate_report(pairs, manifest, dm, duplicates),
        "metrics": evaluation["metrics"],
        "ci": intervals["ci"],
        "bootstrap": intervals["bootstrap"],
        "confusion_matrix": evaluation.get("confusion_matrix"),
        "n_images": evaluation["n_images"],
        "predictions_file": str(predictions_file),
        "command": command,
    }
    path = folder / f"{stem}.json"
    write_result(path, result)
    result["_file"] = str(path)
    log.info("%s on %s: %d scored, left out %s; accuracy %s, AUROC %s; written %s", run.run_id, name, len(frame), left_out,
             fmt(result["metrics"].get("accuracy")), fmt(result["metrics"].get("auroc")), path)
    return result


def sample_per_class(frame: pd.DataFrame, per_class: int, *, seed: int = 0) -> tuple[pd.DataFrame, dict[str, tuple[int, int]]]:
    """At most ``per_class`` rows of each mapped label, drawn once with ``seed`` (the rows keep their order); returns
    the rows and {label: (kept, of)}."""
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(frame), dtype=bool)
    counts = {}
    for label in sorted(frame["mapped"].unique()):
        rows = np.flatnonzero((frame["mapped"] == label).to_numpy())
        chosen = rows if len(rows) <= per_class else rng.choice(rows, per_class, replace=False)
        keep[chosen] = True
        counts[str(label)] = (int(len(chosen)), int(len(rows)))
    return frame[keep].reset_index(drop=True), counts


def evaluate_result_file(result_file: str | Path, name: str, *, cache_dir: Path, **kwargs) -> dict[str, Any]:
    """``python -m benchmark evaluate``: read the run back (``trained_run.load_run``) and score it on ``name``."""
    return evaluate_external(load_run(result_file, cache_dir=cache_dir), name, cache_dir=cache_dir, **kwargs)


def evaluate_suite_externals(spec, result_file: Path, *, cache_dir: Path, datamodule, command: str | None = None) -> list[dict]:
    """Every external set of the suite (``spec.external``, resolved by benchmark/config.py) for one finished run."""
    entries = getattr(spec, "external", None) or []
    if not entries:
        return []
    run = load_run(result_file, cache_dir=cache_dir, datamodule=datamodule)
    results = []
    for entry in entries:
        if entry.get("skipped"):
            log.warning("%s: external set %s skipped: %s", spec.run_id, entry["name"], entry["skipped"])
            continue
        results.append(evaluate_external(run, entry["name"], root=entry.get("root"), options=entry.get("options"), label_map=entry.get("label_map"),
                                         duplicates=entry.get("duplicates", "exclude"), cache_dir=cache_dir, command=command,
                                         max_per_class=entry.get("max_per_class"), sample_seed=entry.get("sample_seed", 0),
                                         where=f"suite {spec.suite}: external {entry['name']}", title=entry.get("title")))
    return results
