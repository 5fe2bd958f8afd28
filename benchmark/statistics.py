"""Numbers a reviewer can trust (issue 9): 95% bootstrap confidence intervals that resample patients, paired
method comparisons on the same test images (bootstrap, and DeLong for AUROC), and calibration bins.

The bootstrap is scipy.stats.bootstrap with one sample per stratum: each sample holds the patients of one stratum
(single-label: the patient's most frequent class, ties to the lowest index; multi-label: whether the patient has any
positive finding), and scipy resamples each sample independently, which is stratified resampling that keeps every
stratum's patient count. The statistic turns the drawn patients into image weights (all images of a patient get the
number of times it was drawn) and computes every metric at once (benchmark/weighted_metrics.py). Several seeds'
scores of the same images: each seed's metric on the same resample, averaged, so the point estimate is the
leaderboard's mean over seeds.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from scipy import stats
from torchmetrics.functional.classification import multiclass_calibration_error

from benchmark.weighted_metrics import WeightedMetrics, metric_names, probabilities
from lightning_modules.metrics import ECE_BINS
from registry import closest

DEFAULT_RESAMPLES = 2000
METHODS = ("percentile", "basic", "BCa")
_WEIGHT_CELLS_PER_BATCH = 4_000_000  # resamples x images held at once: memory stays ~100 MB on large test sets


def _seed_stack(scores, n: int, n_classes: int, *, multilabel: bool, what: str = "scores") -> list[np.ndarray]:
    """One (n, C) probability array per seed; a single array is one seed."""
    arrays = list(scores) if isinstance(scores, (list, tuple)) else [scores]
    if not arrays:
        raise ValueError(f"{what}: an empty list of seeds' score arrays")
    out = []
    for i, array in enumerate(arrays):
        array = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
        if array.shape != (n, n_classes):
            raise ValueError(f"{what}[{i}]: shape {array.shape}, expected (n_images={n}, n_classes={n_classes}) like the labels and class names")
        if not np.isfinite(array).all():
            raise ValueError(f"{what}[{i}]: scores contain NaN or infinite values")
        out.append(probabilities(array, multilabel=multilabel))
    return out


def _labels(labels, n_classes: int, *, multilabel: bool) -> np.ndarray:
    labels = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    labels = labels.astype(np.int64)
    if multilabel:
        if labels.ndim != 2 or labels.shape[1] != n_classes or not np.isin(labels, (-1, 0, 1)).all():
            raise ValueError(f"multi-label labels must be an (n_images, {n_classes}) array of 0, 1 and -1 (unknown); got shape {labels.shape}")
    elif labels.ndim != 1 or labels.min(initial=0) < 0 or labels.max(initial=0) >= n_classes:
        raise ValueError(f"single-label labels must be an (n_images,) array of class indices 0..{n_classes - 1}; got shape {labels.shape}")
    return labels


class _Design:
    """The test images' patients and strata: ``weights(patient_draws)`` -> per-image weights."""

    def __init__(self, labels: np.ndarray, patients, n_classes: int, *, multilabel: bool):
        if isinstance(patients, torch.Tensor):
            patients = patients.detach().cpu().numpy()
        elif isinstance(patients, (list, tuple)):  # any hashable ids, tuples included, each kept whole
            patients = pd.Series(list(patients), dtype=object).to_numpy()
        if len(patients) != len(labels):
            raise ValueError(f"patients: {len(patients)} ids for {len(labels)} images")
        try:  # sorted ids: the resamples do not depend on the order of the images
            codes, uniques = pd.factorize(patients, sort=True)
        except TypeError:  # ids of mixed, unorderable kinds
            codes, uniques = pd.factorize(patients)
        if (codes < 0).any():
            raise ValueError("patients: missing patient ids (None/NaN); every test image needs its patient")
        self.image_patient, self.n_patients = codes, len(uniques)
        if multilabel:
            stratum = np.zeros(self.n_patients, dtype=np.int64)
            np.maximum.at(stratum, codes, (labels == 1).any(1).astype(np.int64))
        else:
            counts = np.zeros((self.n_patients, n_classes), dtype=np.int64)
            np.add.at(counts, (codes, labels), 1)
            stratum = counts.argmax(1)  # the most frequent class; argmax takes the lowest index on ties
        strata = [np.flatnonzero(stratum == s) for s in np.unique(stratum)]
        self.samples = [s for s in strata if len(s) >= 2]
        self.fixed = np.concatenate([s for s in strata if len(s) < 2] + [np.zeros(0, dtype=np.int64)])  # a 1-patient stratum is always redrawn whole
        if not self.samples:
            raise ValueError(f"the bootstrap needs a stratum with at least 2 patients; the test images have {self.n_patients} patient(s), none sharing a stratum")

    def weights(self, samples: Sequence[np.ndarray]) -> tuple[np.ndarray, tuple]:
        """scipy's resampled patient indices (each (..., n_k)) -> ((B, n_images) weights, leading shape)."""
        lead = np.shape(samples[0])[:-1]
        drawn = [np.asarray(s).reshape(-1, np.shape(s)[-1]) for s in samples]
        b = len(drawn[0])
        drawn = np.concatenate(drawn + [np.broadcast_to(self.fixed, (b, len(self.fixed)))], axis=1).astype(np.int64)
        offsets = (np.arange(b) * self.n_patients)[:, None]
        per_patient = np.bincount((drawn + offsets).ravel(), minlength=b * self.n_patients).reshape(b, self.n_patients)
        return per_patient[:, self.image_patient].astype(np.float64), lead


def _bootstrap(statistic, design: _Design, n_images: int, *, n_resamples: int, confidence: float, seed: int, method: str):
    """scipy.stats.bootstrap over the strata; ``statistic((B, n) weights) -> (M, B)``."""
    if method not in METHODS:
        raise ValueError(f"bootstrap method {method!r}: expected one of {list(METHODS)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence}: expected a level strictly between 0 and 1, e.g. 0.95")
    if int(n_resamples) < 2:
        raise ValueError(f"n_resamples {n_resamples}: expected at least 2 (default {DEFAULT_RESAMPLES})")

    def on_patients(*samples, axis=-1):
        weights, lead = design.weights(samples)
        values = statistic(weights)
        return values.reshape(values.shape[:1] + lead)

    batch = max(1, min(int(n_resamples), _WEIGHT_CELLS_PER_BATCH // max(n_images, 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)  # undefined bounds become None below
        return stats.bootstrap(design.samples, on_patients, n_resamples=int(n_resamples), batch=batch, vectorized=True,
                               paired=False, confidence_level=confidence, method=method, rng=np.random.default_rng(seed))


def _number(value) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _interval(low, high) -> list[float] | None:
    low, high = _number(low), _number(high)
    return None if low is None or high is None else [low, high]


def _point(engines: list[WeightedMetrics], n: int) -> np.ndarray:
    return np.mean([engine(np.ones((1, n))) for engine in engines], axis=0)[:, 0]


def bootstrap_metrics(scores, labels, patients, class_names: list[str], *, multilabel: bool = False,
                      n_resamples: int = DEFAULT_RESAMPLES, confidence: float = 0.95, seed: int = 0,
                      method: str = "percentile") -> dict:
    """Every metric of lightning_modules/metrics.py with its bootstrap CI, resampling patients within strata.
    ``scores``: (n, C), or a list of such arrays (seeds on the same images; each metric is averaged over seeds).
    ``labels``: (n,) class indices, or (n, C) of 0/1/-1 for multi-label. ``patients``: (n,) ids of any kind.
    Returns {"metrics": {name: value | None}, "ci": {name: [low, high] | None}, "bootstrap": {...settings...}}."""
    labels = _labels(labels, len(class_names), multilabel=multilabel)
    seeds = _seed_stack(scores, len(labels), len(class_names), multilabel=multilabel)
    design = _Design(labels, patients, len(class_names), multilabel=multilabel)
    engines = [WeightedMetrics(s, labels, class_names, multilabel=multilabel) for s in seeds]
    statistic = lambda weights: np.mean([engine(weights) for engine in engines], axis=0)
    result = _bootstrap(statistic, design, len(labels), n_resamples=n_resamples, confidence=confidence, seed=seed, method=method)
    point = _point(engines, len(labels))
    low, high = result.confidence_interval
    values, intervals = {}, {}
    for i, name in enumerate(engines[0].names):  # the logged metrics, then per-class AUROC and gain scores
        values[name] = _number(point[i])
        intervals[name] = None if values[name] is None else _interval(low[i], high[i])
    settings = {"n_resamples": int(n_resamples), "confidence": confidence, "seed": seed, "method": method, "unit": "patient",
                "stratified_by": "any_finding" if multilabel else "class", "n_patients": design.n_patients,
                "n_images": len(labels), "n_seeds": len(seeds)}
    return {"metrics": values, "ci": intervals, "bootstrap": settings}


def _metric_index(metric: str, names: list[str]) -> int:
    if metric not in names:
        guess = closest(metric, names)
        raise ValueError(f"unknown metric {metric!r}" + (f"; did you mean {guess!r}?" if guess else "") + f" Known: {names}")
    return names.index(metric)


def _delong_for(metric: str, seeds_a: list[np.ndarray], seeds_b: list[np.ndarray], labels: np.ndarray,
                class_names: list[str], *, multilabel: bool) -> dict | None:
    """DeLong's test where the metric is an AUROC of one positive set: "auroc/<class>" (one-vs-rest; multi-label:
    that finding's known images), and "auroc" of a binary single-label task (the mean of both classes' one-vs-rest
    AUROCs, i.e. of AUROC(s1) and AUROC(-s0) against class 1). Several seeds: their AUROCs averaged."""
    rows = slice(None)
    if metric.startswith("auroc/"):
        k = class_names.index(metric.split("/", 1)[1])
        if multilabel:
            rows = labels[:, k] != -1
            positive = labels[rows, k] == 1
        else:
            positive = labels == k
        vectors = lambda seeds: [s[rows, k] for s in seeds]
    elif metric == "auroc" and not multilabel and len(class_names) == 2:
        positive = labels == 1
        vectors = lambda seeds: [v for s in seeds for v in (s[:, 1], -s[:, 0])]
    else:
        return None
    if min(positive.sum(), (~positive).sum()) < 2:
        return None
    return delong_test(vectors(seeds_a), vectors(seeds_b), positive)


def paired_difference(scores_a, scores_b, labels, patients, class_names: list[str], metric: str, *, multilabel: bool = False,
                      n_resamples: int = DEFAULT_RESAMPLES, confidence: float = 0.95, seed: int = 0,
                      method: str = "percentile") -> dict:
    """Method A against method B on the same test images: metric(A) - metric(B) on the same resampled patients,
    its CI and a two-sided bootstrap p-value (2 * min(P(diff <= 0), P(diff >= 0)), at most 1); for an AUROC of one
    positive set also DeLong's test (which treats images as independent). A and B may each be a list of seeds."""
    labels = _labels(labels, len(class_names), multilabel=multilabel)
    seeds_a = _seed_stack(scores_a, len(labels), len(class_names), multilabel=multilabel, what="scores_a")
    seeds_b = _seed_stack(scores_b, len(labels), len(class_names), multilabel=multilabel, what="scores_b")
    design = _Design(labels, patients, len(class_names), multilabel=multilabel)
    engines_a = [WeightedMetrics(s, labels, class_names, multilabel=multilabel) for s in seeds_a]
    engines_b = [WeightedMetrics(s, labels, class_names, multilabel=multilabel) for s in seeds_b]
    i = _metric_index(metric, engines_a[0].names)
    a, b = _point(engines_a, len(labels))[i], _point(engines_b, len(labels))[i]
    if not (np.isfinite(a) and np.isfinite(b)):
        raise ValueError(f"{metric} is undefined on these test images (e.g. a class without positive or negative images)")

    def difference(weights):
        mean = lambda engines: np.mean([engine(weights)[i] for engine in engines], axis=0)
        return (mean(engines_a) - mean(engines_b))[None]

    result = _bootstrap(difference, design, len(labels), n_resamples=n_resamples, confidence=confidence, seed=seed, method=method)
    draws = result.bootstrap_distribution[0]
    draws = draws[np.isfinite(draws)]
    p_value = min(1.0, 2 * min(np.mean(draws <= 0), np.mean(draws >= 0))) if len(draws) else None
    return {"metric": metric, "a": float(a), "b": float(b), "difference": float(a - b),
            "ci": _interval(result.confidence_interval.low[0], result.confidence_interval.high[0]),
            "p_value": _number(p_value), "n_resamples": int(n_resamples), "confidence": confidence, "seed": seed,
            "method": method, "unit": "patient", "n_patients": design.n_patients, "n_images": len(labels),
            "delong": _delong_for(metric, seeds_a, seeds_b, labels, class_names, multilabel=multilabel)}


def delong_test(scores_a, scores_b, positive) -> dict:
    """DeLong, DeLong & Clarke-Pearson (1988) test of two correlated AUROCs on the same images, with Sun & Xu's
    (2014) midrank algorithm. ``scores_a``/``scores_b``: (n,) scores, or a list of (n,) arrays whose AUROCs are
    averaged (seeds); ``positive``: (n,) bool. Returns {"auroc_a", "auroc_b", "difference", "se", "z", "p_value"}."""
    a = np.atleast_2d(np.asarray(scores_a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(scores_b, dtype=np.float64))
    positive = np.asarray(positive, dtype=bool)
    if a.shape[1:] != positive.shape or b.shape[1:] != positive.shape:
        raise ValueError(f"delong_test: scores of shapes {a.shape[1:]} and {b.shape[1:]} for {positive.shape[0]} labels")
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        raise ValueError(f"delong_test needs at least 2 positive and 2 negative images; got {m} and {n}")
    x = np.vstack([a, b])
    pos, neg = x[:, positive], x[:, ~positive]
    rank_pos, rank_neg = stats.rankdata(pos, axis=1), stats.rankdata(neg, axis=1)
    rank_all = stats.rankdata(np.hstack([pos, neg]), axis=1)
    aurocs = rank_all[:, :m].sum(1) / (m * n) - (m + 1) / (2 * n)
    v_pos = (rank_all[:, :m] - rank_pos) / n  # each positive: share of negatives scored below it (ties 1/2)
    v_neg = 1 - (rank_all[:, m:] - rank_neg) / m  # each negative: share of positives scored above it
    covariance = np.atleast_2d(np.cov(v_pos)) / m + np.atleast_2d(np.cov(v_neg)) / n
    contrast = np.r_[np.full(len(a), 1 / len(a)), np.full(len(b), -1 / len(b))]
    difference = float(contrast @ aurocs)
    se = float(np.sqrt(max(contrast @ covariance @ contrast, 0.0)))
    if se > 0:
        z = difference / se
    else:
        z = 0.0 if difference == 0 else float(np.sign(difference) * np.inf)
    return {"auroc_a": float(aurocs[: len(a)].mean()), "auroc_b": float(aurocs[len(a):].mean()), "difference": difference,
            "se": se, "z": float(z), "p_value": float(2 * stats.norm.sf(abs(z)))}


def confidence_bins(confidence: np.ndarray, correct: np.ndarray, *, n_bins: int = ECE_BINS) -> dict[str, np.ndarray | float]:
    """A reliability diagram's bins of any (confidence, correct) pairs (top-label confidence, or every finding's
    probability against whether it is present): equal-width bins on [0, 1] (a confidence of 1 falls in the last),
    count, accuracy and mean confidence per bin (NaN where empty), and ECE = sum over bins of |accuracy -
    confidence| weighted by the bin's share of the predictions."""
    confidence, correct = np.clip(np.asarray(confidence, dtype=np.float64), 0, 1), np.asarray(correct, dtype=np.float64)
    index = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(index, correct, minlength=n_bins) / count
        mean_confidence = np.bincount(index, confidence, minlength=n_bins) / count
    ece = float(np.nansum(np.abs(accuracy - mean_confidence) * count) / max(count.sum(), 1))
    return {"edges": np.linspace(0, 1, n_bins + 1), "count": count, "accuracy": accuracy, "confidence": mean_confidence, "ece": ece}



def reliability_bins(scores, labels, *, n_bins: int = ECE_BINS) -> dict:
    """Top-label reliability diagram of single-label scores: per equal-width confidence bin, the mean confidence,
    the accuracy and the image count (None where a bin is empty), and the ECE of torchmetrics'
    MulticlassCalibrationError(n_bins, norm="l1"). The ECE, like torchmetrics, gives confidences of exactly 1 a bin
    of their own; the diagram shows them in the last bin."""
    labels = _labels(labels, np.shape(scores)[1], multilabel=False)
    probs = _seed_stack(scores, len(labels), np.shape(scores)[1], multilabel=False)[0]
    bins = confidence_bins(probs.max(1), probs.argmax(1) == labels, n_bins=n_bins)
    listed = lambda values: [None if np.isnan(v) else float(v) for v in values]
    ece = multiclass_calibration_error(torch.as_tensor(probs), torch.as_tensor(labels), probs.shape[1], n_bins=n_bins, norm="l1")
    return {"bin_edges": bins["edges"].tolist(), "confidence": listed(bins["confidence"]), "accuracy": listed(bins["accuracy"]),
            "count": bins["count"].tolist(), "ece": float(ece)}


def ci_text(value, ci) -> str:
    """"0.910 [0.880, 0.930]"; "n/a" for an undefined value; the value alone without an interval."""
    if value is None:
        return "n/a"
    return f"{value:.3f}" if ci is None else f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def p_text(value: float | None, resamples: int | None = None) -> str:
    """A p-value as text; a bootstrap p of 0 only says p < 1 / resamples."""
    if value is None:
        return ""
    if resamples and value * resamples < 1:
        return f"p < {1 / resamples:.0e}"
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"
