"""Model selection (benchmark/selection.py) on hand-written result files: validation rules never read test data."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pytest

from benchmark.results import read_results, result_path, write_result
from benchmark.selection import RULES, candidates, select, selected_results, task_key, validation_view

CLASSES = ["COVID-19", "normal", "pneumonia"]
N_IMAGES = 120


def _predictions(path, accuracy: float, seed: int) -> tuple[float, float]:
    """A predictions CSV whose patients (two images each) are right with probability ``accuracy``; (accuracy, bACC)."""
    labels = np.arange(N_IMAGES) // 2 % len(CLASSES)
    rng = np.random.default_rng(zlib.crc32(str(path).encode()))
    correct = np.repeat(rng.random(N_IMAGES // 2) < accuracy, 2)
    scores = rng.uniform(0.0, 0.2, size=(N_IMAGES, len(CLASSES)))
    scores[np.arange(N_IMAGES), np.where(correct, labels, (labels + 1) % len(CLASSES))] += 0.7
    frame = pd.DataFrame({"image": [f"img{i:04d}.png" for i in range(N_IMAGES)], "patient_id": [f"p{i // 2}" for i in range(N_IMAGES)],
                          "label": [CLASSES[k] for k in labels]})
    for column, name in enumerate(CLASSES):
        frame[f"score_{name}"] = scores[:, column]
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    bacc = float(np.mean([correct[labels == k].mean() for k in range(len(CLASSES))]))
    return float(correct.mean()), bacc


def fair_result(store, method: str, draw: int, seed: int, val: float, accuracy: float, *, draws: int = 3, trials: int = 2,
                held_out: str | None = None, in_source: float | None = None, checkpoint: str = "validation", select: str = "validation",
                tuned: bool = True, monitor: tuple = ("val/balanced_accuracy", "max")) -> dict:
    """Write one result JSON (and its predictions CSV) the way the tuning runner does; return it as read back."""
    fold = f"-{held_out}" if held_out else ""
    run_id = f"radiography{fold}/{method}/draw{draw}/seed{seed}"
    predictions = store / "predictions" / f"{run_id}.csv"
    acc, bacc = _predictions(predictions, accuracy, seed)
    metrics = {"accuracy": acc, "balanced_accuracy": bacc}
    result = {
        "run_id": run_id, "seed": seed, "written_at": "2026-11-30T00:00:00+00:00", "method": {"id": method, "profile": "paper"},
        "config_fingerprint": f"{method}{draw:02d}".ljust(16, "0")[:16], "config": {"draw": draw},
        "dataset": {"name": "radiography", "image_size": 64, "split_sha256": (held_out or "a").ljust(64, "0"), "classes": CLASSES,
                    "counts": {"test": {"images": N_IMAGES, "patients": N_IMAGES // 2}}, "split_file": "splits/radiography.csv", "split_seed": 0},
        "metrics": metrics, "ci": {k: [v - 0.05, v + 0.05] for k, v in metrics.items()}, "predictions_file": str(predictions),
        "parameter_count": 1000, "start_weights": "scratch", "bootstrap": {"n_resamples": 200, "seed": 0},
        "best_validation_score": val, "monitor": {"metric": monitor[0], "mode": monitor[1]},
        "selection": {"checkpoint": checkpoint, "val_source": "cohen" if checkpoint != "validation" else None},
    }
    if tuned:
        result["tuning"] = {"draw": draw, "draws": draws, "trials": trials, "seed": 0, "values": {"optimizer.lr": 10.0 ** -(3 + draw)}, "select": select}
    if held_out:
        score = in_source if in_source is not None else bacc
        result["held_out"] = {"field": "component", "test": [held_out], "validation": "random", "val_source": None,
                              "in_source": {"metrics": {"accuracy": score, "balanced_accuracy": score},
                                            "ci": {"balanced_accuracy": [score - 0.05, score + 0.05]}, "n_images": 120}}
    write_result(result_path(store / "results", run_id), result)
    return result


def tuned_store(store) -> list[dict]:
    """Method a: draw 1 has the best mean validation score (draw 0 the best single trial), draw 2 the best test score.
    Method b: untuned, two seeds."""
    for seed, (val0, val1, val2) in enumerate([(0.95, 0.85, 0.70), (0.55, 0.85, 0.72)]):
        fair_result(store, "a", 0, seed, val0, 0.55)
        fair_result(store, "a", 1, seed, val1, 0.70)
        fair_result(store, "a", 2, seed, val2, 0.92)
        fair_result(store, "b", 0, seed, 0.80, 0.65, tuned=False)
    return read_results(store / "results")[0]


def _chosen(results, rule):
    return {key[1]: draw for key, draw in select(results, rule).items()}


def test_validation_picks_the_best_mean_draw_and_oracle_the_best_test(tmp_path):
    results = tuned_store(tmp_path)
    assert set(candidates(results)[(task_key(results[0]), "a")]) == {0, 1, 2}
    assert _chosen(results, "validation") == {"a": 1}
    assert _chosen(results, "oracle") == {"a": 2}
    assert _chosen(results, "leave-one-source-out-validation") == {}  # no run validated on a held-out source
    kept = selected_results(results, "validation")
    assert sorted((r["method"]["id"], r["seed"]) for r in kept) == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert {r["tuning"]["draw"] for r in kept if r.get("tuning")} == {1}


def test_validation_view_holds_no_test_data(tmp_path):
    view = validation_view(tuned_store(tmp_path)[0])
    assert set(view) == {"draw", "seed", "best_validation_score", "monitor", "selection"}
    with pytest.raises(TypeError):
        view["metrics"] = {}


def test_test_data_changes_leave_validation_selection_unchanged(tmp_path):
    results = tuned_store(tmp_path)
    before = _chosen(results, "validation")
    for result in results:  # every test number and label rewritten: draw 1 now wins the test set
        good = result.get("tuning", {}).get("draw") == 1
        result["metrics"] = {k: (0.99 if good else 0.10) for k in result["metrics"]}
        result["ci"] = {k: [0.0, 1.0] for k in result["ci"]}
        frame = pd.read_csv(result["predictions_file"])
        frame["label"] = frame["label"].sample(frac=1.0, random_state=1).to_numpy()
        frame.to_csv(result["predictions_file"], index=False)
        write_result(result["_file"], {k: v for k, v in result.items() if k not in ("_file", "schema_version", "written_at")})
    changed = read_results(tmp_path / "results")[0]
    assert _chosen(changed, "validation") == before == {"a": 1}
    assert _chosen(changed, "oracle") == {"a": 1}  # was 2: the oracle reads the test set


def test_ties_go_to_the_lower_draw_and_the_monitor_mode_is_respected(tmp_path):
    for draw, val in ((0, 0.3), (1, 0.2), (2, 0.2)):
        fair_result(tmp_path, "loss", draw, 0, val, 0.6, monitor=("val/loss", "min"))
    for draw in (0, 1):
        fair_result(tmp_path, "tie", draw, 0, 0.5, 0.6)
    results = read_results(tmp_path / "results")[0]
    assert _chosen(results, "validation") == {"loss": 1, "tie": 0}


def test_a_rule_applies_only_to_runs_of_its_checkpoint(tmp_path):
    for draw, val in ((0, 0.6), (1, 0.8)):
        fair_result(tmp_path, "a", draw, 0, val, 0.6, held_out="cohen", checkpoint="leave-one-source-out-validation",
                    select="leave-one-source-out-validation")
        fair_result(tmp_path, "a", draw, 0, val, 0.6, held_out="actualmed", checkpoint="leave-one-source-out-validation")
    results = read_results(tmp_path / "results")[0]
    assert select(results, "validation") == {}
    chosen = select(results, "leave-one-source-out-validation")
    assert sorted(key[0][4] for key in chosen) == [("actualmed",), ("cohen",)] and set(chosen.values()) == {1}
    assert all("0000" not in str(key[0]) for key in chosen)  # the task key holds no split hash
    assert selected_results(results, "validation") == [] and len(RULES) == 3
    with pytest.raises(ValueError, match="unknown selection rule"):
        select(results, "best")


def test_a_recorded_oracle_rule_never_chooses_the_leaderboards_rows(tmp_path):
    from benchmark.selection import rule_of, selected_by_recorded_rule

    for draw, val, accuracy in ((0, 0.9, 0.5), (1, 0.6, 0.95)):
        fair_result(tmp_path, "a", draw, 0, val, accuracy, select="oracle")
    results = read_results(tmp_path / "results")[0]
    assert {rule_of(r) for r in results} == {"validation"}
    assert [r["tuning"]["draw"] for r in selected_by_recorded_rule(results)] == [0]
