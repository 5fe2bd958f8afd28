"""``run --dry-run`` lists the plan without training; a running suite reports run k of n and the time left."""

import logging
from pathlib import Path

import pandas as pd
import yaml

from benchmark.cli import main
from benchmark.plan import format_duration
from benchmark.progress import SuiteClock

from test_runner import _suite


def _two_seeds(tmp_path, epochs=2, explain=None):
    suite = _suite(tmp_path, epochs=epochs)
    data = yaml.safe_load(suite.read_text())
    data["seeds"] = [0, 1]
    if explain:
        data["explain"] = explain
    data["trainer"]["limit_train_batches"] = 2
    suite.write_text(yaml.safe_dump(data))
    return suite


def test_dry_run_lists_every_run_and_trains_nothing(tmp_path, capsys):
    suite = _two_seeds(tmp_path, epochs=3, explain={"probe_images": 4})
    out = tmp_path / "runs"
    assert main(["run", str(suite), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    for seed in (0, 1):
        line = next(line for line in printed.splitlines() if f"synthetic/tiny_single_net/seed{seed}" in line)
        assert line.split()[-3:-1] == ["16", "3"]  # 2 batches of 8 images per epoch (limit_train_batches), 3 epochs
    assert "Estimated total:" in printed
    assert sum(" explain " in line for line in printed.splitlines()) == 2  # the suite's explanations are planned for each run
    assert not (out / "results").exists() and not (out / "logs").exists()  # no run trained, no result written
    assert not (tmp_path / "leaderboard.md").exists()


def test_the_suite_reports_run_k_of_n_and_the_time_left(tmp_path, caplog):
    suite = _two_seeds(tmp_path)
    args = ["run", str(suite), "--out", str(tmp_path / "runs"), "--leaderboard", str(tmp_path / "leaderboard.md"), "--cache-dir", str(tmp_path / "cache")]
    with caplog.at_level(logging.INFO, logger="benchmark.progress"):
        assert main(args) == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "benchmark.progress"]
    assert any("run 1 of 2" in line and "epoch 1/2" in line and "time left unknown" in line for line in lines)
    assert any("run 2 of 2" in line and "epoch 2/2" in line and "left" in line and "unknown" not in line for line in lines)
    metrics = pd.read_csv(tmp_path / "runs/logs/synthetic/tiny_single_net/seed1/csv/metrics.csv")
    assert {"suite/run", "suite/runs", "suite/elapsed_s", "suite/time_left_s"} <= set(metrics.columns)
    assert metrics["suite/run"].dropna().eq(2).all()


def test_time_left_counts_the_runs_still_to_come():
    clock = SuiteClock("s", total_runs=4)
    clock.finished = [100.0, 300.0]  # two runs done, mean 200 s
    clock.number = 3
    assert clock.time_left(current_run_left=50.0, current_run_total=150.0) == 50.0 + 1 * 200.0
    fresh = SuiteClock("s", total_runs=3, number=1)
    assert fresh.time_left(current_run_left=10.0, current_run_total=40.0) == 10.0 + 2 * 40.0
    assert format_duration(75) == "1m15s" and format_duration(3720) == "1h02m"


def test_the_phantom_profile_caps_training_on_phantoms_only():
    """quick.yaml's `phantoms:` caps epochs and batches of every run and every phase on the phantoms; real data keeps
    each method's own schedule."""
    from benchmark.config import load_suite

    repo = Path(__file__).resolve().parent.parent
    phantoms = load_suite(repo / "configs/quick.yaml")
    for spec in phantoms.runs:
        assert spec.trainer["max_epochs"] == 1 and spec.trainer["limit_train_batches"] <= 2
        for stage in spec.stages or []:
            assert stage["trainer"]["limit_train_batches"] <= 2 and all(phase["epochs"] == 1 for phase in stage["phases"])
            if stage["dataset"]["name"] == "synthetic":  # the smaller phantom set, in every stage
                assert stage["dataset"]["options"]["patients_per_class"] == 50
        if spec.dataset["name"] == "synthetic":
            assert spec.dataset["options"]["patients_per_class"] == 50
    real = {spec.method["id"]: spec for spec in load_suite(repo / "configs/quick.yaml", data_root=repo).runs}
    assert all("patients_per_class" not in (spec.dataset.get("options") or {}) for spec in real.values())
    assert real["single_net_quick"].trainer["max_epochs"] == 10 and real["single_net_quick"].trainer.get("limit_val_batches") is None
    assert real["transfer_covid_cxr14_quick"].stages[-1]["phases"][0]["epochs"] == 3
