"""The suite's metrics (lightning_modules/metrics.py) as weighted statistics of fixed test predictions, vectorized
over many weightings at once. A bootstrap resample is a weighting (how often each image's patient was drawn), so the
metrics of thousands of resamples come from a few matrix products; at unit weights they equal torchmetrics' values.

Conventions follow torchmetrics: a ratio with a zero denominator is 0 (PPV of a class never predicted), macro
averages of single-label scores skip classes with no true and no predicted image, logits (scores outside [0, 1]) are
turned into probabilities first. One deliberate difference: an AUROC with no positive or no negative image is
undefined (NaN, reported as None), where torchmetrics returns 0; macro AUROC averages the defined classes.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse
from torchmetrics.utilities.compute import normalize_logits_if_needed

from lightning_modules.metrics import ECE_BINS

SINGLE_LABEL_PER_CLASS = ("sensitivity", "specificity", "ppv", "f1", "ppcr")


def metric_names(class_names: list[str], *, multilabel: bool) -> list[str]:
    """The names lightning_modules/metrics.py reports, in a fixed order."""
    if multilabel:
        return ["auroc", "f1", "ece"] + [f"auroc/{c}" for c in class_names]
    return ["accuracy", "balanced_accuracy", "f1", "auroc", "ece"] + [f"{key}/{c}" for key in SINGLE_LABEL_PER_CLASS for c in class_names]


def probabilities(scores: np.ndarray, *, multilabel: bool) -> np.ndarray:
    """float32 like the suite's evaluation, with torchmetrics' rule: any value outside [0, 1] means logits."""
    tensor = torch.as_tensor(np.asarray(scores, dtype=np.float32))
    return normalize_logits_if_needed(tensor, "sigmoid" if multilabel else "softmax").numpy()


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1), 0.0)


class _AUROC:
    """One-vs-rest AUROC as a weighted Mann-Whitney statistic (ties count 1/2). Scores are sorted once; per
    weighting, a cumulative sum over the negatives in score order gives, for each positive, the negative weight
    below its tied group plus half of the negative weight inside it."""

    def __init__(self, scores: np.ndarray, positive: np.ndarray, rows: np.ndarray):
        order = rows[np.argsort(scores[rows], kind="stable")]
        ranked, is_positive = scores[order], positive[order]
        group = np.cumsum(np.r_[True, ranked[1:] != ranked[:-1]]) - 1
        negatives_before = np.r_[0, np.cumsum(~is_positive)]  # negatives among the first i ranked images
        first = np.searchsorted(group, group, side="left")  # each image's group: where it starts and ends
        last = np.searchsorted(group, group, side="right")
        self.positives, self.negatives = order[is_positive], order[~is_positive]
        self.below = negatives_before[first][is_positive]  # negatives strictly below each positive
        self.through = negatives_before[last][is_positive]  # ... and with its ties

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        cumulative = np.zeros((len(weights), len(self.negatives) + 1))
        np.cumsum(weights[:, self.negatives], axis=1, out=cumulative[:, 1:])
        positive = weights[:, self.positives]
        num = 0.5 * (positive * (cumulative[:, self.below] + cumulative[:, self.through])).sum(1)
        den = positive.sum(1) * cumulative[:, -1]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _sparse(indicator: np.ndarray) -> sparse.csr_array:
    """Products with (mostly) one-hot matrices go through scipy.sparse: O(weights x non-zeros), and no
    multi-threaded BLAS call, which stalls on a busy machine for these thin matrices."""
    return sparse.csr_array(indicator)


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean of the defined values; NaN where none is (without numpy's empty-slice warning)."""
    defined = ~np.isnan(values)
    count = defined.sum(axis)
    return np.where(count > 0, np.where(defined, values, 0).sum(axis) / np.maximum(count, 1), np.nan)


class _ECE:
    """Expected calibration error (L1) of K calibration problems (top-label: K = 1; multi-label: one per finding):
    per finding, sum over bins of |summed correctness - summed confidence| / total weight. Bins as torchmetrics:
    bucketize(right=True) against float32 edges, so a confidence of exactly 1 gets a bin of its own."""

    def __init__(self, confidence: np.ndarray, correct: np.ndarray, known: np.ndarray, n_bins: int):
        edges = torch.linspace(0, 1, n_bins + 1).numpy()
        slot = np.searchsorted(edges, confidence.astype(np.float32), side="right") - 1 + (n_bins + 1) * np.arange(confidence.shape[1])
        used, column = np.unique(slot[known > 0], return_inverse=True)  # only (finding, bin) slots that hold images
        n, k = confidence.shape
        rows, cols = np.nonzero(known > 0)
        gaps = np.zeros((n, len(used)))
        np.add.at(gaps, (rows, column), correct[rows, cols] - confidence[rows, cols])
        self.columns = _sparse(np.hstack([gaps, known]))  # weights @ columns: per slot summed gap, per finding total weight
        self.finding_of_slot = _sparse(np.eye(k)[used // (n_bins + 1)])

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        sums = weights @ self.columns
        gap, total = sums[:, : self.finding_of_slot.shape[0]], sums[:, self.finding_of_slot.shape[0]:]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(total > 0, (np.abs(gap) @ self.finding_of_slot) / np.where(total > 0, total, 1), np.nan)


class WeightedMetrics:
    """``metrics(weights)``: (B, n) non-negative image weights -> (len(names), B) metric values, NaN = undefined.
    ``scores`` are one method's (n, C) test scores, already through ``probabilities``."""

    def __init__(self, scores: np.ndarray, labels: np.ndarray, class_names: list[str], *, multilabel: bool):
        self.class_names, self.multilabel = list(class_names), multilabel
        # beyond the logged metrics: per-class AUROC and the weighted-CE paper's score (bACC + PPCR) / 2 of a class
        # (section VI.C), with PPCR as defined and as Table II tabulates it (the one-vs-rest accuracy)
        extra = [f"{key}/{c}" for key in ("auroc", "gain_score", "gain_score_tabulated") for c in class_names]
        self.names = metric_names(class_names, multilabel=multilabel) + ([] if multilabel else extra)
        n, c = scores.shape
        rows = np.arange(n)
        if multilabel:
            known = (labels != -1).astype(np.float64)
            predicted = scores > 0.5  # MultilabelF1Score's threshold: strictly above
            self.tp_fp_fn = _sparse(np.concatenate([predicted & (labels == 1), predicted & (labels == 0), ~predicted & (labels == 1)], axis=1).astype(np.float64))
            self.aurocs = [_AUROC(scores[:, k].astype(np.float64), labels[:, k] == 1, rows[labels[:, k] != -1]) for k in range(c)]
            self.ece = _ECE(scores.astype(np.float64), (labels == 1).astype(np.float64), known, ECE_BINS)
        else:
            predicted = scores.argmax(1)
            self.cells = _sparse(np.eye(c * c)[labels * c + predicted])  # weights @ cells = the weighted confusion matrix
            self.aurocs = [_AUROC(scores[:, k].astype(np.float64), labels == k, rows) for k in range(c)]
            correct = (predicted == labels).astype(np.float64)[:, None]
            self.ece = _ECE(scores.max(1, keepdims=True).astype(np.float64), correct, np.ones((n, 1)), ECE_BINS)

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        weights = np.asarray(weights, dtype=np.float64)
        auroc = np.stack([a(weights) for a in self.aurocs])  # (C, B)
        macro_auroc = _nanmean(auroc, axis=0)
        mean_ece = _nanmean(self.ece(weights), axis=1)  # over findings (one column if single-label)
        if self.multilabel:
            tp, fp, fn = np.split(weights @ self.tp_fp_fn, 3, axis=1)
            f1 = _ratio(2 * tp, 2 * tp + fp + fn).mean(1)
            return np.vstack([macro_auroc, f1, mean_ece, auroc])
        c = len(self.class_names)
        matrix = (weights @ self.cells).reshape(-1, c, c)  # rows = truth
        tp = np.diagonal(matrix, axis1=1, axis2=2)
        fn, fp = matrix.sum(2) - tp, matrix.sum(1) - tp
        total = matrix.sum((1, 2))
        tn = total[:, None] - tp - fp - fn
        active = (tp + fp + fn) != 0  # torchmetrics' macro average leaves these classes out
        macro = lambda score: _ratio((score * active).sum(1), active.sum(1))
        recall, f1 = _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)
        specificity, ppcr = _ratio(tn, tn + fp), (tp + fp) / np.maximum(total, 1)[:, None]
        per_class = [recall, specificity, _ratio(tp, tp + fp), f1, ppcr]
        headline = [_ratio(tp.sum(1), total), macro(recall), macro(f1), macro_auroc, mean_ece]
        bacc = (recall + specificity) / 2
        gain_scores = [(bacc + ppcr) / 2, (bacc + (tp + tn) / np.maximum(total, 1)[:, None]) / 2]
        return np.vstack([np.stack(headline)] + [x.T for x in per_class] + [auroc] + [x.T for x in gain_scores])
