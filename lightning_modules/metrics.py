"""The metrics every method reports, from torchmetrics, so all rows of the leaderboard are computed alike.

Single-label: accuracy, balanced accuracy (macro recall), macro F1, macro AUROC (one-vs-rest on the scores),
and per class sensitivity (recall), specificity, PPV (precision), F1 and PPCR (predicted positive condition rate,
weighted-CE paper section VI.C, with that class as the positive one).
Multi-label: macro AUROC and per-class AUROC (the ChestX-ray14 convention), plus macro F1 at 0.5; target
entries of -1 (unknown, CheXpert U-Ignore) are left out.
Both: "ece", the expected calibration error over 15 equal-width confidence bins (L1): top-label for single-label,
the mean over findings of each finding's binary ECE for multi-label.
"""

from __future__ import annotations

import torch
from torchmetrics import ClasswiseWrapper, Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassCalibrationError,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
    MulticlassSpecificity,
    MulticlassStatScores,
    MultilabelAUROC,
    MultilabelF1Score,
)
from torchmetrics.functional.classification import binary_calibration_error
from torchmetrics.utilities import dim_zero_cat

ECE_BINS = 15


class MulticlassPPCR(MulticlassStatScores):
    """Predicted positive condition rate, (TP + FP) / (TP + FP + TN + FN): the share of images predicted as the
    class (weighted-CE paper, section VI.C). ``average=None`` gives one value per class."""

    higher_is_better = None
    is_differentiable = False
    full_state_update = False

    def compute(self) -> torch.Tensor:
        tp, fp, tn, fn = self._final_state()
        rate = (tp + fp).float() / (tp + fp + tn + fn).clamp(min=1).float()
        if self.average in ("macro", "micro"):
            return rate.mean()
        return rate


class MultilabelMeanCalibrationError(Metric):
    """Mean over findings of torchmetrics' binary expected calibration error (confidence = the finding's score,
    accuracy = its 0/1 target); targets equal to ``ignore_index`` are left out, findings with none known skipped."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, num_labels: int, n_bins: int = ECE_BINS, ignore_index: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.num_labels, self.n_bins, self.ignore_index = num_labels, n_bins, ignore_index
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        self.preds.append(preds.detach().float())
        self.target.append(target.long())

    def compute(self) -> torch.Tensor:
        preds, target = dim_zero_cat(self.preds), dim_zero_cat(self.target)
        errors = [binary_calibration_error(preds[:, k], target[:, k], n_bins=self.n_bins, ignore_index=self.ignore_index)
                  for k in range(self.num_labels) if (target[:, k] != self.ignore_index).any()]
        return torch.stack(errors).mean() if errors else torch.tensor(float("nan"))


def _per_class(metric, class_names: list[str], name: str) -> ClasswiseWrapper:
    return ClasswiseWrapper(metric, labels=list(class_names), prefix=f"{name}/")


def classification_metrics(class_names: list[str], *, multilabel: bool = False, prefix: str = "", sync: bool = True) -> MetricCollection:
    """``sync=False`` computes on this process's data only (the final test metrics, computed once on rank 0 from
    the gathered predictions, must not wait for the other ranks)."""
    n = len(class_names)
    kw = {"sync_on_compute": sync}
    if multilabel:
        metrics = {
            "auroc": MultilabelAUROC(n, average="macro", ignore_index=-1, **kw),
            "f1": MultilabelF1Score(n, average="macro", ignore_index=-1, **kw),
            "ece": MultilabelMeanCalibrationError(n, n_bins=ECE_BINS, ignore_index=-1, **kw),
            "auroc_per_class": _per_class(MultilabelAUROC(n, average=None, ignore_index=-1, **kw), class_names, "auroc"),
        }
    else:
        metrics = {
            "accuracy": MulticlassAccuracy(n, average="micro", **kw),
            "balanced_accuracy": MulticlassRecall(n, average="macro", **kw),
            "f1": MulticlassF1Score(n, average="macro", **kw),
            "auroc": MulticlassAUROC(n, average="macro", **kw),
            "ece": MulticlassCalibrationError(n, n_bins=ECE_BINS, norm="l1", **kw),
            "sensitivity": _per_class(MulticlassRecall(n, average=None, **kw), class_names, "sensitivity"),
            "specificity": _per_class(MulticlassSpecificity(n, average=None, **kw), class_names, "specificity"),
            "ppv": _per_class(MulticlassPrecision(n, average=None, **kw), class_names, "ppv"),
            "f1_per_class": _per_class(MulticlassF1Score(n, average=None, **kw), class_names, "f1"),
            "ppcr": _per_class(MulticlassPPCR(n, average=None, **kw), class_names, "ppcr"),
        }
    # compute_groups=False: shared-state grouping does not see inside ClasswiseWrapper and warns/skips updates.
    return MetricCollection(metrics, prefix=prefix, compute_groups=False)
