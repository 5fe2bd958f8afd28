"""The claims table: each paper's headline claim (configs/claims/papers.yaml) re-tested on the shared split.

A comparison claim ``a > b`` is tested paired: both methods' test predictions on the same images, the difference
of the metric with a patient-level paired bootstrap CI (benchmark/statistics.py; DeLong's test beside it for an
AUROC). Verdict: *supported* when the CI lies above 0, *contradicted* when below, *inconclusive* when it crosses
0, *not run* while a method has no result. A threshold claim checks ``a``'s metric CI against a value. A quick
profile or synthetic phantoms is a pipeline check: its row is computed but says that it is not evidence.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmark.results import prediction_arrays, table_key
from benchmark.statistics import DEFAULT_RESAMPLES, bootstrap_metrics, ci_text, p_text, paired_difference

DEFAULT_CLAIMS = Path(__file__).resolve().parent.parent / "configs" / "claims" / "papers.yaml"
QUICK_SUFFIX = "_quick"


def load_claims(path: str | Path = DEFAULT_CLAIMS) -> list[dict[str, Any]]:
    """The validated claims of a claims YAML (a typo or a missing key is a ConfigError naming the file)."""
    from benchmark.config import ConfigError
    from benchmark.schema import ClaimsFile, validate

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read the claims file ({error})") from error
    return validate(ClaimsFile, data, where=str(path))["claims"]


def _runs_of(results: list[dict], method_id: str) -> dict[tuple, list[dict]]:
    """Results of ``method_id`` or its quick profile, by table; within a table the configuration with the most
    recently written result (several configurations are never pooled)."""
    by_table: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for result in results:
        if result["method"]["id"] in (method_id, method_id + QUICK_SUFFIX):
            by_table[table_key(result)][result.get("config_fingerprint") or ""].append(result)
    chosen = {}
    for key, configs in by_table.items():
        chosen[key] = max(configs.values(), key=lambda runs: max(r.get("written_at", "") for r in runs))
    return chosen


def _is_evidence(runs: list[dict]) -> str | None:
    """None when ``runs`` may count as evidence; else why not."""
    if any(r["dataset"].get("synthetic") for r in runs):
        return "synthetic phantoms"
    if any((r["method"].get("profile") == "quick") or r["method"]["id"].endswith(QUICK_SUFFIX) for r in runs):
        return "quick profile"
    return None


def _value(summary: dict, metric: str) -> str:
    return ci_text(summary["metrics"].get(metric), summary["ci"].get(metric))


def _compare_row(claim: dict, runs_a: list[dict], runs_b: list[dict], n_resamples: int, seed: int) -> dict[str, str]:
    test = claim["compare"]
    dataset = runs_a[0]["dataset"]
    classes, multilabel = list(dataset["classes"]), bool(dataset.get("multilabel"))
    scores_a, labels, patients, images = prediction_arrays(runs_a, classes, multilabel)
    scores_b, labels_b, _, _ = prediction_arrays(runs_b, classes, multilabel, images)
    if not np.array_equal(labels, labels_b):
        raise ValueError("the runs' test labels differ")
    options = dict(multilabel=multilabel, n_resamples=n_resamples, seed=seed)
    a = bootstrap_metrics(scores_a, labels, patients, classes, **options)
    b = bootstrap_metrics(scores_b, labels, patients, classes, **options)
    paired = paired_difference(scores_a, scores_b, labels, patients, classes, test["metric"], **options)
    low, high = paired["ci"] if paired["ci"] else (None, None)
    if low is None:
        verdict = "inconclusive (undefined)"
    elif low > 0:
        verdict = "supported"
    elif high < 0:
        verdict = "contradicted"
    else:
        verdict = "inconclusive (CI crosses 0)"
    delong = paired.get("delong")
    difference = ci_text(paired["difference"], paired["ci"]) + (f", {p_text(paired['p_value'], n_resamples)}" if paired.get("p_value") is not None else "")
    if delong:
        difference += f"; DeLong {p_text(delong['p_value'])}"
    ours = f"{test['a']}: {_value(a, test['metric'])}; {test['b']}: {_value(b, test['metric'])}"
    return {"ours": ours, "difference": difference, "verdict": verdict}


def _threshold_row(claim: dict, runs_a: list[dict], n_resamples: int, seed: int) -> dict[str, str]:
    test = claim["threshold"]
    dataset = runs_a[0]["dataset"]
    classes, multilabel = list(dataset["classes"]), bool(dataset.get("multilabel"))
    scores, labels, patients, _ = prediction_arrays(runs_a, classes, multilabel)
    summary = bootstrap_metrics(scores, labels, patients, classes, multilabel=multilabel, n_resamples=n_resamples, seed=seed)
    ci = summary["ci"].get(test["metric"])
    verdict = "inconclusive (undefined)" if not ci else "supported" if ci[0] >= test["value"] else "contradicted" if ci[1] < test["value"] else "inconclusive (CI holds the threshold)"
    return {"ours": f"{test['a']}: {_value(summary, test['metric'])}", "difference": f">= {test['value']} asked", "verdict": verdict}


def _paper_numbers(claim: dict) -> str:
    test = claim["compare"] or claim["threshold"]
    numbers = claim["paper_numbers"]
    parts = [f"{test[side]} {numbers[side]}" for side in ("a", "b") if numbers.get(side) is not None and test.get(side)]
    return "; ".join(parts) or "n/a"


def claim_rows(claims: list[dict], results: list[dict], *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> list[dict[str, str]]:
    """One row per (claim, table where its methods ran); a claim with no such table is one "not run" row."""
    rows = []
    for claim in claims:
        test = claim["compare"] or claim["threshold"]
        runs_a = _runs_of(results, test["a"])
        runs_b = _runs_of(results, test["b"]) if claim["compare"] else None
        tables = [key for key in runs_a if runs_b is None or key in runs_b]
        base = {"paper": claim["paper"], "claim": claim["claim"], "source": claim["source"], "paper_numbers": _paper_numbers(claim)}
        if not tables:
            missing = [m for m, runs in ((test["a"], runs_a), (test.get("b"), runs_b)) if m and not runs]
            why = f"not run ({', '.join(missing)} has no result)" if missing else "not run (no table holds both methods)"
            rows.append({**base, "table": "", "ours": "", "difference": "", "verdict": why})
            continue
        for key in sorted(tables):
            used = runs_a[key] + (runs_b[key] if runs_b else [])
            try:
                row = _compare_row(claim, runs_a[key], runs_b[key], n_resamples, seed) if runs_b else _threshold_row(claim, runs_a[key], n_resamples, seed)
            except (OSError, ValueError, KeyError) as error:
                row = {"ours": "", "difference": "", "verdict": f"not testable ({error})"}
            not_evidence = _is_evidence(used)
            if not_evidence and not row["verdict"].startswith("not testable"):
                row["verdict"] = f"not evidence ({not_evidence}); would read: {row['verdict']}"
            seeds = sorted({r["seed"] for r in used})
            rows.append({**base, **row, "table": f"{key[0]} · {key[1]} px · split {key[2][:12]} · seeds {','.join(map(str, seeds))}"})
    return rows


def claims_section(claims: list[dict], results: list[dict], *, source: str, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                   rule: str = "validation") -> list[str]:
    """The leaderboard's claims table as markdown lines; ``results`` are the draws chosen by ``rule`` (benchmark/selection.py)."""
    lines = ["## Claims of the papers, re-tested on the shared split", "",
             f"From `{source}`. Each row tests one headline claim with this suite's results: the paper's numbers, ours with "
             f"95% patient-level bootstrap CIs ({n_resamples} resamples, seed {seed}, stratified by class; several seeds: "
             "the metric of their mean), and for a comparison the paired difference a − b on the same test images with its "
             "CI and bootstrap p (DeLong's test for an AUROC). Supported: the CI lies above 0; contradicted: below 0; "
             "inconclusive: it crosses 0. Quick-profile and synthetic results are pipeline checks and never evidence. "
             f"Tuned methods enter with the configuration chosen by model selection `{rule}` (never the oracle).", ""]
    header = ["Paper", "Claim", "Source", "Paper's numbers", "Table", "Ours", "Difference a − b [95% CI]", "Verdict"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in claim_rows(claims, results, n_resamples=n_resamples, seed=seed):
        cells = [row[k] for k in ("paper", "claim", "source", "paper_numbers", "table", "ours", "difference", "verdict")]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return lines + [""]
