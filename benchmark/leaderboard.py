"""Render leaderboard.md from the result JSON files, and nothing else.

One table per (dataset, image size, split file): methods are only compared on the same images and split.
Each cell is the mean over seeds, with the sample standard deviation when there are several.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmark.results import load_results

HEADLINE = [("accuracy", "Accuracy"), ("balanced_accuracy", "Balanced acc."), ("f1", "Macro F1"), ("auroc", "Macro AUROC")]
PER_CLASS = [("sensitivity", "Sensitivity"), ("specificity", "Specificity"), ("ppv", "PPV"), ("f1", "F1")]
SYNTHETIC_BANNER = (
    "> **SYNTHETIC DATA.** Tables marked SYNTHETIC were computed on generated phantoms "
    "(datamodules/synthetic.py), not on real chest X-rays. They show that the pipeline runs end to end; "
    "they say nothing about how a method performs on patients."
)


def _summary(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "n/a"
    if len(present) == 1:
        return f"{present[0]:.3f}"
    return f"{statistics.mean(present):.3f} ± {statistics.stdev(present):.3f}"


def _mean(values: list[float | None], fmt: str) -> str:
    present = [v for v in values if v is not None]
    return format(statistics.mean(present), fmt) if present else "n/a"


def _group_key(result: dict) -> tuple:
    dataset = result["dataset"]
    return (dataset["name"], dataset["image_size"], dataset["split_sha256"])


def _group_title(result: dict) -> str:
    dataset = result["dataset"]
    title = f"{dataset['name']} · {dataset['image_size']} px · split {dataset['split_sha256'][:12]}"
    if dataset.get("synthetic"):
        stands_in = f", standing in for {dataset['stands_in_for']}" if dataset.get("stands_in_for") else ""
        title = f"SYNTHETIC: {title} (generated phantoms{stands_in})"
    return title


def _method_rows(results: list[dict]) -> dict[str, list[dict]]:
    by_method: dict[str, list[dict]] = defaultdict(list)
    for result in results:
        by_method[result["method"]["id"]].append(result)
    return dict(sorted(by_method.items()))


def _group_section(results: list[dict]) -> list[str]:
    first = results[0]
    dataset = first["dataset"]
    classes = dataset["classes"]
    test = dataset["counts"]["test"]
    lines = [f"## {_group_title(first)}", ""]
    lines.append(
        f"Classes: {', '.join(classes)}. Test split: {test['images']} images of {test['patients']} patients. "
        f"Split file `{Path(dataset['split_file']).name}` (sha256 `{dataset['split_sha256'][:16]}…`, split seed {dataset['split_seed']})."
    )
    lines.append("")
    header = ["Method", "Seeds"] + [label for _, label in HEADLINE] + [f"Sens. {c}" for c in classes] + ["Params", "Train img/s", "Train s", "Start"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows = _method_rows(results)
    for method_id, runs in rows.items():
        metric = lambda name: [r["metrics"].get(name) for r in runs]
        cells = [method_id, ",".join(str(r["seed"]) for r in sorted(runs, key=lambda r: r["seed"]))]
        cells += [_summary(metric(key)) for key, _ in HEADLINE]
        cells += [_summary(metric(f"sensitivity/{c}")) for c in classes]
        cells += [f"{runs[0]['parameter_count'] / 1e6:.2f}M", _mean([r.get("train_images_per_second") for r in runs], ".0f"), _mean([r.get("train_seconds") for r in runs], ".0f")]
        cells += ["; ".join(sorted({r["start_weights"] for r in runs}))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Per class (mean over seeds):", ""]
    header = ["Method", "Class"] + [label for _, label in PER_CLASS]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method_id, runs in rows.items():
        for c in classes:
            cells = [method_id, c] + [_summary([r["metrics"].get(f"{key}/{c}") for r in runs]) for key, _ in PER_CLASS]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _notes(results: list[dict]) -> list[str]:
    lines = ["## Methods and their deviations from the papers", ""]
    seen = {}
    for result in results:
        seen.setdefault(result["method"]["id"], result["method"])
    for method_id, method in sorted(seen.items()):
        lines.append(f"### {method_id}: {method.get('title') or method['method']}")
        lines.append("")
        if method.get("paper"):
            lines.append(f"Paper: {method['paper']}. Config: `{method.get('file')}`.")
            lines.append("")
        deviations = method.get("deviations") or []
        lines += [f"- {d}" for d in deviations] if deviations else ["- none recorded"]
        lines.append("")
    return lines


def render(results: list[dict[str, Any]], *, source: str) -> str:
    lines = ["# CXR-Bench leaderboard", ""]
    lines.append(f"Generated from {len(results)} result file(s) in `{source}` by `python -m benchmark leaderboard --out {Path(source).parent}`; "
                 "`make benchmark` reruns the default suite and rewrites this file. Do not edit by hand.")
    lines.append("")
    if not results:
        return "\n".join(lines + ["No results yet: run `make benchmark`.", ""])
    if any(r["dataset"].get("synthetic") for r in results):
        lines += [SYNTHETIC_BANNER, ""]
    lines += [
        "Metrics are on the held-out test split of a patient-level split shared by every method in a table, using the "
        "checkpoint with the best validation score. Cells: mean over seeds ± sample standard deviation. "
        "Sensitivity = recall; PPV = precision; AUROC is one-vs-rest on the predicted scores.",
        "",
    ]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for result in results:
        groups[_group_key(result)].append(result)
    for key in sorted(groups, key=lambda k: (not groups[k][0]["dataset"].get("synthetic"), k)):
        lines += _group_section(groups[key])
    lines += _notes(results)
    return "\n".join(lines).rstrip() + "\n"


def write_leaderboard(out_dir: Path, leaderboard_path: Path) -> Path:
    results_dir = Path(out_dir) / "results"
    results = load_results(results_dir) if results_dir.exists() else []
    leaderboard_path.write_text(render(results, source=str(results_dir)))
    return leaderboard_path
