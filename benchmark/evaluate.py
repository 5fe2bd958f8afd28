"""Test metrics computed once, from the de-duplicated test predictions, with the same torchmetrics collection the
methods log. Under DDP the distributed sampler pads and repeats test images; counting each image once here keeps
the leaderboard exact whatever the number of devices.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.classification import MulticlassConfusionMatrix
from torchmetrics.functional.classification import binary_auroc

from lightning_modules.metrics import classification_metrics
from lightning_modules.predictions import deduplicate  # noqa: F401 (the one helper, also imported from here)


def evaluate(scores: torch.Tensor, labels: torch.Tensor, class_names: list[str], *, multilabel: bool = False) -> dict:
    """Return {"metrics": {name: float}, "confusion_matrix": [[...]] (rows = truth)}. Multi-label: a finding without
    positives (or negatives) in the test split has no AUROC (None), and the macro AUROC averages the findings that
    have one, as the bootstrap does (benchmark/statistics.py)."""
    collection = classification_metrics(class_names, multilabel=multilabel, sync=False)
    target = labels.long()
    collection.update(scores.float(), target)
    metrics = {name: float(value) for name, value in collection.compute().items()}
    if multilabel:  # torchmetrics scores a finding without positives (or negatives) as AUROC 0, and averages that in
        aurocs = {f"auroc/{c}": defined_auroc(scores[known, i], target[known, i] == 1) for i, c in enumerate(class_names)
                  for known in [target[:, i] >= 0]}
        defined = [v for v in aurocs.values() if v is not None]
        metrics.update(aurocs, auroc=sum(defined) / len(defined) if defined else None)
    result = {"metrics": metrics, "n_images": int(len(labels))}
    if not multilabel:
        matrix = MulticlassConfusionMatrix(len(class_names), sync_on_compute=False)(scores.float(), target)
        result["confusion_matrix"] = matrix.to(torch.int64).tolist()
    return result


def defined_auroc(scores: torch.Tensor, positive: torch.Tensor) -> float | None:
    """One-vs-rest AUROC, or None where it is undefined (no positive or no negative image)."""
    if positive.all() or not positive.any():
        return None
    return float(binary_auroc(scores.float(), positive.long()))


def finite(value: float) -> float | None:
    """JSON has no NaN: undefined metrics (a class absent from the test split) become null."""
    return None if value is None or not np.isfinite(value) else float(value)
