"""Losses by name, so a method's YAML picks one: ``loss: {name: cross_entropy}``.

Multi-label targets may hold -1 for "unknown" (CheXpert's U-Ignore policy); ``bce`` leaves those entries out.
``weighted_cross_entropy`` is eq. (4) of Özdemir & Sönmez (weighted-CE paper, section V), an option of every
single-label classifier: ``loss: {name: weighted_cross_entropy, beta: 0.75}``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.registries import LOSSES

IGNORE = -1.0


class MaskedBCEWithLogits(nn.Module):
    """Binary cross-entropy over the known entries only (target >= 0), averaged over those entries; class-index
    targets (a single-label task with sigmoid outputs) become one-hot."""

    def __init__(self, pos_weight: list[float] | None = None):
        super().__init__()
        self.register_buffer("pos_weight", torch.tensor(pos_weight, dtype=torch.float32) if pos_weight else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.ndim == 1:  # class indices of a single-label task: one-hot targets (twice transfer, section 6.2)
            target = F.one_hot(target.long(), logits.shape[1])
        target = target.float()
        known = target >= 0
        loss = F.binary_cross_entropy_with_logits(logits, target.clamp(min=0), pos_weight=self.pos_weight, reduction="none")
        return (loss * known).sum() / known.sum().clamp(min=1)


class WeightedCrossEntropy(nn.Module):
    """Eq. (4): WCE = -(beta y log p + (1 - y) log(1 - p)), averaged over the batch.

    With a softmax over two classes, p is the positive class's probability and 1 - p the negative's, so eq. (4)
    is cross-entropy whose positive-class term is scaled by beta. The categorical form takes a per-class vector:
    loss_i = -beta[y_i] log p_i[y_i]. beta < 1 penalises false positives, beta > 1 false negatives; beta = 1 is
    plain cross-entropy. Unlike ``nn.CrossEntropyLoss(weight=...)`` the mean is over samples, not over weights,
    as eq. (4) is written (the authors' code sums over the batch instead: a constant factor).
    """

    def __init__(self, class_weights: torch.Tensor):
        super().__init__()
        self.register_buffer("class_weights", torch.as_tensor(class_weights, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float(), dim=1).gather(1, target.long()[:, None])[:, 0]
        return -(self.class_weights[target.long()] * log_p).mean()


def wce_class_weights(beta, *, num_classes: int, class_names: list[str] | None = None, positive: str | int | None = None) -> torch.Tensor:
    """Per-class weights of eq. (4). A scalar beta weights the positive class only (by name or index; default the
    class named COVID-19, else class 1 of a binary task); a list (one per class) or a {class: beta} mapping
    (others 1) is the categorical vector form."""
    if isinstance(beta, dict):
        if class_names is None:
            raise ValueError("weighted_cross_entropy: a {class: beta} mapping needs the task's class names")
        unknown = sorted(set(beta) - set(class_names))
        if unknown:
            raise ValueError(f"weighted_cross_entropy: beta names unknown classes {unknown}; classes: {class_names}")
        return torch.tensor([float(beta.get(name, 1.0)) for name in class_names])
    if isinstance(beta, (list, tuple)):
        if len(beta) != num_classes:
            raise ValueError(f"weighted_cross_entropy: beta has {len(beta)} entries for {num_classes} classes")
        return torch.tensor([float(b) for b in beta])
    weights = torch.ones(num_classes)
    weights[_positive_index(positive, num_classes=num_classes, class_names=class_names)] = float(beta)
    return weights


def _positive_index(positive, *, num_classes: int, class_names: list[str] | None) -> int:
    if isinstance(positive, int):
        if not 0 <= positive < num_classes:
            raise ValueError(f"weighted_cross_entropy: positive class index {positive} outside 0..{num_classes - 1}")
        return positive
    if positive is None and class_names and "COVID-19" in class_names:
        positive = "COVID-19"
    if positive is not None:
        if not class_names or positive not in class_names:
            raise ValueError(f"weighted_cross_entropy: positive class {positive!r} is not a class of this task ({class_names})")
        return class_names.index(positive)
    if num_classes == 2:
        return 1
    raise ValueError("weighted_cross_entropy: a scalar beta on a task of more than two classes needs `positive: <class>`")


@LOSSES.register("weighted_cross_entropy")
def _weighted_cross_entropy(num_classes: int, multilabel: bool, *, beta=1.0, positive: str | int | None = None, class_names: list[str] | None = None) -> nn.Module:
    if multilabel:
        raise ValueError("weighted_cross_entropy is for single-label tasks; use `bce` with pos_weight for multi-label ones")
    return WeightedCrossEntropy(wce_class_weights(1.0 if beta is None else beta, num_classes=num_classes, class_names=class_names, positive=positive))


@LOSSES.register("cross_entropy")
def _cross_entropy(num_classes: int, multilabel: bool, class_names: list[str] | None = None, **options) -> nn.Module:
    if "weight" in options and options["weight"] is not None:
        options["weight"] = torch.tensor(options["weight"], dtype=torch.float32)
    return nn.CrossEntropyLoss(**options)


@LOSSES.register("bce")
def _bce(num_classes: int, multilabel: bool, class_names: list[str] | None = None, **options) -> nn.Module:
    return MaskedBCEWithLogits(**options)


def build_loss(config: dict | None, *, num_classes: int, multilabel: bool, class_names: list[str] | None = None) -> nn.Module:
    """The loss a method's ``loss:`` section names (default: cross-entropy, BCE for multi-label tasks)."""
    config = dict(config or {})
    name = config.pop("name", "bce" if multilabel else "cross_entropy")
    return LOSSES[name](num_classes, multilabel, class_names=class_names, **config)
