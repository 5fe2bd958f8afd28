"""The suite's metrics agree with scikit-learn on fixed arrays."""

import numpy as np
import pytest
import torch
from sklearn import metrics as sk

from benchmark.evaluate import deduplicate, evaluate

CLASSES = ["COVID-19", "normal", "pneumonia"]


@pytest.fixture
def predictions():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    logits = rng.normal(size=(200, 3)) + 1.5 * np.eye(3)[labels]
    scores = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return torch.tensor(scores, dtype=torch.float32), torch.tensor(labels)


def test_headline_metrics_match_sklearn(predictions):
    scores, labels = predictions
    y, p, s = labels.numpy(), scores.argmax(1).numpy(), scores.numpy()
    got = evaluate(scores, labels, CLASSES)["metrics"]
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, p), abs=1e-6)
    assert got["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(y, p), abs=1e-6)
    assert got["f1"] == pytest.approx(sk.f1_score(y, p, average="macro"), abs=1e-6)
    assert got["auroc"] == pytest.approx(sk.roc_auc_score(y, s, multi_class="ovr", average="macro"), abs=1e-4)


def test_per_class_metrics_match_sklearn(predictions):
    scores, labels = predictions
    y, p = labels.numpy(), scores.argmax(1).numpy()
    got = evaluate(scores, labels, CLASSES)
    recall = sk.recall_score(y, p, average=None)
    precision = sk.precision_score(y, p, average=None)
    matrix = sk.confusion_matrix(y, p)
    assert got["confusion_matrix"] == matrix.tolist()
    for i, name in enumerate(CLASSES):
        tn = matrix.sum() - matrix[i].sum() - matrix[:, i].sum() + matrix[i, i]
        specificity = tn / (matrix.sum() - matrix[i].sum())
        assert got["metrics"][f"sensitivity/{name}"] == pytest.approx(recall[i], abs=1e-6)
        assert got["metrics"][f"ppv/{name}"] == pytest.approx(precision[i], abs=1e-6)
        assert got["metrics"][f"specificity/{name}"] == pytest.approx(specificity, abs=1e-6)


def test_deduplicate_keeps_each_test_image_once():
    index = torch.tensor([2, 0, 1, 2, 0])
    scores = torch.arange(10, dtype=torch.float32).reshape(5, 2)
    labels = torch.tensor([1, 0, 1, 1, 0])
    i, s, l = deduplicate(index, scores, labels)
    assert i.tolist() == [0, 1, 2]
    assert s[:, 0].tolist() == [2.0, 4.0, 0.0]
