"""Test metrics computed once, from the de-duplicated test predictions, with the same torchmetrics collection the
methods log. Under DDP the distributed sampler pads and repeats test images; counting each image once here keeps
the leaderboard exact whatever the number of devices.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from lightning_modules.metrics import classification_metrics
from lightning_modules.predictions import deduplicate  # noqa: F401 (the one helper, also imported from here)


def evaluate(scores: torch.Tensor, labels: torch.Tensor, class_names: list[str], *, multilabel: bool = False) -> dict:
    """Return {"metrics": {name: float}, "confusion_matrix": [[...]] (rows = truth)}."""
    collection = classification_metrics(class_names, multilabel=multilabel, sync=False)
    target = labels.long()
    collection.update(scores.float(), target)
    metrics = {name: float(value) for name, value in collection.compute().items()}
    result = {"metrics": metrics, "n_images": int(len(labels))}
    if not multilabel:
        matrix = MulticlassConfusionMatrix(len(class_names), sync_on_compute=False)(scores.float(), target)
        result["confusion_matrix"] = matrix.to(torch.int64).tolist()
    return result


def finite(value: float) -> float | None:
    """JSON has no NaN: undefined metrics (a class absent from the test split) become null."""
    return None if value is None or not np.isfinite(value) else float(value)
