"""Bootstrap CIs over patients, paired comparisons, DeLong and calibration (benchmark/statistics.py, issue 9)."""

import numpy as np
import pytest
import torch
from scipy.stats import norm

import benchmark.statistics as statistics
from benchmark.statistics import bootstrap_metrics, ci_text, delong_test, paired_difference, reliability_bins
from lightning_modules.metrics import classification_metrics

CLASSES = ["COVID-19", "normal", "pneumonia"]
FINDINGS = ["Atelectasis", "Effusion", "Mass", "Nodule"]


def torchmetrics_values(scores, labels, class_names, *, multilabel=False) -> dict:
    collection = classification_metrics(class_names, multilabel=multilabel, sync=False)
    collection.update(torch.as_tensor(scores, dtype=torch.float32), torch.as_tensor(labels).long())
    return {name: float(value) for name, value in collection.compute().items()}


def single_label_data(rng, n=300, n_patients=120, classes=3, signal=1.0):
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes)) + signal * np.eye(classes)[labels]
    return logits, labels, rng.integers(0, n_patients, n)


def multilabel_data(rng, n=300, n_patients=120):
    labels = rng.integers(-1, 2, (n, len(FINDINGS)))
    scores = np.clip(rng.random((n, len(FINDINGS))) * 0.6 + 0.35 * (labels == 1), 0, 1)
    return scores, labels, rng.integers(0, n_patients, n)


# ----- point estimates are the suite's torchmetrics values -----
@pytest.mark.parametrize("as_logits", [True, False])
def test_single_label_point_estimates_equal_torchmetrics(as_logits):
    logits, labels, patients = single_label_data(np.random.default_rng(1))
    scores = logits if as_logits else torch.softmax(torch.tensor(logits), 1).numpy()
    got = bootstrap_metrics(scores, labels, patients, CLASSES, n_resamples=20)
    want = torchmetrics_values(scores, labels, CLASSES)
    extra = {f"{key}/{c}" for key in ("auroc", "gain_score", "gain_score_tabulated") for c in CLASSES}  # beyond the logged ones
    assert set(got["metrics"]) == set(want) | extra and "ece" in want
    for name, value in want.items():
        assert got["metrics"][name] == pytest.approx(value, abs=1e-6), name
        low, high = got["ci"][name]
        assert low <= high


def test_multilabel_point_estimates_equal_torchmetrics_and_ignore_unknown():
    scores, labels, patients = multilabel_data(np.random.default_rng(2))
    got = bootstrap_metrics(scores, labels, patients, FINDINGS, multilabel=True, n_resamples=20)
    want = torchmetrics_values(scores, labels, FINDINGS, multilabel=True)
    assert set(got["metrics"]) == set(want) == {"auroc", "f1", "ece"} | {f"auroc/{f}" for f in FINDINGS}
    for name, value in want.items():
        assert got["metrics"][name] == pytest.approx(value, abs=1e-6), name
    assert got["bootstrap"]["stratified_by"] == "any_finding"
    # an unknown (-1) target takes no part: changing the score of unknown entries changes nothing
    moved = scores.copy()
    moved[labels == -1] = 1 - moved[labels == -1]
    assert bootstrap_metrics(moved, labels, patients, FINDINGS, multilabel=True, n_resamples=20) == got


def test_undefined_auroc_is_none_and_never_predicted_class_has_ppv_zero():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 60)  # no pneumonia in the test set
    scores = np.zeros((60, 3))
    scores[np.arange(60), labels] = 1.0  # perfect, pneumonia never predicted
    got = bootstrap_metrics(scores, labels, np.arange(60), CLASSES, n_resamples=50)
    assert got["metrics"]["ppv/pneumonia"] == 0.0 and got["metrics"]["sensitivity/pneumonia"] == 0.0
    assert got["metrics"]["accuracy"] == 1.0 and got["metrics"]["balanced_accuracy"] == 1.0  # torchmetrics skips it
    assert got["metrics"]["auroc"] == 1.0  # the mean over the classes where AUROC is defined
    assert got["ci"]["accuracy"] == [1.0, 1.0]


# ----- the resampling unit: patients, within class strata -----
def record_weights(monkeypatch) -> list:
    seen = []

    class Recording(statistics.WeightedMetrics):
        def __call__(self, weights):
            seen.append(np.array(weights))
            return super().__call__(weights)

    monkeypatch.setattr(statistics, "WeightedMetrics", Recording)
    return seen


def test_a_resample_keeps_each_patients_images_together_and_each_strata_size(monkeypatch):
    rng = np.random.default_rng(4)
    patients = np.repeat([f"p{i}" for i in range(50)], rng.integers(1, 4, 50))  # 1 to 3 images each
    patient_class = rng.integers(0, 3, 50)
    labels = patient_class[[int(p[1:]) for p in patients]]
    labels[0] = (labels[0] + 1) % 3  # one patient with two classes: its stratum is its most frequent one
    logits = rng.normal(size=(len(labels), 3))
    seen = record_weights(monkeypatch)
    bootstrap_metrics(logits, labels, patients, CLASSES, n_resamples=200, seed=5)
    weights = np.concatenate([w for w in seen if len(w) > 1])
    assert len(weights) == 200
    first_image = {p: np.flatnonzero(patients == p)[0] for p in np.unique(patients)}
    for p, first in first_image.items():
        assert (weights[:, patients == p] == weights[:, [first]]).all(), f"patient {p}'s images were split"
    per_patient = weights[:, list(first_image.values())]  # times each patient was drawn
    assert (per_patient.sum(1) == 50).all()
    counts = np.zeros((50, 3), int)
    np.add.at(counts, (np.searchsorted(list(first_image), patients), labels), 1)
    stratum = counts.argmax(1)
    for s in np.unique(stratum):
        assert (per_patient[:, stratum == s].sum(1) == (stratum == s).sum()).all(), f"stratum {s} changed size"
    assert per_patient.std(0).min() > 0  # patients are actually resampled


def test_same_seed_same_intervals_other_seed_other_intervals():
    logits, labels, patients = single_label_data(np.random.default_rng(6))
    run = lambda seed: bootstrap_metrics(logits, labels, patients, CLASSES, n_resamples=200, seed=seed)
    first, again, other = run(1), run(1), run(2)
    assert first == again
    assert first["metrics"] == other["metrics"] and first["ci"] != other["ci"]
    assert first["bootstrap"] == {"n_resamples": 200, "confidence": 0.95, "seed": 1, "method": "percentile", "unit": "patient",
                                  "stratified_by": "class", "n_patients": len(np.unique(patients)), "n_images": 300, "n_seeds": 1}


def clustered_population(rng, *, n_negative=60, n_positive=40, d=2.0, patient_sd=1.0, image_sd=0.5):
    """Binary test sets whose patients have 1-3 images sharing a patient effect. Population values:
    accuracy = Phi(d / 2 / s), AUROC = Phi(d / (s * sqrt 2)), s^2 = patient_sd^2 + image_sd^2."""
    label = np.r_[np.zeros(n_negative, int), np.ones(n_positive, int)]
    size = rng.integers(1, 4, len(label))
    patients = np.repeat(np.arange(len(label)), size)
    effect = rng.normal(0, patient_sd, len(label))
    logit = (label - 0.5)[patients] * d + effect[patients] + rng.normal(0, image_sd, len(patients))
    p = 1 / (1 + np.exp(-logit))
    return np.stack([1 - p, p], 1), label[patients], patients


def test_ci_covers_the_population_value_at_about_the_nominal_rate():
    s = np.hypot(1.0, 0.5)
    truth = {"accuracy": norm.cdf(1 / s), "auroc": norm.cdf(2 / (s * np.sqrt(2)))}
    rng = np.random.default_rng(7)
    covered = {"patient": {m: [] for m in truth}, "image": {m: [] for m in truth}}
    for experiment in range(200):
        scores, labels, patients = clustered_population(rng)
        units = {"patient": patients, "image": np.arange(len(labels))} if experiment < 100 else {"patient": patients}
        for unit, ids in units.items():
            ci = bootstrap_metrics(scores, labels, ids, ["negative", "positive"], n_resamples=300, seed=experiment)["ci"]
            for m, value in truth.items():
                covered[unit][m].append(ci[m][0] <= value <= ci[m][1])
    rate = {unit: {m: np.mean(v) for m, v in by_metric.items()} for unit, by_metric in covered.items()}
    for m in truth:
        assert 0.88 <= rate["patient"][m] <= 0.99, rate
    # resampling images as if independent is too narrow here (measured 0.80): the patient unit is what makes it right
    assert rate["image"]["auroc"] <= 0.87, rate


# ----- several seeds -----
def test_several_seeds_average_the_metric_over_seeds():
    rng = np.random.default_rng(8)
    logits, labels, patients = single_label_data(rng)
    other = logits + rng.normal(size=logits.shape)
    both = bootstrap_metrics([logits, other], labels, patients, CLASSES, n_resamples=50)
    one, two = (bootstrap_metrics(x, labels, patients, CLASSES, n_resamples=50)["metrics"] for x in (logits, other))
    assert both["bootstrap"]["n_seeds"] == 2
    for name in one:
        assert both["metrics"][name] == pytest.approx((one[name] + two[name]) / 2, abs=1e-12), name


# ----- paired comparisons -----
def test_identical_methods_differ_by_zero():
    logits, labels, patients = single_label_data(np.random.default_rng(9), classes=2)
    got = paired_difference(logits, logits.copy(), labels, patients, ["negative", "positive"], "auroc", n_resamples=200)
    assert got["difference"] == 0 and got["ci"] == [0.0, 0.0] and got["p_value"] == 1.0
    assert got["delong"]["z"] == 0 and got["delong"]["p_value"] == 1.0


def test_a_clearly_better_method_has_a_ci_above_zero():
    rng = np.random.default_rng(10)
    labels = rng.integers(0, 3, 400)
    patients = rng.integers(0, 200, 400)
    good = rng.normal(size=(400, 3)) + 2.5 * np.eye(3)[labels]
    poor = rng.normal(size=(400, 3)) + 0.5 * np.eye(3)[labels]
    for metric in ("accuracy", "balanced_accuracy", "auroc", "sensitivity/COVID-19"):
        got = paired_difference(good, poor, labels, patients, CLASSES, metric, n_resamples=300)
        assert got["ci"][0] > 0 and got["p_value"] < 0.01, metric
        assert got["difference"] == pytest.approx(got["a"] - got["b"])
        assert got["delong"] is None  # macro AUROC of three classes: no single positive set
    reverse = paired_difference(poor, good, labels, patients, CLASSES, "auroc/COVID-19", n_resamples=300)
    assert reverse["ci"][1] < 0 and reverse["delong"]["z"] < -3 and reverse["delong"]["p_value"] < 1e-3


def test_multilabel_paired_difference_uses_the_findings_known_images():
    scores, labels, patients = multilabel_data(np.random.default_rng(17))
    noisy = np.clip(scores + np.random.default_rng(18).normal(scale=0.3, size=scores.shape), 0, 1)
    got = paired_difference(scores, noisy, labels, patients, FINDINGS, "auroc/Mass", multilabel=True, n_resamples=200)
    known = labels[:, 2] != -1
    want = delong_test(scores[known, 2], noisy[known, 2], labels[known, 2] == 1)
    assert got["delong"] == pytest.approx(want)
    assert got["a"] == pytest.approx(want["auroc_a"]) and got["difference"] > 0
    assert paired_difference(scores, noisy, labels, patients, FINDINGS, "auroc", multilabel=True, n_resamples=20)["delong"] is None


def test_paired_difference_names_an_unknown_metric():
    logits, labels, patients = single_label_data(np.random.default_rng(11))
    with pytest.raises(ValueError, match="did you mean 'accuracy'"):
        paired_difference(logits, logits, labels, patients, CLASSES, "acuracy", n_resamples=20)


# ----- DeLong -----
def delong_by_definition(a, b, positive):
    """DeLong et al. 1988 with the O(m n) placement values, for checking the fast algorithm."""
    psi = lambda x, y: 1.0 if x > y else 0.5 if x == y else 0.0
    components = []
    for s in (a, b):
        pos, neg = s[positive], s[~positive]
        v10 = np.array([np.mean([psi(x, y) for y in neg]) for x in pos])
        v01 = np.array([np.mean([psi(x, y) for x in pos]) for y in neg])
        components.append((v10, v01, v10.mean()))
    s10 = np.cov([components[0][0], components[1][0]])
    s01 = np.cov([components[0][1], components[1][1]])
    cov = s10 / positive.sum() + s01 / (~positive).sum()
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    return components[0][2], components[1][2], np.sqrt(var)


def test_delong_equals_the_definition_on_a_small_example_with_ties():
    rng = np.random.default_rng(12)
    positive = rng.random(40) < 0.4
    a = np.round(rng.normal(size=40) + positive, 1)  # rounding makes ties
    b = np.round(rng.normal(size=40) + 0.3 * positive, 1)
    auc_a, auc_b, se = delong_by_definition(a, b, positive)
    got = delong_test(a, b, positive)
    assert got["auroc_a"] == pytest.approx(auc_a) and got["auroc_b"] == pytest.approx(auc_b)
    assert got["se"] == pytest.approx(se) and got["z"] == pytest.approx((auc_a - auc_b) / se)
    assert got["p_value"] == pytest.approx(2 * norm.sf(abs(got["z"])))
    assert delong_test(a, a, positive)["z"] == 0


def test_delong_se_agrees_with_the_bootstrap_se_when_each_patient_has_one_image():
    rng = np.random.default_rng(13)
    labels = rng.integers(0, 2, 400)
    a = rng.normal(size=(400, 2)) + 1.2 * np.eye(2)[labels]
    b = a + rng.normal(scale=0.8, size=(400, 2))
    got = paired_difference(a, b, labels, np.arange(400), ["negative", "positive"], "auroc/positive", n_resamples=1000)
    bootstrap_se = (got["ci"][1] - got["ci"][0]) / (2 * 1.96)
    assert 0.75 < got["delong"]["se"] / bootstrap_se < 1.33
    assert got["delong"]["difference"] == pytest.approx(got["difference"])


def test_delong_needs_two_of_each_class():
    with pytest.raises(ValueError, match="at least 2 positive and 2 negative"):
        delong_test([0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [True, False, False])


# ----- calibration -----
def test_ece_and_reliability_bins_on_a_hand_example():
    # top-label confidences 0.95 (right), 0.94 (wrong) share bin 14; 0.85 (right), 0.75 (right), 0.62 (wrong) alone
    scores = np.array([[0.95, 0.05], [0.06, 0.94], [0.85, 0.15], [0.25, 0.75], [0.62, 0.38]])
    labels = np.array([0, 0, 0, 1, 1])
    by_hand = 2 / 5 * abs(0.5 - 0.945) + 1 / 5 * (0.15 + 0.25 + 0.62)  # = 0.382
    bins = reliability_bins(scores, labels)
    assert bins["ece"] == pytest.approx(by_hand, abs=1e-6)
    assert bins["count"] == [0] * 9 + [1, 0, 1, 1, 0, 2] and len(bins["bin_edges"]) == 16
    assert bins["accuracy"][14] == 0.5 and bins["confidence"][14] == pytest.approx(0.945) and bins["accuracy"][0] is None
    assert torchmetrics_values(scores, labels, ["a", "b"])["ece"] == pytest.approx(by_hand, abs=1e-6)
    point = bootstrap_metrics(scores, labels, [1, 2, 3, 4, 5], ["a", "b"], n_resamples=20)["metrics"]["ece"]
    assert point == pytest.approx(by_hand, abs=1e-6)


def test_multilabel_ece_is_the_mean_of_findings_ignoring_unknown_targets():
    scores = np.array([[0.9, 0.55], [0.25, 0.55], [0.7, 0.1]])
    labels = np.array([[1, 1], [0, 0], [-1, 0]])
    finding_a = (abs(1 - 0.9) + abs(0 - 0.25)) / 2  # the -1 entry (0.7) takes no part
    finding_b = 2 / 3 * abs(0.5 - 0.55) + 1 / 3 * abs(0 - 0.1)
    by_hand = (finding_a + finding_b) / 2
    assert torchmetrics_values(scores, labels, ["A", "B"], multilabel=True)["ece"] == pytest.approx(by_hand, abs=1e-6)
    got = bootstrap_metrics(scores, labels, ["x", "y", "z"], ["A", "B"], multilabel=True, n_resamples=20)
    assert got["metrics"]["ece"] == pytest.approx(by_hand, abs=1e-6)


# ----- formatting and bad input -----
def test_ci_text():
    assert ci_text(0.91, [0.88, 0.93]) == "0.910 [0.880, 0.930]"
    assert ci_text(None, [0.1, 0.2]) == "n/a" and ci_text(0.5, None) == "0.500"


@pytest.mark.parametrize("change, message", [
    (lambda s, l, p: (s[:, :2], l, p), "expected \\(n_images=300, n_classes=3\\)"),
    (lambda s, l, p: (s, l, p[:10]), "10 ids for 300 images"),
    (lambda s, l, p: (s, l + 1, p), "class indices 0..2"),
    (lambda s, l, p: ([s, s[:5]], l, p), "scores\\[1\\]"),
    (lambda s, l, p: (s, l, np.where(np.arange(300) == 0, None, p).astype(object)), "missing patient ids"),
])
def test_bad_input_is_a_clear_error(change, message):
    scores, labels, patients = change(*single_label_data(np.random.default_rng(14)))
    with pytest.raises(ValueError, match=message):
        bootstrap_metrics(scores, labels, patients, CLASSES, n_resamples=20)


def test_bad_settings_are_clear_errors():
    logits, labels, patients = single_label_data(np.random.default_rng(15))
    with pytest.raises(ValueError, match="one of \\['percentile', 'basic', 'BCa'\\]"):
        bootstrap_metrics(logits, labels, patients, CLASSES, method="bca_typo")
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        bootstrap_metrics(logits, labels, patients, CLASSES, confidence=95)
    with pytest.raises(ValueError, match="at least 2 patients"):
        bootstrap_metrics(logits, labels, np.zeros(300), CLASSES)


def test_bca_intervals_contain_the_estimate_for_smooth_metrics():
    logits, labels, patients = single_label_data(np.random.default_rng(16))
    got = bootstrap_metrics(logits, labels, patients, CLASSES, n_resamples=300, method="BCa")
    for name in ("accuracy", "balanced_accuracy", "f1", "auroc"):
        low, high = got["ci"][name]
        assert low < got["metrics"][name] < high, name
