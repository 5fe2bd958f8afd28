"""Fair-comparison tables (benchmark/collect.py), their CLI and the leaderboard's use of them, on hand-written results."""

from __future__ import annotations

import csv
import io
import re

from test_selection import fair_result, tuned_store

from benchmark.cli import main
from benchmark.collect import csv_text, latex, markdown
from benchmark.leaderboard import render
from benchmark.results import read_results


def _row(lines: list[str], method: str) -> list[str]:
    return next(line for line in lines if line.startswith(f"| radiography · 64 px · split a0000") and f"| {method} |" in line).split(" | ")


def test_markdown_numbers_are_the_leaderboards(tmp_path):
    results = tuned_store(tmp_path)
    lines = markdown(results, "validation")
    a, b = _row(lines, "a"), _row(lines, "b")
    assert a[2:6] == ["validation", "3 draws x 2 trials", "1", "optimizer.lr=0.0001"]
    assert b[2:6] == ["untuned", "paper defaults x 2 seeds", "0", "paper defaults"]
    page = render(results, source=str(tmp_path / "results"))
    assert all(line in page for line in lines if line.startswith("|"))
    assert "Model selection: validation. Budget: a: 3 draws x 2 trials; b: paper defaults x 2 seeds." in page
    # the main table holds the chosen draw only, with the same mean and 95% CI as collect's cell
    mean, ci = re.match(r"(\d\.\d{3}) ± \d\.\d{3} (\[.*\])", a[7].rstrip(" |")).groups()
    main_row = next(line for line in page.splitlines() if line.startswith("| a | 0,1 |"))
    assert f"{mean} ± " in main_row and ci in main_row
    assert "Oracle selection" in page and "upper bound" in page


def test_latex_and_csv_carry_the_numbers(tmp_path):
    results = tuned_store(tmp_path)
    text = "\n".join(latex(results, "oracle"))
    assert r"\toprule" in text and r"\bottomrule" in text and "upper bound" in text
    assert r"optimizer.lr=1e-05" in text and r"$\pm$" in text and r"radiography $\cdot$ 64 px" in text
    rows = list(csv.DictReader(io.StringIO(csv_text(results, "validation"))))
    a = next(r for r in rows if r["method"] == "a")
    expected = [x for x in results if x["method"]["id"] == "a" and x["tuning"]["draw"] == 1]
    assert float(a["mean"]) == sum(x["metrics"]["balanced_accuracy"] for x in expected) / 2
    assert a["draw"] == "1" and a["n"] == "2" and float(a["ci_low"]) < float(a["mean"]) < float(a["ci_high"])


def test_the_held_out_table_shows_in_source_each_source_average_and_drop(tmp_path):
    for source, accuracy, in_source in (("cohen", 0.5, 0.9), ("actualmed", 0.7, 0.8)):
        for draw, val in ((0, 0.6), (1, 0.7)):
            fair_result(tmp_path, "a", draw, 0, val, accuracy if draw else 0.99, draws=2, trials=1, held_out=source, in_source=in_source)
    results = read_results(tmp_path / "results")[0]
    lines = markdown(results, "validation")
    header = next(line for line in lines if "In-source test" in line)
    assert header == ("| Task | Method | Metric | In-source test | actualmed held out: in-source | cohen held out: in-source | "
                      "Held out: actualmed | Held out: cohen | Held-out average | Drop |")
    row = lines[lines.index(header) + 2].split(" | ")
    chosen = {r["held_out"]["test"][0]: r for r in results if r["tuning"]["draw"] == 1}
    held = {s: chosen[s]["metrics"]["balanced_accuracy"] for s in chosen}
    assert row[3] == "0.850" and row[4] == "0.800 [0.750, 0.850]" and row[5] == "0.900 [0.850, 0.950]"  # each fold's in-source test, its CI
    assert row[6].startswith(f"{held['actualmed']:.3f} [") and row[7].startswith(f"{held['cohen']:.3f} [")
    average = (held["actualmed"] + held["cohen"]) / 2
    assert row[8] == f"{average:.3f}" and row[9].rstrip(" |") == f"{0.85 - average:.3f}"
    page = render(results, source=str(tmp_path / "results"))
    assert "· held out: cohen" in page and "Leave-one-source-out (validation)" in page


def test_cli_prints_tables_and_refuses_unknown_rules_and_empty_folders(tmp_path, capsys):
    tuned_store(tmp_path / "runs")
    assert main(["collect", str(tmp_path / "runs"), "--select", "validation"]) == 0
    assert "Fair comparison, selected by `validation`" in capsys.readouterr().out
    assert main(["collect", str(tmp_path / "runs" / "results"), "--select", "oracle", "--format", "csv", "--out", str(tmp_path / "t.csv")]) == 0
    assert (tmp_path / "t.csv").read_text().startswith("table,task,method")
    assert main(["collect", str(tmp_path / "runs"), "--select", "validation", "--metric", "accuracy", "--format", "latex"]) == 0
    text = capsys.readouterr().out
    assert " & accuracy & " in text and "balanced" not in text  # --metric names the column's metric
    assert main(["collect", str(tmp_path / "runs"), "--select", "best"]) == 2
    assert "unknown selection rule 'best'" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["collect", str(tmp_path / "empty"), "--select", "validation"]) == 2
    assert "no usable result files" in capsys.readouterr().err


def test_an_untuned_store_gets_no_fair_section_and_keeps_every_run(tmp_path):
    for seed in (0, 1):
        fair_result(tmp_path, "b", 0, seed, 0.8, 0.65, tuned=False)
    results = read_results(tmp_path / "results")[0]
    page = render(results, source=str(tmp_path / "results"))
    assert "## Fair comparison" not in page and "| b | 0,1 |" in page
    assert "Model selection: validation (checkpoint only, untuned). Budget: paper defaults x 2 seeds, every row." in page
