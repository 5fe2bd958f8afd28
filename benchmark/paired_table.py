"""Under a leaderboard table: every method against a reference method of the same table, paired on the same test
images (benchmark/statistics.py paired_difference: the same resampled patients for both; DeLong's test for an
AUROC of a binary task), so "A beats B" is a tested statement rather than two overlapping intervals.

A suite names its references with ``leaderboard: {paired_reference: [id, ...]}``; a table uses the first one it holds.
"""

from __future__ import annotations

from benchmark.results import prediction_arrays
from benchmark.statistics import ci_text, p_text, paired_difference

METRICS = {False: [("accuracy", "Δ accuracy"), ("balanced_accuracy", "Δ balanced acc."), ("auroc", "Δ macro AUROC")],
           True: [("auroc", "Δ macro AUROC")]}


def paired_section(rows: dict[str, list[dict]], references: list[str]) -> list[str]:
    """Markdown lines comparing every row of ``rows`` ({label: runs}) with the first of ``references`` present."""
    reference = next((ref for ref in references if ref in rows), None)
    if reference is None or len(rows) < 2:
        return []
    first = rows[reference][0]
    dataset, settings = first["dataset"], first.get("bootstrap") or {}
    classes, multilabel = list(dataset["classes"]), bool(dataset.get("multilabel"))
    options = {"multilabel": multilabel, "n_resamples": settings.get("n_resamples", 2000), "confidence": settings.get("confidence", 0.95),
               "seed": settings.get("seed", 0)}
    try:
        base, labels, patients, images = prediction_arrays(rows[reference], classes, multilabel)
    except (OSError, ValueError, KeyError):
        return []  # predictions moved or deleted: no paired table
    metrics = METRICS[multilabel]
    lines = [f"Paired against `{reference}` on the same test images (difference [95% patient-level bootstrap CI], bootstrap p; "
             "DeLong p for a binary AUROC; several seeds: the difference of the seeds' means):", "",
             "| Method | " + " | ".join(label for _, label in metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for label, runs in rows.items():
        if label == reference:
            continue
        try:
            scores, *_ = prediction_arrays(runs, classes, multilabel, images)
        except (OSError, ValueError, KeyError) as error:
            lines.append(f"| {label} | " + " | ".join(f"n/a ({error})" for _ in metrics) + " |")
            continue
        cells = []
        for metric, _ in metrics:
            try:
                paired = paired_difference(scores, base, labels, patients, classes, metric, **options)
            except ValueError:
                cells.append("n/a")
                continue
            text = f"{ci_text(paired['difference'], paired['ci'])}, {p_text(paired['p_value'], options['n_resamples'])}"
            if paired.get("delong"):
                text += f"; DeLong {p_text(paired['delong']['p_value'])}"
            cells.append(text)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines + [""]
