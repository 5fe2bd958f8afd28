"""End to end: the CLI trains on a tiny synthetic set, writes split, result JSON, predictions and leaderboard."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from benchmark.cli import main

REPO = Path(__file__).resolve().parent.parent


def _suite(tmp_path, *, epochs=1, wandb=False):
    method = {
        "extends": str(REPO / "configs/methods/single_net.yaml"),
        "title": "tiny single-net",
        "model": {"nf": 8, "fc_units": 16},
        "optimizer": {"name": "adam", "lr": 1e-3},
        "deviations": ["test-sized network"],
    }
    (tmp_path / "tiny_single_net.yaml").write_text(yaml.safe_dump(method))
    suite = {
        "name": "tiny",
        "datasets": [{"name": "covid19_radiography", "options": {"patients_per_class": 8}}],
        "synthetic_without_data_root": True,
        "methods": ["tiny_single_net.yaml"],
        "seeds": [0],
        "data": {"image_size": 32, "split_seed": 0, "val_fraction": 0.25, "test_fraction": 0.25, "batch_size": 8},
        "trainer": {"max_epochs": epochs, "accelerator": "cpu", "enable_progress_bar": False},
        "logging": {"wandb": {"mode": "offline"} if wandb else False},
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def _run(tmp_path, suite):
    args = ["run", str(suite), "--out", str(tmp_path / "runs"), "--leaderboard", str(tmp_path / "leaderboard.md"), "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    return json.loads((tmp_path / "runs/results/synthetic/tiny_single_net/seed0.json").read_text())


@pytest.mark.run_plots
def test_one_epoch_run_writes_everything(tmp_path):
    result = _run(tmp_path, _suite(tmp_path, wandb=True))
    assert set(result["plots"]) == {"roc", "confusion", "reliability"} and all((tmp_path / "runs" / p).is_file() for p in result["plots"].values())
    assert result["dataset"]["synthetic"] is True and result["dataset"]["stands_in_for"] == "covid19_radiography"
    assert 0 <= result["metrics"]["accuracy"] <= 1 and "auroc" in result["metrics"]
    assert result["start_weights"] == "random init"
    assert result["parameter_count"] > 0 and result["train_images_per_second"] > 0
    split_file = Path(result["dataset"]["split_file"])
    assert split_file.exists() and split_file.parent == tmp_path / "runs/splits"
    predictions = pd.read_csv(result["predictions_file"])
    assert len(predictions) == result["n_test_images"] == result["dataset"]["counts"]["test"]["images"]
    board = (tmp_path / "leaderboard.md").read_text()
    assert "SYNTHETIC" in board and "tiny_single_net" in board and "test-sized network" in board
    assert f"{result['metrics']['accuracy']:.3f}" in board
    assert list((tmp_path / "runs/logs/synthetic/tiny_single_net/seed0/wandb").glob("offline-run-*"))
    assert (tmp_path / "runs/logs/synthetic/tiny_single_net/seed0/csv/metrics.csv").exists()


def test_second_run_reuses_cache_and_split_and_reproduces_metrics(tmp_path, caplog):
    suite = _suite(tmp_path, epochs=2)
    first = _run(tmp_path, suite)
    caplog.clear()
    with caplog.at_level("INFO"):
        second = _run(tmp_path, suite)
    assert "cache hit" in caplog.text and "reusing shared split" in caplog.text
    assert second["dataset"]["split_sha256"] == first["dataset"]["split_sha256"]
    assert second["metrics"] == first["metrics"]


def test_bad_suite_gives_a_clear_error(tmp_path, capsys):
    suite = tmp_path / "bad.yaml"
    suite.write_text("name: bad\ndatasets: [nonexistent]\nmethods: [x.yaml]\n")
    assert main(["run", str(suite)]) == 2
    assert "unknown dataset 'nonexistent'" in capsys.readouterr().err
    suite.write_text("name: bad\ndatasets: [covid19_radiography]\nmethods: [x.yaml]\n")
    assert main(["run", str(suite)]) == 2
    assert "needs a data root" in capsys.readouterr().err


def test_wrong_data_root_names_where_it_looked(tmp_path, capsys):
    assert main(["run", str(REPO / "configs/quick.yaml"), "--data-root", str(tmp_path), "--out", str(tmp_path / "runs")]) == 2
    assert "looked in" in capsys.readouterr().err


def test_multilabel_results_get_an_auroc_table(tmp_path):
    from benchmark.leaderboard import render

    result = {
        "method": {"id": "densenet", "method": "classifier"}, "seed": 0, "parameter_count": 1e6, "start_weights": "random init",
        "command": "python -m benchmark run configs/x.yaml", "metrics": {"auroc": 0.7, "f1": 0.2, "ece": 0.1, "auroc/Atelectasis": 0.65, "auroc/Mass": 0.75},
        "ci": {"auroc": [0.61, 0.79], "auroc/Mass": [0.6, 0.9]},
        "dataset": {"name": "chestxray14", "image_size": 64, "split_sha256": "ab" * 32, "classes": ["Atelectasis", "Mass"], "multilabel": True,
                    "split_file": "s.csv", "split_seed": 0, "counts": {"test": {"images": 10, "patients": 5}}},
    }
    board = render([result], source="runs/results")
    assert "| Method | Seeds | Macro AUROC | Macro F1 @0.5 | ECE | AUROC Atelectasis | AUROC Mass |" in board
    assert "| densenet | 0 | 0.700 [0.610, 0.790] | 0.200 | 0.100 | 0.650 | 0.750 [0.600, 0.900] |" in board
    assert "Reproduce: `python -m benchmark run configs/x.yaml`" in board


def test_resume_skips_finished_runs(tmp_path, caplog):
    suite = _suite(tmp_path)
    first = _run(tmp_path, suite)
    args = ["run", str(suite), "--out", str(tmp_path / "runs"), "--leaderboard", str(tmp_path / "leaderboard.md"), "--cache-dir", str(tmp_path / "cache"), "--resume"]
    with caplog.at_level("INFO"):
        assert main(args) == 0
    assert "skipped (--resume)" in caplog.text
    again = json.loads((tmp_path / "runs/results/synthetic/tiny_single_net/seed0.json").read_text())
    assert again["written_at"] == first["written_at"] and "--resume" not in again["command"]
