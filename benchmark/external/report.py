"""What an external evaluation writes: its set name, counts per class, the duplicate report, the predictions CSV
and the console summary (benchmark/external/evaluate_set.py computes them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch

from benchmark.external.duplicates import PAIR_KEYS
from benchmark.results import fingerprint
from datamodules.atomic import atomic_path
from datamodules.duplicates import DEFAULT_MAX_DISTANCE, DEFAULT_MIN_CORRELATION
from datamodules.split_read import resolved


def set_name(name: str, options: dict, variant: str, label_map: dict, duplicates: str, sample: tuple[int, int] | None = None) -> str:
    """The external set's name in file names and tables: the dataset, then what differs from its defaults (its
    variant when options are given, a given label map, kept copies, a per-class sample), so two settings never
    share a result file."""
    parts = [name]
    if options:
        parts.append(variant or "options" + fingerprint(options)[:6])
    if label_map:
        parts.append("map" + fingerprint(label_map)[:6])
    if duplicates == "keep":
        parts.append("with_copies")
    if sample:
        parts.append(f"max{sample[0]}s{sample[1]}")
    return "-".join(parts)


def per_class(mapped: pd.Series, classes: list[str], multilabel: bool) -> dict[str, int]:
    if multilabel:
        findings = mapped.str.split("|").explode()
        return {c: int((findings == c).sum()) for c in classes}
    return {c: int((mapped == c).sum()) for c in classes}


def duplicate_report(pairs: pd.DataFrame, manifest: pd.DataFrame, dm, policy: str) -> dict[str, Any]:
    labels = dict(zip(manifest["path"], manifest["label"]))
    run_labels = {p: label for split in ("train", "val") for p, label in zip(dm.frames[split]["path"], dm.frames[split]["label"])}
    rows = [{**{k: (v.item() if hasattr(v, "item") else v) for k, v in zip(PAIR_KEYS, row)},
             "external_label": labels.get(row[0]), "run_label": run_labels.get(resolved(row[1]))}
            for row in pairs[PAIR_KEYS].itertuples(index=False)]
    return {"policy": policy, "max_distance": DEFAULT_MAX_DISTANCE, "min_correlation": DEFAULT_MIN_CORRELATION,
            "pair_count": len(pairs), "external_images": int(pairs["external_path"].nunique()),
            "by_kind": {str(k): int(v) for k, v in pairs["kind"].value_counts().items()},
            "by_run_split": {str(k): int(v) for k, v in pairs["run_split"].value_counts().items()}, "pairs": rows}


def write_predictions(path: Path, frame: pd.DataFrame, reader, scores: torch.Tensor, classes: list[str]) -> None:
    """Like the internal test's predictions CSV (image, patient_id, label, score per class), plus the original label."""
    images = [relative_image(p, reader.image_root) for p in frame["path"]]
    table = pd.DataFrame({"image": images, "patient_id": frame["patient_id"].to_numpy(), "label": frame["mapped"].to_numpy(),
                          "original_label": frame["label"].to_numpy()})
    for column, name in enumerate(classes):
        table[f"score_{name}"] = scores[:, column].numpy()
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6f")


def relative_image(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:  # an image outside the dataset's image folder (a combined task's component): its full path
        return path


def format_external(result: dict[str, Any]) -> str:
    """The console summary of one external result."""
    counts, dup = result["counts"], result["duplicates"]
    lines = [f"{result['run_id']} on {result['external_dataset']['name']} ({result['external_dataset']['root']}): "
             f"{counts['scored']} of {counts['listed']} images scored",
             f"left out: {', '.join(f'{k} {v}' for k, v in counts['left_out'].items() if v) or 'none'}",
             f"label map used: {result['label_map']['used']}",
             f"duplicates of the run's train/val images: {dup['pair_count']} pairs, {dup['external_images']} external images "
             f"({'left out' if dup['policy'] == 'exclude' else 'kept'})"]
    lines += [f"  {p['external_path']} ~ {p['run_path']} ({p['run_split']}, {p['kind']}, r={p['correlation']})" for p in dup["pairs"][:20]]
    metrics = result["metrics"]
    lines.append("metrics: " + ", ".join(f"{k} {fmt(metrics.get(k))}" for k in ("accuracy", "balanced_accuracy", "f1", "auroc") if k in metrics))
    lines.append(f"written: {result.get('_file')}")
    return "\n".join(lines)


def fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
