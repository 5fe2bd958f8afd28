"""Explanations for the leaderboard and the terminal: read ``<out>/explain/*/explain.json``, one row per run.

An explanation joins its run only when both name the same run and configuration fingerprint, so a rerun with other
settings never shows an older probe. Columns: the probe metric on full images, lungs only and lungs out (with CIs),
the text test, the source probe, the Grad-CAM heat inside the lungs against a uniform map's share, the verdict and
links to the heatmap grids and latent maps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.results import read_records

REQUIRED = ("run_id", "config_fingerprint", "sample")


def read_explanations(out_dir: str | Path) -> list[dict[str, Any]]:
    """Every usable explanation under ``<out>/explain``; a torn or foreign file is named in a warning and skipped."""
    return read_records(sorted((Path(out_dir) / "explain").rglob("explain.json")), kind="explanation", required=REQUIRED, what="explanation")


def _value(cell: dict | None) -> str:
    if not cell or cell.get("value") is None:
        return "n/a"
    ci = cell.get("ci")
    return f"{cell['value']:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci and None not in ci else "")


def probe_cells(record: dict) -> dict[str, str]:
    """The leaderboard's cells of one explanation (also the CLI's summary)."""
    probes = record.get("probes") or {}
    lungs, text, source, energy = (probes.get(k) or {} for k in ("lung_mask", "text", "source", "gradcam_energy"))
    verdict = probes.get("verdict") or {}
    if text.get("skipped") or not text.get("images"):
        text_cell = "n/a" if text.get("skipped") else "no image"
    else:
        text_cell = f"{text['moved_fraction']:.2f} moved, normal score {-text['mean_drop']:+.3f} (n={text['images']})"
    source_cell = "n/a (one source)" if not source or source.get("auroc") is None else f"{source['auroc']:.3f} ({len(source.get('sources', {}))} sources)"
    energy_cell = "n/a" if energy.get("mean") is None else f"{energy['mean']:.2f} (uniform {energy['uniform']:.2f})"
    return {
        "full": _value(lungs.get("full")), "lungs_only": _value(lungs.get("lungs_only")), "lungs_out": _value(lungs.get("lungs_out")),
        "text": text_cell, "source": source_cell, "energy": energy_cell,
        "verdict": ("**flagged**: " + "; ".join(verdict.get("reasons", []))) if verdict.get("flagged") else ("not flagged" if verdict else "n/a"),
    }


def explanation_pngs(result: dict, explanations: list[dict]) -> dict[str, str]:
    """{name: PNG relative to <out>} of ``result``'s explanation (same run and configuration), else {}."""
    for record in explanations:
        if (record["run_id"], record["config_fingerprint"]) == (result["run_id"], result.get("config_fingerprint")):
            pngs = {m: h.get("png") for m, h in record.get("heatmaps", {}).items()} | {"latent": (record.get("latent") or {}).get("png")}
            return {name: png for name, png in pngs.items() if png}
    return {}


def explain_section(results: list[dict], explanations: list[dict], *, link_base: str = "") -> list[str]:
    """Markdown lines of the explanations table ([] when no result has a matching explanation)."""
    by_run = {(e["run_id"], e["config_fingerprint"]): e for e in explanations}
    rows = [(r, by_run[(r["run_id"], r.get("config_fingerprint"))]) for r in results if (r["run_id"], r.get("config_fingerprint")) in by_run]
    if not rows:
        return []
    lines = ["## Explanations and shortcut probes", "",
             "`python -m benchmark explain RUN` (and the suite's `explain:` section) on a seeded sample of each run's test images, the same "
             "images for every method of a split. Probe metric: balanced accuracy (macro AUROC for multi-label), patient-level 95% CI. "
             "*Lungs out*: the lung regions masked, only the border and any text remain: a model that still scores well there has "
             "learned something other than the lungs. *Text*: the word burnt into a corner of correctly classified normal images "
             "(twice-transfer paper, section 9.1): share whose prediction moved, and the mean change of the normal score. *Source AUROC*: "
             "a linear probe on the penultimate features predicting the source dataset. *Heat in lungs*: share of the positive Grad-CAM "
             "heat inside the lung regions (a uniform map's share beside it). Lung regions: annotated boxes where the data have them, "
             "else a fixed central field (counts in each explanation file); the masked part is filled with the training mean intensity "
             "(deviation from \"blacked out\": black collapses models to one class and hid the planted shortcut). Flag rule: "
             "benchmark/explain/probes.py. Heatmap deviations (zennit's epsilon-plus-flat for iNNvestigate's PresetAFlat, gradient "
             "through LSTM and skip connections, CAM not made absolute): lightning_modules/explain/heatmaps.py.", "",
             "| Dataset | Method | Seed | Sample | Full | Lungs only | Lungs out | Text | Source AUROC | Heat in lungs | Verdict | Maps |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for result, record in sorted(rows, key=lambda pair: (pair[0]["dataset"]["name"], pair[0]["method"]["id"], pair[0]["seed"])):
        cells = probe_cells(record)
        links = [f"[{name}]({link_base}{png})" for name, png in explanation_pngs(result, [record]).items()]
        regions = ", ".join(f"{k} {v}" for k, v in record["sample"].get("lung_regions", {}).items())
        lines.append(f"| {result['dataset']['name']} | {result['method']['id']} | {result['seed']} | {record['sample']['images']} ({regions}) | "
                     f"{cells['full']} | {cells['lungs_only']} | {cells['lungs_out']} | {cells['text']} | {cells['source']} | {cells['energy']} | "
                     f"{cells['verdict']} | {' · '.join(links) or 'none'} |")
    return lines + [""]


def format_explanation(record: dict) -> str:
    """The terminal summary of ``python -m benchmark explain``."""
    cells = probe_cells(record)
    lines = [f"{record['run_id']}: {record['sample']['images']} test images (seed {record['sample']['seed']}), lung regions {record['sample']['lung_regions']}"]
    for method, heat in record.get("heatmaps", {}).items():
        lines.append(f"  {method}: " + (heat["png"] if heat.get("png") else f"skipped ({heat.get('skipped')})"))
    if record.get("latent"):
        lines.append(f"  latent maps: {record['latent']['png']}")
    if record.get("probes"):
        lines += [f"  {name}: {cells[key]}" for name, key in (("full images", "full"), ("lungs only", "lungs_only"), ("lungs out", "lungs_out"),
                                                             ("text", "text"), ("source probe AUROC", "source"), ("Grad-CAM heat in lungs", "energy"),
                                                             ("verdict", "verdict"))]
    lines.append(f"  written: {record.get('_file')}")
    return "\n".join(lines)
