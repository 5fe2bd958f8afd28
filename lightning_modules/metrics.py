"""The metrics every method reports, from torchmetrics, so all rows of the leaderboard are computed alike.

Single-label: accuracy, balanced accuracy (macro recall), macro F1, macro AUROC (one-vs-rest on the scores),
and per class sensitivity (recall), specificity, PPV (precision), F1 and PPCR (predicted positive condition rate,
weighted-CE paper section VI.C, with that class as the positive one).
Multi-label: macro AUROC and per-class AUROC (the ChestX-ray14 convention), plus macro F1 at 0.5; target
entries of -1 (unknown, CheXpert U-Ignore) are left out.
"""

from __future__ import annotations

import torch
from torchmetrics import ClasswiseWrapper, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
    MulticlassSpecificity,
    MulticlassStatScores,
    MultilabelAUROC,
    MultilabelF1Score,
)


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
            "auroc_per_class": _per_class(MultilabelAUROC(n, average=None, ignore_index=-1, **kw), class_names, "auroc"),
        }
    else:
        metrics = {
            "accuracy": MulticlassAccuracy(n, average="micro", **kw),
            "balanced_accuracy": MulticlassRecall(n, average="macro", **kw),
            "f1": MulticlassF1Score(n, average="macro", **kw),
            "auroc": MulticlassAUROC(n, average="macro", **kw),
            "sensitivity": _per_class(MulticlassRecall(n, average=None, **kw), class_names, "sensitivity"),
            "specificity": _per_class(MulticlassSpecificity(n, average=None, **kw), class_names, "specificity"),
            "ppv": _per_class(MulticlassPrecision(n, average=None, **kw), class_names, "ppv"),
            "f1_per_class": _per_class(MulticlassF1Score(n, average=None, **kw), class_names, "f1"),
            "ppcr": _per_class(MulticlassPPCR(n, average=None, **kw), class_names, "ppcr"),
        }
    # compute_groups=False: shared-state grouping does not see inside ClasswiseWrapper and warns/skips updates.
    return MetricCollection(metrics, prefix=prefix, compute_groups=False)
