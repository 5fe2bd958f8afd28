"""End to end through the CLI: the siamese COVID-Net (3 classes) and two weighted-CE classifiers (COVID-19 vs
non-COVID through the class map) on one tiny synthetic split, with the Gain table in the leaderboard."""

import json
from pathlib import Path

import pandas as pd
import yaml

from benchmark.cli import main

REPO = Path(__file__).resolve().parent.parent
TINY_ACNN = {"model": {"backbone": "acnn", "backbone_options": {"depth": 2}, "head": "fcn"}, "data": {"batch_size": 8}, "trainer": {"max_epochs": 1}, "deviations": ["test-sized network"]}


def _write(path: Path, data: dict) -> str:
    path.write_text(yaml.safe_dump(data))
    return path.name


def test_siamese_and_wce_methods_run_end_to_end(tmp_path):
    methods = [
        _write(tmp_path / "tiny_siamese.yaml", {
            "extends": str(REPO / "configs/methods/siamese.yaml"), "model": {"nf": 8, "fc_units": 16},
            "task": {"validation_trials": 9}, "optimizer": {"name": "adam", "lr": 1e-3},
            "data": {"batch_size": 8, "pair_sampling": {"pairs_per_epoch": 32}}, "trainer": {"max_epochs": 1}, "deviations": ["test-sized network"],
        }),
        _write(tmp_path / "tiny_acnn.yaml", {"extends": str(REPO / "configs/methods/wce_acnn.yaml"), **TINY_ACNN}),
        _write(tmp_path / "tiny_acnn_beta075.yaml", {"extends": str(REPO / "configs/methods/wce_acnn_beta075.yaml"), **TINY_ACNN}),
    ]
    suite = tmp_path / "suite.yaml"
    _write(suite, {
        "name": "tiny", "datasets": [{"name": "covid19_radiography", "options": {"patients_per_class": 8}}], "synthetic_without_data_root": True,
        "methods": methods, "seeds": [0], "logging": {"wandb": False},
        "data": {"image_size": 32, "split_seed": 0, "val_fraction": 0.25, "test_fraction": 0.25},
        "trainer": {"accelerator": "cpu", "enable_progress_bar": False},
        "leaderboard": {"gain": {"reference": "tiny_acnn", "positive": "COVID-19"}},
    })
    args = ["run", str(suite), "--out", str(tmp_path / "runs"), "--leaderboard", str(tmp_path / "leaderboard.md"), "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    results = {m: json.loads((tmp_path / f"runs/results/synthetic/{m}/seed0.json").read_text()) for m in ("tiny_siamese", "tiny_acnn", "tiny_acnn_beta075")}

    siamese = results["tiny_siamese"]
    assert siamese["dataset"]["classes"] == ["COVID-19", "normal", "pneumonia"]
    assert siamese["monitor"]["metric"] == "val/accuracy" and siamese["best_validation_score"] is not None
    assert 0 <= siamese["metrics"]["accuracy"] <= 1 and "auroc" in siamese["metrics"] and siamese["train_pairs_per_second"] > 0
    scores = pd.read_csv(siamese["predictions_file"])[["score_COVID-19", "score_normal", "score_pneumonia"]].to_numpy()
    assert len(scores) == siamese["n_test_images"] and ((scores > 0) & (scores < 1)).all()  # sigmoid similarities to the templates

    wce = results["tiny_acnn_beta075"]
    assert wce["dataset"]["classes"] == ["COVID-19", "non-COVID"] and wce["dataset"]["class_map"]["*"] == "non-COVID"
    assert wce["method"]["loss"] == {"name": "weighted_cross_entropy", "beta": 0.75, "positive": "COVID-19"}
    assert wce["dataset"]["split_sha256"] == siamese["dataset"]["split_sha256"]  # one split, two tasks
    assert wce["dataset"]["counts"]["test"]["images"] == siamese["dataset"]["counts"]["test"]["images"]
    assert {"ppcr/COVID-19", "sensitivity/COVID-19", "specificity/COVID-19"} <= set(wce["metrics"])

    board = (tmp_path / "leaderboard.md").read_text()
    assert board.count("## SYNTHETIC") == 2  # the 3-class and the binary task get separate tables
    assert board.count("Gain table (weighted-CE paper") == 1 and "| reference |" in board  # under the binary table only
    gain_row = [line for line in board.splitlines() if line.startswith("| tiny_acnn_beta075 |")][-1].split("|")[1:-1]
    assert len(gain_row) == 8 and (gain_row[-1].strip().endswith("%") or gain_row[-1].strip() == "n/a")
    metrics, reference = wce["metrics"], results["tiny_acnn"]["metrics"]
    score = lambda m: ((m["sensitivity/COVID-19"] + m["specificity/COVID-19"]) / 2 + m["ppcr/COVID-19"]) / 2
    if score(reference) > 0:
        assert gain_row[-1].strip() == f"{100 * (score(metrics) - score(reference)) / score(reference):+.2f}%"
