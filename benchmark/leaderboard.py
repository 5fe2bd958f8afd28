"""Render leaderboard.md from the result JSON files, and nothing else.

One table per (dataset, image size, split file, classes): methods are only compared on the same images, split and
task (a binary COVID-19 vs non-COVID map of a 3-class dataset gets its own table). Each cell is the mean over
seeds, with the sample standard deviation when there are several.

A suite may ask for the weighted-CE paper's Gain table (section VI.C) with ``leaderboard: {gain: {reference:
<method id>, positive: COVID-19}}``: sensitivity, specificity, bACC = (sens + spec) / 2 and PPCR of the positive
class, and Gain = relative change of (bACC + PPCR) / 2 against the reference row. It is added under the table
that holds the reference row (without a reference, under every binary table of the positive class). Table II's
own reference is a row that is not re-run here (Minaee et al.'s SqueezeNet, 0.97675): ``reference_score`` gives
such a fixed score, shown as a second Gain column. Table II's PPCR values are not (TP + FP) / N as section VI.C
defines PPCR: they equal the accuracy (TP + TN) / N to rounding on 18 of its 20 network rows (not ResNet-50
CheXpert beta 0.75 of the augmented block, nor ACNN beta 0.75 of the combined block), and its Gain column is
computed from them. ``ppcr: as_tabulated`` scores with that accuracy (to compare with Table II); the default
``as_defined`` uses the defined PPCR. Both columns are shown.

Within a table, runs are pooled only when they share a configuration fingerprint: a method trained with two
configurations gets two rows (``id [cfg 1a2b3c4d]``). Each page records the results store it was generated from
(``<!-- cxr-bench results store: ... -->``); a leaderboard file is only replaced by one of the same store, unless
asked (``--replace-leaderboard``). Unreadable result files are named on the page and skipped.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.chain_tables import phase_lines, pretraining_section, stage_auroc_section
from benchmark.claims import DEFAULT_CLAIMS, claims_section, load_claims
from benchmark.config import ConfigError
from benchmark.explain.table import explain_section, explanation_pngs, read_explanations
from benchmark.external.table import external_section, read_external_results
from benchmark.paired_table import paired_section
from benchmark.results import changed_keys, prediction_arrays, read_results, table_key
from benchmark.selection import is_tuned, rule_of, selected_by_recorded_rule
from datamodules.atomic import atomic_write_text

HEADLINE = [("accuracy", "Accuracy"), ("balanced_accuracy", "Balanced acc."), ("f1", "Macro F1"), ("auroc", "Macro AUROC"), ("ece", "ECE")]
PER_CLASS = [("sensitivity", "Sensitivity"), ("specificity", "Specificity"), ("ppv", "PPV"), ("f1", "F1")]
# Multi-label tasks (ChestX-ray14, CheXpert) are compared on AUROC, per finding and averaged.
HEADLINE_MULTILABEL = [("auroc", "Macro AUROC"), ("f1", "Macro F1 @0.5"), ("ece", "ECE")]
SYNTHETIC_BANNER = (
    "> **SYNTHETIC DATA.** Tables marked SYNTHETIC were computed on generated phantoms "
    "(datamodules/readers/synthetic.py), not on real chest X-rays. They show that the pipeline runs end to end; "
    "they say nothing about how a method performs on patients."
)


QUICK_BANNER = (
    "> **QUICK PROFILES.** Rows of methods with the `quick` profile (ids ending in `_quick`) train CPU-sized versions "
    "for a few epochs at 64 px. They check that the pipeline runs on real images; they are not evidence for or "
    "against a paper (the claims table never counts them). The paper profiles are `configs/paper-*.yaml`."
)


def _summary(values: list[float | None], ci: list[float] | None = None) -> str:
    """One seed: ``0.910 [0.880, 0.930]``; several: ``0.905 ± 0.012 (n=3) [0.880, 0.930]``, the CI being that of the
    seeds' mean (row_intervals); no CI recorded: the number(s) alone."""
    present = [v for v in values if v is not None]
    if not present:
        return "n/a"
    interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    if len(present) == 1:
        return f"{present[0]:.3f}{interval}"
    return f"{statistics.mean(present):.3f} ± {statistics.stdev(present):.3f} (n={len(present)}){interval}"


def row_intervals(runs: list[dict]) -> dict[str, list[float] | None]:
    """95% CIs of a row: a single run's own (its result's ``ci``); several seeds' recomputed from their test
    predictions as the CI of the metric of the seeds' mean, with the bootstrap settings of the first run."""
    if len(runs) == 1:
        return runs[0].get("ci") or {}
    from benchmark.statistics import bootstrap_metrics

    dataset, settings = runs[0]["dataset"], runs[0].get("bootstrap") or {}
    try:
        scores, labels, patients, _ = prediction_arrays(runs, list(dataset["classes"]), bool(dataset.get("multilabel")))
    except (OSError, ValueError, KeyError):
        return {}  # predictions moved or deleted: the row shows mean ± sd without a CI
    summary = bootstrap_metrics(scores, labels, patients, list(dataset["classes"]), multilabel=bool(dataset.get("multilabel")),
                                n_resamples=settings.get("n_resamples", 2000), confidence=settings.get("confidence", 0.95),
                                seed=settings.get("seed", 0))
    return summary["ci"]


def _mean(values: list[float | None], fmt: str) -> str:
    present = [v for v in values if v is not None]
    return format(statistics.mean(present), fmt) if present else "n/a"


def _group_title(result: dict) -> str:
    dataset = result["dataset"]
    title = f"{dataset['name']} · {dataset['image_size']} px · split {dataset['split_sha256'][:12]}"
    if dataset.get("synthetic"):
        stands_in = f", standing in for {dataset['stands_in_for']}" if dataset.get("stands_in_for") else ""
        title = f"SYNTHETIC: {title} (generated phantoms{stands_in})"
    held = dataset.get("held_out") or result.get("held_out")
    if held:  # a leave-one-source-out run: its test split is a whole source
        sources = held if isinstance(held, (str, list)) else held.get("test") or []
        title += f" · held out: {', '.join([sources] if isinstance(sources, str) else sources)}"
    return title


def _method_rows(results: list[dict]) -> dict[str, list[dict]]:
    """One row per (method id, configuration fingerprint), so runs of different configurations are never averaged;
    a method with several configurations in a table gets labels ``id [cfg 1a2b3c4d]``."""
    by_config: dict[tuple, list[dict]] = defaultdict(list)
    for result in results:
        by_config[(result["method"]["id"], result.get("config_fingerprint") or "")].append(result)
    configs_per_method = Counter(method_id for method_id, _ in by_config)
    rows = {}
    for (method_id, fingerprint), runs in sorted(by_config.items()):
        split = configs_per_method[method_id] > 1
        rows[f"{method_id} [cfg {fingerprint[:8] or 'unrecorded'}]" if split else method_id] = runs
    return rows


def _config_note(rows: dict[str, list[dict]]) -> list[str]:
    """A line under a table for each method split over several configurations, naming the keys that differ."""
    split: dict[str, list[str]] = defaultdict(list)
    for label, runs in rows.items():
        if label != runs[0]["method"]["id"]:
            split[runs[0]["method"]["id"]].append(label)
    lines = []
    for method_id, labels in split.items():
        configs = [rows[label][0]["config"] for label in labels if rows[label][0].get("config")]
        keys = sorted({key for config in configs[1:] for key in changed_keys(configs[0], config)})
        differ = f" ({', '.join(keys[:6])}{', …' if len(keys) > 6 else ''})" if keys else ""
        lines.append(f"Rows {', '.join(f'`{label}`' for label in labels)} differ in configuration{differ}: their runs are not averaged together.")
    return lines + [""] if lines else []


def _group_section(results: list[dict], link_base: str = "") -> list[str]:
    first = results[0]
    dataset = first["dataset"]
    classes = dataset["classes"]
    test = dataset["counts"]["test"]
    lines = [f"## {_group_title(first)}", ""]
    lines.append(
        f"Classes: {', '.join(classes)}. Test split: {test['images']} images of {test['patients']} patients. "
        f"Split file `{Path(dataset['split_file']).name}` (sha256 `{dataset['split_sha256'][:16]}…`, split seed {dataset['split_seed']})."
    )
    commands = sorted({r["command"] for r in results if r.get("command")})
    if commands:
        lines.append("Reproduce: " + "; ".join(f"`{c}`" for c in commands) + ".")
    lines.append(_selection_caption(results))
    lines.append("")
    multilabel = bool(dataset.get("multilabel"))
    headline = HEADLINE_MULTILABEL if multilabel else HEADLINE
    per_class_key, per_class_label = ("auroc", "AUROC") if multilabel else ("sensitivity", "Sens.")
    header = ["Method", "Seeds"] + [label for _, label in headline] + [f"{per_class_label} {c}" for c in classes] + ["Params", "Train img/s", "Train s", "Start"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows = _method_rows(results)
    intervals = {method_id: row_intervals(runs) for method_id, runs in rows.items()}
    for method_id, runs in rows.items():
        metric = lambda name: [r["metrics"].get(name) for r in runs]
        ci = intervals[method_id]
        cells = [method_id, ",".join(str(r["seed"]) for r in sorted(runs, key=lambda r: r["seed"]))]
        cells += [_summary(metric(key), ci.get(key)) for key, _ in headline]
        cells += [_summary(metric(f"{per_class_key}/{c}"), ci.get(f"{per_class_key}/{c}")) for c in classes]
        cells += [f"{runs[0]['parameter_count'] / 1e6:.2f}M", _mean([r.get("train_images_per_second") for r in runs], ".0f"), _mean([r.get("train_seconds") for r in runs], ".0f")]
        cells += ["; ".join(sorted({r["start_weights"] for r in runs}))]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += _config_note(rows)
    lines += paired_section(rows, _paired_references(results))
    lines += _plot_links(rows, link_base)
    if multilabel:  # the per-finding AUROCs are already the columns above
        return lines
    lines += ["Per class (mean over seeds):", ""]
    header = ["Method", "Class"] + [label for _, label in PER_CLASS]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method_id, runs in rows.items():
        for c in classes:
            cells = [method_id, c] + [_summary([r["metrics"].get(f"{key}/{c}") for r in runs], intervals[method_id].get(f"{key}/{c}")) for key, _ in PER_CLASS]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += _gain_section(results, rows, classes)
    return lines


def _selection_caption(results: list[dict]) -> str:
    """Which model-selection rule chose the rows' configurations, and each row's budget (benchmark/collect.py)."""
    from benchmark.collect import budget

    rules = sorted({rule_of(r) for r in results if is_tuned(r)}) or ["validation (checkpoint only, untuned)"]
    per_row = {label: budget(runs) for label, runs in _method_rows(results).items()}
    kinds = set(per_row.values())
    budgets = f"{kinds.pop()}, every row" if len(kinds) == 1 else "; ".join(f"{label}: {text}" for label, text in per_row.items())
    return f"Model selection: {', '.join(rules)}. Budget: {budgets}."


def fair_section(results: list[dict]) -> list[str]:
    """Collect's tables for each recorded rule (with the held-out table of leave-one-source-out runs) and the oracle
    upper bound; empty for a store without tuned or leave-one-source-out runs."""
    from benchmark.collect import markdown

    if not any(is_tuned(r) or r.get("held_out") for r in results):
        return []
    lines = ["## Fair comparison", "", "Each method's configuration is chosen by the named rule from the same budget of "
             "hyper-parameter draws (benchmark/selection.py, DomainBed-style); cells: mean ± standard error over trials [95% CI].", ""]
    for rule in sorted({rule_of(r) for r in results}):
        lines += markdown(results, rule)
    return lines + markdown(results, "oracle")


def _plot_links(rows: dict[str, list[dict]], link_base: str) -> list[str]:
    """One line per method: its runs' ROC, confusion-matrix and reliability PNGs (benchmark/plots.py)."""
    links = []
    for method_id, runs in rows.items():
        per_seed = []
        for run in sorted(runs, key=lambda r: r["seed"]):
            plots = {**(run.get("plots") or {}), **run.get("_explanation_pngs", {})}  # heatmap grids and latent maps: benchmark/explain
            if plots:
                per_seed.append(f"seed {run['seed']}: " + " · ".join(f"[{kind}]({link_base}{path})" for kind, path in plots.items()))
        if per_seed:
            links.append(f"- `{method_id}`: " + "; ".join(per_seed))
    return ["Plots (ROC, confusion matrix, reliability diagram; heatmap grids and latent maps of explained runs):", "", *links, ""] if links else []


PPCR_MODES = ("as_defined", "as_tabulated")


def one_vs_rest_accuracy(confusion: list[list[int]] | None, index: int) -> float | None:
    """(TP + TN) / N of class ``index`` from a confusion matrix (rows = truth): Table II's "PPCR" values."""
    if not confusion:
        return None
    matrix = np.asarray(confusion, dtype=float)
    total = matrix.sum()
    wrong = matrix[index].sum() + matrix[:, index].sum() - 2 * matrix[index, index]  # FN + FP
    return float((total - wrong) / total) if total else None


def gain_score(metrics: dict, positive: str, *, accuracy: float | None = None, ppcr: str = "as_defined") -> dict[str, float | None]:
    """Sensitivity, specificity, bACC, PPCR of the positive class and (bACC + PPCR) / 2 (section VI.C); with
    ``ppcr="as_tabulated"`` the score uses the one-vs-rest ``accuracy`` instead, as Table II's numbers do."""
    if ppcr not in PPCR_MODES:
        raise ValueError(f"gain: ppcr must be one of {PPCR_MODES}, not {ppcr!r}")
    sensitivity, specificity, rate = (metrics.get(f"{key}/{positive}") for key in ("sensitivity", "specificity", "ppcr"))
    bacc = (sensitivity + specificity) / 2 if sensitivity is not None and specificity is not None else None
    used = rate if ppcr == "as_defined" else accuracy
    score = (bacc + used) / 2 if bacc is not None and used is not None else None
    return {"sensitivity": sensitivity, "specificity": specificity, "bacc": bacc, "ppcr": rate, "accuracy": accuracy, "score": score}


def gain(score: float | None, reference: float | None) -> float | None:
    """Relative change of (bACC + PPCR) / 2 against the reference row, in percent (Table II's Gain column)."""
    if score is None or not reference:
        return None
    return 100.0 * (score - reference) / reference


def _paired_references(results: list[dict]) -> list[str]:
    """The newest result's ``leaderboard: {paired_reference: [...]}`` (the suite that wrote it)."""
    for result in sorted(results, key=lambda r: r.get("written_at", ""), reverse=True):
        references = (result.get("leaderboard_options") or {}).get("paired_reference")
        if references:
            return list(references)
    return []


def _gain_options(results: list[dict]) -> dict | None:
    for result in sorted(results, key=lambda r: r.get("written_at", ""), reverse=True):
        options = (result.get("leaderboard_options") or {}).get("gain")
        if options:
            return options if isinstance(options, dict) else {}
    return None


def _gain_section(results: list[dict], rows: dict[str, list[dict]], classes: list[str]) -> list[str]:
    options = _gain_options(results)
    if options is None:
        return []
    positive, reference = options.get("positive", "COVID-19"), options.get("reference")
    fixed_score, fixed_label = options.get("reference_score"), options.get("reference_label") or "fixed reference"
    # the table that holds the reference row; without one, every binary table of the positive class
    if positive not in classes or (reference not in rows if reference else len(classes) != 2):
        return []
    mode = options.get("ppcr", "as_defined")
    keys = ("sensitivity", "specificity", "bacc", "ppcr", "accuracy", "score")
    means = {}
    for method_id, runs in rows.items():
        per_seed = [gain_score(r["metrics"], positive, accuracy=one_vs_rest_accuracy(r.get("confusion_matrix"), classes.index(positive)), ppcr=mode) for r in runs]
        means[method_id] = {key: _mean_or_none([s[key] for s in per_seed]) for key in keys}
    reference_score = means.get(reference, {}).get("score")
    against = [f"`{reference}`"] if reference else []
    if fixed_score is not None:
        against.append(f"{fixed_label} (fixed score {fixed_score:.5f}, not re-run)")
    used = "PPCR" if mode == "as_defined" else "accuracy"
    note = "" if mode == "as_defined" else " (`as_tabulated`: Table II's PPCR values are these accuracies)"
    lines = [f"Gain table (weighted-CE paper, section VI.C), positive class {positive}: PPCR = (TP + FP) / N, accuracy = (TP + TN) / N; "
             f"score = (bACC + {used}) / 2{note}; Gain = relative change of the score against {' and against '.join(against) or '(no reference named)'}:", ""]
    header = ["Method", "Sensitivity", "Specificity", "bACC", "PPCR", "Accuracy", f"(bACC+{used})/2"]
    header += [f"Gain vs {reference}"] if reference else []
    header += [f"Gain vs {fixed_label}"] if fixed_score is not None else []
    if len(header) == 7:
        header.append("Gain")
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method_id, m in means.items():
        cells = [method_id] + [_fmt(m[k]) for k in keys]
        if reference or fixed_score is None:
            value = gain(m["score"], reference_score)
            cells.append("reference" if method_id == reference else (f"{value:+.2f}%" if value is not None else "n/a"))
        if fixed_score is not None:
            value = gain(m["score"], fixed_score)
            cells.append(f"{value:+.2f}%" if value is not None else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def _mean_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.mean(present) if present else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _grid_note(results: list[dict]) -> list[str]:
    searches = [r["grid_search"] for r in results if r.get("grid_search")]
    if not searches:
        return []
    search = searches[0]
    chosen = ", ".join(f"{k}={v}" for k, v in search["chosen"].items())
    return [f"- Grid search on the validation split ({len(search['points'])} points, by {search['metric']}): chose {chosen}."]


def _notes(results: list[dict]) -> list[str]:
    lines = ["## Methods and their deviations from the papers", ""]
    seen = {}
    for result in results:
        seen.setdefault(result["method"]["id"], result["method"])
    for method_id, method in sorted(seen.items()):
        lines.append(f"### {method_id}: {method.get('title') or method.get('method') or method_id}")
        lines.append("")
        if method.get("paper"):
            lines.append(f"Paper: {method['paper']}. Config: `{method.get('file')}`.")
            lines.append("")
        deviations = method.get("deviations") or []
        lines += [f"- {d}" for d in deviations] if deviations else ["- none recorded"]
        lines += _grid_note([r for r in results if r["method"]["id"] == method_id])
        lines.append("")
        lines += phase_lines([r for r in results if r["method"]["id"] == method_id])
    return lines


def render(results: list[dict[str, Any]], *, source: str, store: str | None = None, skipped: list[tuple[str, str]] = (),
           claims: list[dict] | None = None, external: list[dict] | None = None, explanations: list[dict] | None = None) -> str:
    """The leaderboard page of ``results`` read from ``source``; ``store`` (default ``source``) is the results store
    recorded for the same-store check, relative to the page's folder; ``skipped`` lists (file, reason) left out;
    ``claims`` (configs/claims/papers.yaml) adds the claims table, ``external`` the external test sets' table."""
    lines = ["# CXR-Bench leaderboard", "", f"<!-- cxr-bench results store: {store or source} -->", ""]
    lines.append(f"Generated from {len(results)} result file(s) in `{source}` by `python -m benchmark leaderboard --out {Path(source).parent}`; "
                 "`make benchmark` reruns the default suite and rewrites this file. Do not edit by hand.")
    lines.append("")
    if skipped:
        lines += ["Skipped unreadable result files: " + "; ".join(f"`{path}` ({reason})" for path, reason in skipped) + ".", ""]
    if not results:
        return "\n".join(lines + ["No results yet: run `make benchmark`.", ""])
    if any(r["dataset"].get("synthetic") for r in results):
        lines += [SYNTHETIC_BANNER, ""]
    if any(r["method"].get("profile") == "quick" for r in results):
        lines += [QUICK_BANNER, ""]
    lines += [
        "Metrics are on the held-out test split of a patient-level split shared by every method in a table, using the "
        "checkpoint with the best validation score. Cells: one seed `value [95% CI]`; several seeds `mean ± sd (n=seeds) "
        "[95% CI of the seeds' mean]`. CIs are patient-level bootstrap intervals (all images of a patient resampled "
        "together, stratified by class; resamples and seed in each result file): two methods whose intervals overlap "
        "may not differ, and the claims table tests differences paired. Bit-exact reruns hold on one machine only; "
        "the CI, not the third decimal, is the result. Sensitivity = recall; PPV = precision; AUROC is one-vs-rest on "
        "the predicted scores; ECE is the expected calibration error of the top-label confidence (15 bins).",
        "",
    ]
    everything, results = results, selected_by_recorded_rule(results)  # tables and claims see the chosen draws only
    link_base = f"{Path(store or source).parent.as_posix()}/" if Path(store or source).parent != Path(".") else ""  # plots: relative to --out
    if explanations:  # each explained run's PNGs beside its plots (joined by run and configuration fingerprint)
        results = [{**r, "_explanation_pngs": explanation_pngs(r, explanations)} for r in results]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for result in results:
        groups[table_key(result)].append(result)
    # synthetic tables first (they are what `make benchmark` gives without data); within a dataset, the full task
    # before its merged (e.g. binary) versions
    for key in sorted(groups, key=lambda k: (not groups[k][0]["dataset"].get("synthetic"), k[0], k[1], -len(k[3]), k)):
        lines += _group_section(groups[key], link_base)
    lines += fair_section(everything)
    lines += stage_auroc_section(results)
    lines += pretraining_section(results, relative_to=Path.cwd())
    if external:
        lines += external_section(results, external)
    if explanations:
        lines += explain_section(results, explanations, link_base=link_base)
    if claims is not None:
        lines += claims_section(claims, results, source=source, rule=", ".join(sorted({rule_of(r) for r in results})))
    lines += _notes(results)
    return "\n".join(lines).rstrip() + "\n"


STORE_MARKER = re.compile(r"^<!-- cxr-bench results store: (.+?) -->$", re.MULTILINE)
LEGACY_SOURCE = re.compile(r"Generated from \d+ result file\(s\) in `([^`]+)`")  # pages written before the marker


def recorded_store(leaderboard_path: Path) -> Path | None:
    """The results store (resolved) an existing leaderboard page says it was generated from, or None."""
    path = Path(leaderboard_path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = STORE_MARKER.search(text) or LEGACY_SOURCE.search(text)
    return (path.parent / match.group(1)).resolve() if match else None


def foreign_store(leaderboard_path: Path, results_dir: Path) -> str | None:
    """Why ``leaderboard_path`` may not be replaced by the leaderboard of ``results_dir``; None if absent or same store."""
    path = Path(leaderboard_path)
    if not path.exists():
        return None
    store = recorded_store(path)
    if store is None:
        return f"{path} records no results store (it was not generated by `python -m benchmark leaderboard`)"
    if store == Path(results_dir).resolve():
        return None
    return f"{path} was generated from results store {store}, not {results_dir}"


def _store_label(results_dir: Path, leaderboard_path: Path) -> str:
    """The store as recorded in a page: relative to the page's folder when it lies under it, else absolute."""
    store, folder = Path(results_dir).resolve(), Path(leaderboard_path).resolve().parent
    try:
        return store.relative_to(folder).as_posix()
    except ValueError:
        return str(store)


def write_leaderboard(out_dir: Path, leaderboard_path: Path, *, replace: bool = False, claims_path: Path | None = DEFAULT_CLAIMS) -> Path:
    """Render ``<out_dir>/results`` into ``leaderboard_path`` atomically. A missing store is an error, and a page of
    another store is only replaced with ``replace`` (``--replace-leaderboard``)."""
    results_dir, leaderboard_path = Path(out_dir) / "results", Path(leaderboard_path)
    if not results_dir.is_dir():
        raise ConfigError(f"results folder {results_dir} does not exist")
    problem = None if replace else foreign_store(leaderboard_path, results_dir)
    if problem:
        raise ConfigError(f"{problem}; pass --replace-leaderboard to replace it")
    results, skipped = read_results(results_dir)
    claims = load_claims(claims_path) if claims_path else None
    page = render(results, source=str(results_dir), store=_store_label(results_dir, leaderboard_path), skipped=skipped, claims=claims,
                  external=read_external_results(Path(out_dir)), explanations=read_explanations(Path(out_dir)))
    atomic_write_text(leaderboard_path, page)
    return leaderboard_path
