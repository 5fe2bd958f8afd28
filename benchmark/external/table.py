"""External results for the leaderboard: read from ``<out>/external/`` and set beside the internal test's numbers.

One row per (method, training dataset, external set): internal accuracy and AUROC (mean over the seeds that
were also scored externally), external accuracy and AUROC, and the drop (external minus internal). An external
result joins an internal one only when both name the same run and the same configuration fingerprint, so a
rerun with other settings never pairs with an older external score.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from benchmark.results import read_records

REQUIRED = ("run_id", "external_dataset", "counts", "metrics")
EXTERNAL_DIR = "external"


def external_dir(out_dir: Path, run_id: str) -> Path:
    """Where the external results of one run go (never under <out>/results, which holds the internal ones)."""
    return Path(out_dir) / EXTERNAL_DIR / run_id


def read_external_results(out_dir: str | Path) -> list[dict[str, Any]]:
    """Every usable external result under ``<out>/external``; a torn or foreign file is named in a warning and skipped."""
    return read_records(sorted((Path(out_dir) / EXTERNAL_DIR).rglob("*.json")), kind="external", required=REQUIRED, what="external result")


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _cell(value: float | None, signed: bool = False) -> str:
    return "n/a" if value is None else (f"{value:+.3f}" if signed else f"{value:.3f}")


def _drop(external: float | None, internal: float | None) -> float | None:
    return None if external is None or internal is None else external - internal


def external_section(results: list[dict], external_results: list[dict]) -> list[str]:
    """Markdown lines of the external-test table ([] when there are no external results to show)."""
    internal = {(r.get("run_id"), r.get("config_fingerprint")): r for r in results}
    rows: dict[tuple, list[tuple[dict, dict]]] = {}
    for ext in external_results:
        run = internal.get((ext["run_id"], ext.get("config_fingerprint")))
        if run is None:
            continue  # its run is gone or was rerun with other settings
        key = (run["method"]["id"], run["dataset"]["name"], _set_name(ext))
        rows.setdefault(key, []).append((run, ext))
    if not rows:
        return []
    lines = ["## External test sets", "",
             "Each run's best checkpoint scored on every image of another dataset, with the run's preprocessing; images "
             "copying the run's train/val images and labels without a counterpart are left out and counted "
             "(`python -m benchmark evaluate`). Drop = external - internal. One seed: `value [95% patient-level bootstrap CI]`; "
             "a macro value read over the classes an external set holds has no CI.", "",
             "| Method | Trained on | External set | Seeds | Scored | Left out (copies, no counterpart) | Internal acc | External acc | Drop acc "
             "| Internal AUROC | External AUROC | Drop AUROC |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (method, trained_on, set_name), pairs in sorted(rows.items()):
        seeds = sorted({run["seed"] for run, _ in pairs})
        metric = lambda side, name: _mean([(run if side == "internal" else ext)["metrics"].get(name) for run, ext in pairs])
        acc_in, acc_ex, auc_in, auc_ex = metric("internal", "accuracy"), metric("external", "accuracy"), metric("internal", "auroc"), metric("external", "auroc")
        synthetic = any(run["dataset"].get("synthetic") or ext["external_dataset"].get("synthetic") for run, ext in pairs)
        left = [ext["counts"]["left_out"] for _, ext in pairs]
        copies, unmapped = sum(x.get("duplicate_of_train_val", 0) for x in left), sum(x.get("no_counterpart", 0) for x in left)
        scored = sum(ext["counts"]["scored"] for _, ext in pairs) // len(pairs)
        def with_ci(side: str, name: str, value: float | None) -> str:  # one seed: the run's own 95% CI
            (run, ext), = pairs if len(pairs) == 1 else ((None, None),)
            ci = ((run if side == "internal" else ext) or {}).get("ci", {}).get(name) if run else None
            return _cell(value) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and value is not None else "")

        lines.append(f"| {method} | {trained_on}{' (SYNTHETIC)' if synthetic else ''} | {set_name} | {', '.join(map(str, seeds))} | {scored} "
                     f"| {copies // len(pairs)}, {unmapped // len(pairs)} | {with_ci('internal', 'accuracy', acc_in)} | {with_ci('external', 'accuracy', acc_ex)} "
                     f"| {_cell(_drop(acc_ex, acc_in), True)} | {with_ci('internal', 'auroc', auc_in)} | {with_ci('external', 'auroc', auc_ex)} "
                     f"| {_cell(_drop(auc_ex, auc_in), True)} |")
    return lines + [""]


def _set_name(ext: dict) -> str:
    return ext.get("title") or ext.get("set_name") or ext["external_dataset"]["name"]
