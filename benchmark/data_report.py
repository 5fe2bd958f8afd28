"""What a dataset holds once read: images and patients per split and class, sources, views, unreadable or missing
files, and duplicate images (with the splits they landed in).

``python -m benchmark data-report <name> --root DIR [--json]``. For a combined task (datamodules/combined/)
``--root`` is the data root holding its components. The JSON keys below are stable (``REPORT_KEYS``,
``DUPLICATE_KEYS``, ``PAIR_KEYS``; tests/test_data_report.py pins them), so scripts can rely on them:

``dataset``, ``root``, ``synthetic``, ``classes``, ``multilabel``, ``image_size``, ``split_file``,
``split_sha256``;
``splits``: {split: {images, patients, per_class: {class: {images, patients}}}} (train, val, test);
``sources``: {source: images} and ``components``: {component: images} ({} for a single dataset);
``views``: {view: images} ("" = not given);
``problems``: [{path, problem}] for every image that is missing or cannot be decoded (the first
``PROBLEMS_LISTED``), ``problem_count`` (all of them), ``problem_reasons``: {reason: count};
``excluded``: {reason: images} as the DataModule counts them (unreadable, missing_file, view, reference,
duplicate_or_patient_of_fixed_split, ...);
``duplicates``: {scope, max_distance, min_correlation, pair_count, identical, near, cross_source, by_sources
({"a~b": pairs}), label_conflicts, pairs_across_splits, pairs: [{path_a, path_b, source_a, source_b, label_a,
label_b, split_a, split_b, kind, distance, correlation}]} (split "" = not in the split file: unreadable;
"excluded" = kept out of every split).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from datamodules import DatasetNotFoundError, get_datamodule_class
from datamodules.describe import class_counts
from datamodules.duplicates import DEFAULT_MAX_DISTANCE, DEFAULT_MIN_CORRELATION
from datamodules.grouping import DuplicateSearch, search_duplicates, summarise_duplicates
from datamodules.splits import read_split_csv

REPORT_KEYS = (
    "dataset", "root", "synthetic", "classes", "multilabel", "image_size", "split_file", "split_sha256", "splits",
    "sources", "components", "views", "problems", "problem_count", "problem_reasons", "excluded", "duplicates",
)
DUPLICATE_KEYS = (
    "scope", "max_distance", "min_correlation", "pair_count", "identical", "near", "cross_source", "by_sources",
    "label_conflicts", "pairs_across_splits", "pairs",
)
PAIR_KEYS = ("path_a", "path_b", "source_a", "source_b", "label_a", "label_b", "split_a", "split_b", "kind", "distance", "correlation")
PROBLEMS_LISTED = 1000  # the JSON lists this many problem files; problem_count and problem_reasons count all
TEXT_LISTED = 20  # the text report names this many problem files and duplicate pairs


def data_report(
    name: str,
    *,
    root: Path | None,
    image_size: int,
    cache_dir: Path,
    split_dir: Path,
    split_seed: int = 0,
    options: dict[str, Any] | None = None,
    duplicates: str = "auto",
    max_distance: int = DEFAULT_MAX_DISTANCE,
    min_correlation: float = DEFAULT_MIN_CORRELATION,
) -> dict[str, Any]:
    """Read dataset ``name`` (split, cache and all) and describe it; ``duplicates``: auto | all | cross_source | off."""
    cls = get_datamodule_class(name)
    options = dict(options or {})
    if cls.reader.needs_duplicates:  # a combined task: its own search is the one its split was drawn with
        options.setdefault("duplicate_distance", max_distance)
        options.setdefault("duplicate_correlation", min_correlation)
        if duplicates in ("all", "cross_source"):
            options.setdefault("duplicate_scope", duplicates)
    if root is None and not cls.is_synthetic:
        raise DatasetNotFoundError(f"{name}: give the dataset's folder (or, for a combined task, the data root) with --root DIR")
    if root is not None and not cls.is_synthetic:
        root = cls.locate(root)
    datamodule = cls(root, image_size=image_size, cache_dir=cache_dir, split_dir=split_dir, split_seed=split_seed, **options)
    datamodule.prepare_data()
    datamodule.setup()

    manifest = datamodule.manifest
    problems = pd.concat([datamodule.missing[["path", "problem"]], datamodule._cache.problems[["path", "problem"]]], ignore_index=True)
    problems = problems.drop_duplicates("path").sort_values("path").reset_index(drop=True)
    return {
        "dataset": name,
        "root": str(datamodule.root),
        "synthetic": datamodule.is_synthetic,
        "classes": list(datamodule.class_names),
        "multilabel": bool(datamodule.multilabel),
        "image_size": datamodule.image_size,
        "split_file": str(datamodule.split_path),
        "split_sha256": datamodule.split_sha256,
        "splits": _split_counts(datamodule),
        "sources": _counts(manifest["source"]),
        "components": _counts(manifest["component"]) if "component" in manifest.columns else {},
        "views": _counts(manifest["view"]),
        "problems": problems.iloc[:PROBLEMS_LISTED].to_dict(orient="records"),
        "problem_count": int(len(problems)),
        "problem_reasons": _counts(problems["problem"].str.replace(r" \(.*\)$", "", regex=True)),
        "excluded": {k: int(v) for k, v in datamodule.excluded.items()},
        "duplicates": _duplicates(datamodule, duplicates, max_distance, min_correlation),
    }


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.fillna("").value_counts().sort_index().items()}


def _split_counts(datamodule) -> dict[str, Any]:
    return {split: {"images": int(len(frame)), "patients": int(frame["patient_id"].nunique()),
                    "per_class": class_counts(frame, datamodule.class_names, datamodule.multilabel)}
            for split, frame in datamodule.frames.items()}


def _duplicates(datamodule, mode: str, max_distance: int, min_correlation: float) -> dict[str, Any]:
    if mode not in ("auto", "all", "cross_source", "off"):
        raise ValueError(f"duplicates must be auto, all, cross_source or off, not {mode!r}")
    manifest = datamodule.manifest
    if datamodule.reader.needs_duplicates:
        search = datamodule.reader.duplicate_search
        scope, max_distance, min_correlation = search.scope, search.max_distance, search.min_correlation
        pairs = datamodule.duplicate_pairs
    elif mode == "off":
        scope, pairs = "off", pd.DataFrame(columns=list(PAIR_KEYS))
    else:  # the grouping stage's search, with the report's thresholds
        scope = "all" if mode == "auto" else mode
        pairs = search_duplicates(manifest, datamodule._cache, DuplicateSearch(scope, max_distance, min_correlation))
    split = read_split_csv(datamodule.split_path)
    root = datamodule.image_root.resolve()
    split_of = dict(zip([str(root / image) for image in split["image"]], split["split"]))
    splits = pd.DataFrame({"path": manifest["path"], "split": [split_of.get(str(Path(p).resolve()), "") for p in manifest["path"]]})
    summary = summarise_duplicates(pairs, splits)
    listed = summary.pop("pairs")
    for column in PAIR_KEYS:
        if column not in listed.columns:
            listed[column] = ""
    listed = listed[list(PAIR_KEYS)].astype({"distance": int, "correlation": float}) if len(listed) else listed[list(PAIR_KEYS)]
    return {"scope": scope, "max_distance": int(max_distance), "min_correlation": float(min_correlation), **summary,
            "pairs": listed.to_dict(orient="records")}


def format_report(report: dict[str, Any]) -> str:
    title = f"{report['dataset']}{' (SYNTHETIC phantoms)' if report['synthetic'] else ''} at {report['root']}"
    lines = [title, f"split file: {report['split_file']} (sha256 {report['split_sha256'][:12]})", ""]
    lines.append(f"{'split':<7}{'class':<22}{'images':>8}{'patients':>10}")
    for split, info in report["splits"].items():
        for label, counts in info["per_class"].items():
            lines.append(f"{split:<7}{label:<22}{counts['images']:>8}{counts['patients']:>10}")
        lines.append(f"{split:<7}{'(all)':<22}{info['images']:>8}{info['patients']:>10}")
    lines.append("")
    if report["components"]:
        lines.append("components: " + ", ".join(f"{k} {v}" for k, v in report["components"].items()))
    lines.append("sources: " + ", ".join(f"{k or '(none)'} {v}" for k, v in report["sources"].items()))
    lines.append("views: " + ", ".join(f"{k or '(none)'} {v}" for k, v in report["views"].items()))
    excluded = {k: v for k, v in report["excluded"].items() if v}
    lines.append("excluded: " + (", ".join(f"{k} {v}" for k, v in excluded.items()) or "none"))
    lines.append(f"problems: {report['problem_count']}" + (" (" + ", ".join(f"{k}: {v}" for k, v in report["problem_reasons"].items()) + ")" if report["problem_count"] else ""))
    lines += [f"  {p['path']}: {p['problem']}" for p in report["problems"][:TEXT_LISTED]]
    if report["problem_count"] > TEXT_LISTED:
        lines.append(f"  ... and {report['problem_count'] - TEXT_LISTED} more (--json lists {PROBLEMS_LISTED})")
    lines += ["", _format_duplicates(report["duplicates"])]
    return "\n".join(lines)


def _format_duplicates(dup: dict[str, Any]) -> str:
    if dup["scope"] == "off":
        return "duplicates: not searched"
    head = (f"duplicates ({dup['scope']} pairs; pHash distance <= {dup['max_distance']} bits and correlation >= {dup['min_correlation']:g}, "
            f"or identical bytes): {dup['pair_count']} pairs, {dup['identical']} identical, {dup['near']} near, "
            f"{dup['cross_source']} across sources, {dup['label_conflicts']} with different labels, {dup['pairs_across_splits']} across splits")
    lines = [head]
    if dup["by_sources"]:
        lines.append("  by sources: " + ", ".join(f"{k} {v}" for k, v in dup["by_sources"].items()))
    across = [p for p in dup["pairs"] if p["split_a"] != p["split_b"] and {p["split_a"], p["split_b"]} <= {"train", "val", "test"}]
    shown = across or [p for p in dup["pairs"] if p["source_a"] != p["source_b"]] or dup["pairs"]
    title = "pairs across splits" if across else "pairs"
    if shown:
        lines.append(f"  {title} (first {min(TEXT_LISTED, len(shown))} of {len(shown)}; --json lists all):")
        for p in shown[:TEXT_LISTED]:
            lines.append(f"    {p['kind']:<9} d={p['distance']:<2} r={p['correlation']:.3f}  {p['path_a']} [{p['split_a'] or '-'}, {p['label_a']}]  ~  "
                         f"{p['path_b']} [{p['split_b'] or '-'}, {p['label_b']}]")
    return "\n".join(lines)
