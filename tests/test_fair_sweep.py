"""A synthetic fair sweep end to end: 3 draws x 2 trials x 2 methods on phantoms of three sites, one site held out
as the test set, selected by validation, summarised by `collect` exactly as the leaderboard shows it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
import yaml

from benchmark.cli import main
from benchmark.config import load_suite
from benchmark.results import read_results, write_result
from benchmark.selection import select

REPO = Path(__file__).resolve().parent.parent
TUNING = {"draws": 3, "trials": 2, "seed": 3}


def _write_suite(folder: Path) -> Path:
    tiny = {"model": {"nf": 4, "fc_units": 8}, "optimizer": {"name": "adam", "lr": 1e-3}, "data": {"batch_size": 8, "balanced_sampling": None},
            "trainer": {"max_epochs": 1}, "grid_search": None}
    (folder / "net_a.yaml").write_text(yaml.safe_dump({"extends": str(REPO / "configs/methods/single_net.yaml"), **tiny}))
    (folder / "net_b.yaml").write_text(yaml.safe_dump({"extends": str(REPO / "configs/methods/single_net.yaml"), **tiny,
                                                       "search_space": {"optimizer.lr": {"log_uniform": [1e-4, 1e-2]}}}))
    suite = {"name": "sweep", "datasets": [{"name": "synthetic", "options": {"patients_per_class": 15, "sources": 3}}],
             "methods": ["net_a.yaml", "net_b.yaml"], "tuning": TUNING, "split": {"by": "source", "test": "site0"},
             "logging": {"wandb": False, "plots": False}, "statistics": {"n_resamples": 100},
             "data": {"image_size": 32, "split_seed": 0, "val_fraction": 0.2, "test_fraction": 0.2},
             "trainer": {"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False, "limit_train_batches": 2,
                         "num_sanity_val_steps": 0}}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    suite = _write_suite(folder)
    args = ["run", str(suite), "--out", str(folder / "runs"), "--leaderboard", str(folder / "leaderboard.md"), "--cache-dir", str(folder / "cache")]
    assert main(args) == 0
    return folder, suite, args


def test_every_draw_and_trial_of_both_methods_is_trained_and_recorded(sweep):
    folder, suite, _ = sweep
    results = read_results(folder / "runs/results")[0]
    assert len(results) == 2 * 3 * 2 and all(r["plots"] == {} for r in results)  # logging.plots: false
    again = {spec.run_id: spec.draw for spec in load_suite(suite, cache_dir=folder / "cache").runs}  # same seed, same draws
    for result in results:
        assert result["tuning"] == again[result["run_id"]] and result["tuning"]["seed"] == 3
        assert result["selection"] == {"checkpoint": "validation", "val_source": None}
        assert result["held_out"]["test"] == ["site0"] and result["held_out"]["in_source"]["n_images"] > 0
        if result["tuning"]["draw"] == 0:
            assert result["tuning"]["values"] == {} and result["method"]["optimizer"]["lr"] == 1e-3
        else:
            assert result["method"]["optimizer"]["lr"] == result["tuning"]["values"]["optimizer.lr"]
    b_space = next(r["tuning"]["space"] for r in results if r["method"]["id"] == "net_b")
    assert b_space["optimizer.lr"] == {"log_uniform": [1e-4, 1e-2]} and "data.batch_size" in b_space  # its own bounds over the inherited space
    assert sorted(r["seed"] for r in results if r["method"]["id"] == "net_a" and r["tuning"]["draw"] == 2) == [0, 1]


def test_the_held_out_source_never_trains_or_validates(sweep):
    folder, _, _ = sweep
    results = read_results(folder / "runs/results")[0]
    split_files = {r["dataset"]["split_file"] for r in results}
    assert len(split_files) == 1  # one shared split for every method, draw and trial
    split = pd.read_csv(split_files.pop(), dtype=str, keep_default_na=False)
    per_source = results[0]["held_out"]["per_source"]
    assert set(per_source["site0"]) <= {"test", "excluded"} and per_source["site0"]["test"] > 0
    assert all("test" not in counts for source, counts in per_source.items() if source != "site0")
    held = set(split.loc[split["split"] == "test", "patient_id"])
    assert held and not held & set(split.loc[split["split"].isin(["train", "val", "test_in_source"]), "patient_id"])


def test_selection_is_blind_to_test_labels(sweep):
    folder, _, _ = sweep
    results = read_results(folder / "runs/results")[0]
    chosen = select(results, "validation")
    assert len(chosen) == 2
    rng = random.Random(0)
    for result in results:  # new test labels: every test number and prediction changes
        result["metrics"] = {key: rng.random() for key in result["metrics"]}
        result["ci"] = {}
        result["held_out"]["in_source"]["metrics"] = {key: rng.random() for key in result["held_out"]["in_source"]["metrics"]}
        predictions = pd.read_csv(result["predictions_file"])
        predictions["label"] = predictions["label"].sample(frac=1, random_state=rng.randrange(1000)).to_numpy()
        predictions.to_csv(result["predictions_file"], index=False)
        write_result(Path(result.pop("_file")), {k: v for k, v in result.items() if k not in ("schema_version", "written_at")})
    assert select(read_results(folder / "runs/results")[0], "validation") == chosen


def test_collect_prints_the_leaderboards_numbers_and_resume_retrains_nothing(sweep, capsys, caplog):
    folder, _, args = sweep
    assert main(["leaderboard", "--out", str(folder / "runs"), "--leaderboard", str(folder / "leaderboard.md")]) == 0
    capsys.readouterr()
    assert main(["collect", str(folder / "runs"), "--select", "validation"]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| synthetic")]
    page = (folder / "leaderboard.md").read_text()
    assert len(table) == 4 and all(line in page for line in table)  # the main and the held-out table, two methods each
    assert "Held out: site0" in page and "3 draws x 2 trials" in page
    assert main(["collect", str(folder / "runs"), "--select", "oracle", "--format", "csv"]) == 0
    assert "net_a" in capsys.readouterr().out
    interrupted = folder / "runs/results/synthetic/heldout-site0/net_b/draw1/seed1.json"
    interrupted.unlink()  # as if the sweep had stopped before this run
    with caplog.at_level("INFO"):
        assert main(args + ["--resume"]) == 0  # an interrupted sweep resumes where it stopped: only the missing run trains
    assert caplog.text.count("skipped (--resume)") == 11 and interrupted.is_file()


def test_a_held_out_source_without_a_class_is_scored_over_the_classes_it_holds():
    from types import SimpleNamespace

    import torch

    from benchmark.evaluate import evaluate
    from benchmark.runner import _over_present_classes
    from benchmark.statistics import bootstrap_metrics

    classes = ["COVID-19", "normal", "pneumonia"]
    generator = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 1] * 20)  # the held-out source has no pneumonia image
    scores = torch.softmax(torch.randn(40, 3, generator=generator) + 2 * torch.nn.functional.one_hot(labels, 3), dim=1)
    evaluation = evaluate(scores, labels, classes, multilabel=False)
    intervals = bootstrap_metrics(scores.numpy(), labels.numpy(), [f"p{i}" for i in range(40)], classes, multilabel=False, n_resamples=100)
    fixed, fixed_intervals = _over_present_classes(SimpleNamespace(num_classes=3, class_names=classes), evaluation, intervals, scores, labels)
    metrics = fixed["metrics"]
    assert metrics["sensitivity/pneumonia"] is None
    assert metrics["balanced_accuracy"] == pytest.approx((metrics["sensitivity/COVID-19"] + metrics["sensitivity/normal"]) / 2)
    assert metrics["balanced_accuracy"] > evaluation["metrics"]["balanced_accuracy"]  # torchmetrics counted the absent class as 0
    assert "balanced_accuracy" not in fixed_intervals["ci"] and fixed_intervals["ci"]["accuracy"] == intervals["ci"]["accuracy"]


def test_leave_one_source_out_validation_validates_on_a_whole_training_source(tmp_path):
    tiny = {"extends": str(REPO / "configs/methods/single_net.yaml"), "model": {"nf": 4, "fc_units": 8}, "data": {"batch_size": 8, "balanced_sampling": None},
            "trainer": {"max_epochs": 1}, "grid_search": None}
    (tmp_path / "net.yaml").write_text(yaml.safe_dump(tiny))
    suite = {"name": "loso-val", "datasets": [{"name": "synthetic", "options": {"patients_per_class": 12, "sources": 3}}], "methods": ["net.yaml"],
             "tuning": {"select": "leave-one-source-out-validation"}, "split": {"by": "source", "test": "site0"}, "logging": {"wandb": False, "plots": False},
             "statistics": {"n_resamples": 100}, "data": {"image_size": 32, "split_seed": 0},
             "trainer": {"accelerator": "cpu", "enable_progress_bar": False, "limit_train_batches": 2, "num_sanity_val_steps": 0}}
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    assert main(["run", str(tmp_path / "suite.yaml"), "--out", str(tmp_path / "runs"), "--leaderboard", str(tmp_path / "lb.md"),
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    result = read_results(tmp_path / "runs/results")[0][0]
    assert result["selection"] == {"checkpoint": "leave-one-source-out-validation", "val_source": "site1"}  # the first training source
    assert result["held_out"]["per_source"]["site1"] == {"val": result["dataset"]["counts"]["val"]["images"]}  # validated on it whole
    assert select([result], "leave-one-source-out-validation") and not select([result], "validation")
    assert "Model selection: leave-one-source-out-validation." in (tmp_path / "lb.md").read_text()
