"""The claims table: verdicts on fabricated result files whose test predictions are known."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd
import pytest

from benchmark.claims import claim_rows, claims_section, load_claims
from benchmark.config import ConfigError

CLASSES = ["COVID-19", "normal", "pneumonia"]
N_IMAGES = 240


def _predictions(path, correct: np.ndarray, labels: np.ndarray, seed: int) -> None:
    """Scores that put the true class on top where ``correct``, a wrong class elsewhere."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0.0, 0.2, size=(len(labels), len(CLASSES)))
    wrong = (labels + 1) % len(CLASSES)
    top = np.where(correct, labels, wrong)
    scores[np.arange(len(labels)), top] += 0.7
    scores /= scores.sum(axis=1, keepdims=True)
    frame = pd.DataFrame({"image": [f"img{i:04d}.png" for i in range(len(labels))], "patient_id": [f"p{i // 2}" for i in range(len(labels))],
                          "label": [CLASSES[k] for k in labels]})
    for column, name in enumerate(CLASSES):
        frame[f"score_{name}"] = scores[:, column]
    frame.sample(frac=1.0, random_state=seed).to_csv(path, index=False)  # row order must not matter


def _result(store, method_id: str, accuracy: float, *, seed: int = 0, profile: str = "paper", synthetic: bool = False) -> dict:
    labels = np.arange(N_IMAGES) // 2 % len(CLASSES)  # patients of two images, one class each
    rng = np.random.default_rng(zlib.crc32(method_id.encode()) + seed)
    correct = np.repeat(rng.random(N_IMAGES // 2) < accuracy, 2)  # a patient's two images right or wrong together
    predictions = store / "predictions" / f"{method_id}-{seed}.csv"
    predictions.parent.mkdir(parents=True, exist_ok=True)
    _predictions(predictions, correct, labels, seed)
    result = {
        "run_id": f"radiography/{method_id}/seed{seed}", "seed": seed, "written_at": "2026-11-30T00:00:00+00:00",
        "method": {"id": method_id, "profile": profile}, "config_fingerprint": "f" * 16,
        "dataset": {"name": "radiography", "image_size": 64, "split_sha256": "a" * 64, "classes": CLASSES, "synthetic": synthetic},
        "metrics": {"accuracy": float(correct.mean())}, "predictions_file": str(predictions),
    }
    (store / "results").mkdir(parents=True, exist_ok=True)
    (store / "results" / f"{method_id}-{seed}.json").write_text(json.dumps(result))
    return result


def _claim(a="siamese", b="single_net", metric="accuracy"):
    return {"paper": "Siamese", "claim": f"{a} > {b}", "source": "Table 3", "compare": {"a": a, "b": b, "metric": metric},
            "threshold": None, "paper_numbers": {"a": 0.87, "b": 0.81}}


def test_verdicts_follow_the_paired_difference(tmp_path):
    better, worse = _result(tmp_path, "siamese", 0.95), _result(tmp_path, "single_net", 0.55)
    supported = claim_rows([_claim()], [better, worse], n_resamples=400)
    assert [row["verdict"] for row in supported] == ["supported"]
    assert "siamese 0.87; single_net 0.81" == supported[0]["paper_numbers"]
    contradicted = claim_rows([_claim("single_net", "siamese")], [better, worse], n_resamples=400)
    assert contradicted[0]["verdict"] == "contradicted"
    close = _result(tmp_path, "twin", 0.95, seed=1)
    close["method"]["id"] = "single_net"
    inconclusive = claim_rows([_claim()], [better, close], n_resamples=400)
    assert inconclusive[0]["verdict"].startswith("inconclusive")


def test_missing_methods_and_quick_profiles_are_not_evidence(tmp_path):
    rows = claim_rows([_claim("transfer_chestxray14", "transfer_imagenet", "auroc/COVID-19")], [], n_resamples=200)
    assert rows[0]["verdict"].startswith("not run")
    quick = [_result(tmp_path, "siamese_quick", 0.95, profile="quick"), _result(tmp_path, "single_net_quick", 0.5, profile="quick")]
    row = claim_rows([_claim()], quick, n_resamples=200)[0]
    assert row["verdict"] == "not evidence (quick profile); would read: supported"
    synthetic = [_result(tmp_path, "siamese", 0.95, synthetic=True), _result(tmp_path, "single_net", 0.5, synthetic=True)]
    assert claim_rows([_claim()], synthetic, n_resamples=200)[0]["verdict"].startswith("not evidence (synthetic phantoms)")


def test_threshold_claim_and_the_markdown_section(tmp_path):
    runs = [_result(tmp_path, "cae_lstm", 0.6)]
    claim = {"paper": "CAE", "claim": "accuracy >= 0.997", "source": "Table 4", "compare": None,
             "threshold": {"a": "cae_lstm", "metric": "accuracy", "value": 0.997}, "paper_numbers": {"a": 0.997, "b": None}}
    row = claim_rows([claim], runs, n_resamples=300)[0]
    assert row["verdict"] == "contradicted" and row["paper_numbers"] == "cae_lstm 0.997"
    lines = claims_section([claim], runs, source="runs/results", n_resamples=300)
    assert any("| CAE | accuracy >= 0.997 |" in line and "contradicted" in line for line in lines)


def test_the_shipped_claims_file_is_valid_and_a_typo_is_named(tmp_path):
    claims = load_claims()
    assert {c["compare"]["a"] for c in claims if c["compare"]} >= {"siamese", "wce_resnet50_beta075", "wce_acnn_beta075"}
    bad = tmp_path / "claims.yaml"
    bad.write_text("claims:\n  - paper: x\n    claim: y\n    compare: {a: m, b: n, metrc: accuracy}\n")
    with pytest.raises(ConfigError, match="metrc"):
        load_claims(bad)


def test_gain_scores_at_unit_weights_equal_the_gain_table():
    from benchmark.evaluate import evaluate
    from benchmark.leaderboard import gain_score, one_vs_rest_accuracy
    from benchmark.statistics import bootstrap_metrics
    import torch

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 60)
    scores = rng.dirichlet([1, 1], 60)
    classes = ["COVID-19", "non-COVID"]
    summary = bootstrap_metrics(scores, labels, np.arange(60), classes, n_resamples=200)["metrics"]
    internal = evaluate(torch.tensor(scores), torch.tensor(labels), classes)
    accuracy = one_vs_rest_accuracy(internal["confusion_matrix"], 0)
    assert summary["gain_score/COVID-19"] == pytest.approx(gain_score(internal["metrics"], "COVID-19")["score"])
    assert summary["gain_score_tabulated/COVID-19"] == pytest.approx(gain_score(internal["metrics"], "COVID-19", accuracy=accuracy, ppcr="as_tabulated")["score"])


def test_paired_table_tests_every_method_against_the_reference(tmp_path):
    from benchmark.paired_table import paired_section

    rows = {"single_net": [_result(tmp_path, "single_net", 0.5)], "siamese": [_result(tmp_path, "siamese", 0.95)],
            "twin": [_result(tmp_path, "twin", 0.5, seed=1)]}
    lines = paired_section(rows, ["absent", "single_net"])
    assert lines[0].startswith("Paired against `single_net`")
    siamese = next(line for line in lines if line.startswith("| siamese |"))
    difference = float(siamese.split("|")[2].split()[0])
    assert difference > 0.3 and "p < 5e-04" in siamese  # 0.95 against 0.5: clearly better
    assert not any(line.startswith("| single_net |") for line in lines)  # the reference is not compared with itself
    assert paired_section(rows, ["absent"]) == []
