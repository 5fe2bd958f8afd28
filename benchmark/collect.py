"""Fair-comparison tables from result files alone (``python -m benchmark collect``).

Per task and method: the selection rule (benchmark/selection.py), the tuning budget, the chosen draw and its
values, and the headline metric of the chosen draw's trials as mean ± standard error with its 95% CI (the
leaderboard's row_intervals). Leave-one-source-out runs also get a held-out table: in-source test score, the
score on each held-out source, their average and the drop (as WILDS reports in- vs out-of-distribution, Koh et
al. 2021). An ``oracle`` table selects on the test set: an upper bound, never the main table or the claims.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

from benchmark.config import ConfigError
from benchmark.results import read_results
from benchmark.selection import RULES, draw_of, is_tuned, selected_results, task_key

FORMATS = ("markdown", "latex", "csv")


def headline_metric(result: dict, metric: str | None = None) -> str:
    return metric or ("auroc" if result["dataset"].get("multilabel") else "balanced_accuracy")


def budget(runs: list[dict]) -> str:
    """``3 draws x 2 trials``, ``grid 129 points`` or ``paper defaults x 3 seeds``."""
    tuning, grid = runs[0].get("tuning"), runs[0].get("grid_search")
    if tuning:
        draws, trials = tuning.get("draws", 1), tuning.get("trials", len(runs))
        return f"{draws} draw{'s' * (draws != 1)} x {trials} trial{'s' * (trials != 1)}"
    if grid and grid.get("points"):
        return f"grid {len(grid['points'])} points"
    return f"paper defaults x {len(runs)} seed{'s' * (len(runs) != 1)}"


def _stats(values: list[float | None]) -> tuple[float | None, float | None, int]:
    present = [v for v in values if v is not None]
    if not present:
        return None, None, 0
    se = statistics.stdev(present) / math.sqrt(len(present)) if len(present) > 1 else None
    return statistics.mean(present), se, len(present)


def cell(mean: float | None, se: float | None = None, ci: list[float] | None = None) -> str:
    """``0.905 ± 0.007 [0.880, 0.930]``; the CI is formatted as the leaderboard's."""
    if mean is None:
        return "n/a"
    return f"{mean:.3f}" + (f" ± {se:.3f}" if se is not None else "") + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _task_label(result: dict) -> str:
    dataset, held = result["dataset"], result.get("held_out")
    label = f"{dataset['name']} · {dataset['image_size']} px"
    return label + (f" · held out {', '.join(held.get('test') or [])}" if held else f" · split {dataset['split_sha256'][:12]}")


def _rows_by_task(results: list[dict]) -> dict[tuple, dict[str, list[dict]]]:
    """Selected results by task key, then by the leaderboard's row label (method id, configuration)."""
    from benchmark.leaderboard import _method_rows

    tasks: dict[tuple, list[dict]] = defaultdict(list)
    for result in results:
        tasks[task_key(result)].append(result)
    return {key: _method_rows(runs) for key, runs in sorted(tasks.items(), key=lambda item: str(item[0]))}


def main_rows(results: list[dict], rule: str, metric: str | None = None) -> list[dict]:
    """One record per (task, method) of the draws ``rule`` chooses."""
    from benchmark.leaderboard import row_intervals

    records = []
    for rows in _rows_by_task(selected_results(results, rule, metric)).values():
        for label, runs in rows.items():
            name = headline_metric(runs[0], metric)
            mean, se, n = _stats([r["metrics"].get(name) for r in runs])
            ci = row_intervals(runs).get(name)
            tuning = runs[0].get("tuning") or {}
            records.append({"task": _task_label(runs[0]), "method": label, "rule": rule if is_tuned(runs[0]) else "untuned",
                            "budget": budget(runs), "draw": draw_of(runs[0]), "values": tuning.get("values") or {}, "metric": name,
                            "mean": mean, "se": se, "n": n, "ci_low": ci[0] if ci else None, "ci_high": ci[1] if ci else None})
    return records


def held_out_rows(results: list[dict], rule: str, metric: str | None = None) -> tuple[list[str], list[dict]]:
    """(held-out sources, one record per (task family, method)) of the leave-one-source-out results."""
    from benchmark.leaderboard import row_intervals

    families: dict[tuple, dict[str, dict]] = defaultdict(dict)
    sources: set[str] = set()
    for key, rows in _rows_by_task([r for r in selected_results(results, rule, metric) if r.get("held_out")]).items():
        source = ", ".join(key[4])
        sources.add(source)
        for label, runs in rows.items():
            name = headline_metric(runs[0], metric)
            mean, se, _ = _stats([r["metrics"].get(name) for r in runs])
            in_source = [r["held_out"].get("in_source") or {} for r in runs]
            in_mean, in_se, _ = _stats([(part.get("metrics") or {}).get(name) for part in in_source])
            in_ci = (in_source[0].get("ci") or {}).get(name) if len(runs) == 1 else None  # the in-source predictions are not kept
            families[key[:4]].setdefault(label, {"metric": name, "folds": {}})["folds"][source] = (mean, se, row_intervals(runs).get(name), in_mean, in_se, in_ci)
    records = []
    for family, methods in sorted(families.items(), key=lambda item: str(item[0])):
        for label, entry in methods.items():
            folds = entry["folds"]
            in_source = _stats([f[3] for f in folds.values()])[0]
            average = _stats([f[0] for f in folds.values()])[0]
            drop = in_source - average if in_source is not None and average is not None else None
            records.append({"task": f"{family[0]} · {family[1]} px · by {family[3]}", "method": label, "rule": rule, "metric": entry["metric"],
                            "in_source": in_source, "folds": folds, "held_out_average": average, "drop": drop})
    return sorted(sources), records


def tables(results: list[dict], rule: str, metric: str | None = None) -> list[dict]:
    """The tables of ``rule`` as {title, header, rows (cells), records (numbers)}: main, then held-out when any."""
    if rule not in RULES:
        raise ConfigError(f"unknown selection rule {rule!r}; known: {', '.join(RULES)}")
    records = main_rows(results, rule, metric)
    title = f"Fair comparison, selected by `{rule}`"
    if rule == "oracle":
        title = "Oracle selection (test-set selection): an upper bound only, never the main table or the claims"
    header = ["Task", "Method", "Rule", "Budget", "Chosen draw", "Values", "Metric", "Mean ± SE [95% CI]"]
    rows = [[r["task"], r["method"], r["rule"], r["budget"], str(r["draw"]), ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["values"].items()) or "paper defaults",
             r["metric"], cell(r["mean"], r["se"], [r["ci_low"], r["ci_high"]] if r["ci_low"] is not None else None)] for r in records]
    out = [{"title": title, "header": header, "rows": rows, "records": records}]
    sources, held = held_out_rows(results, rule, metric)
    if held:
        header = (["Task", "Method", "Metric", "In-source test"] + [f"{s} held out: in-source" for s in sources] + [f"Held out: {s}" for s in sources]
                  + ["Held-out average", "Drop"])
        rows = [[r["task"], r["method"], r["metric"], cell(r["in_source"])]
                + [cell(*r["folds"][s][3:]) if s in r["folds"] else "n/a" for s in sources]
                + [cell(*r["folds"][s][:3]) if s in r["folds"] else "n/a" for s in sources] + [cell(r["held_out_average"]), cell(r["drop"])] for r in held]
        flat = [{k: v for k, v in r.items() if k != "folds"} | {f"held_out/{s}": r["folds"].get(s, (None,))[0] for s in sources}
                | {f"in_source/{s}": r["folds"].get(s, (None,) * 4)[3] for s in sources} for r in held]
        out.append({"title": f"Leave-one-source-out ({'oracle: upper bound' if rule == 'oracle' else rule}): in-source vs held-out sources",
                    "header": header, "rows": rows, "records": flat})
    return out


def markdown(results: list[dict], rule: str, metric: str | None = None, level: int = 3) -> list[str]:
    lines = []
    for table in tables(results, rule, metric):
        lines += [f"{'#' * level} {table['title']}", "", "| " + " | ".join(table["header"]) + " |", "|" + "---|" * len(table["header"])]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in table["rows"]] + [""]
    return lines


LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                 "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "·": r"$\cdot$", "`": ""}


def latex_escape(text: str) -> str:
    return "".join(LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def latex(results: list[dict], rule: str, metric: str | None = None) -> list[str]:
    """One booktabs tabular per table (needs ``\\usepackage{booktabs}``), its title as a comment."""
    lines = []
    for table in tables(results, rule, metric):
        lines += [f"% {table['title']}", r"\begin{tabular}{" + "l" * len(table["header"]) + "}", r"\toprule",
                  " & ".join(map(latex_escape, table["header"])) + r" \\", r"\midrule"]
        lines += [" & ".join(map(latex_escape, row)) + r" \\" for row in table["rows"]] + [r"\bottomrule", r"\end{tabular}", ""]
    return lines


def csv_text(results: list[dict], rule: str, metric: str | None = None) -> str:
    """One row per (table, task, method): numbers as numbers, the chosen values as JSON."""
    rows = [{"table": t["title"], **r, **({"values": json.dumps(r["values"], sort_keys=True)} if "values" in r else {})}
            for t in tables(results, rule, metric) for r in t["records"]]
    fields = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def collect(results_dir: Path, rule: str, fmt: str = "markdown", metric: str | None = None) -> str:
    """The tables of the results under ``results_dir`` (an ``--out`` folder or its ``results/``) in ``fmt``."""
    folder = Path(results_dir)
    folder = folder / "results" if (folder / "results").is_dir() else folder
    if rule not in RULES:
        raise ConfigError(f"unknown selection rule {rule!r}; known: {', '.join(RULES)}")
    results = read_results(folder)[0] if folder.is_dir() else []
    if not results:
        raise ConfigError(f"no usable result files under {folder}")
    if fmt == "csv":
        return csv_text(results, rule, metric)
    return "\n".join((latex if fmt == "latex" else markdown)(results, rule, metric)).rstrip() + "\n"
