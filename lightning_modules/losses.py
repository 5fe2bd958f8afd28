"""Losses by name, so a method's YAML picks one: ``loss: {name: cross_entropy}``.

Multi-label targets may hold -1 for "unknown" (CheXpert's U-Ignore policy); ``bce`` leaves those entries out.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

IGNORE = -1.0


class MaskedBCEWithLogits(nn.Module):
    """Binary cross-entropy over the known entries only (target >= 0), averaged over those entries."""

    def __init__(self, pos_weight: list[float] | None = None):
        super().__init__()
        self.register_buffer("pos_weight", torch.tensor(pos_weight, dtype=torch.float32) if pos_weight else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.float()
        known = target >= 0
        loss = F.binary_cross_entropy_with_logits(logits, target.clamp(min=0), pos_weight=self.pos_weight, reduction="none")
        return (loss * known).sum() / known.sum().clamp(min=1)


def _cross_entropy(num_classes: int, multilabel: bool, **options) -> nn.Module:
    if "weight" in options and options["weight"] is not None:
        options["weight"] = torch.tensor(options["weight"], dtype=torch.float32)
    return nn.CrossEntropyLoss(**options)


def _bce(num_classes: int, multilabel: bool, **options) -> nn.Module:
    return MaskedBCEWithLogits(**options)


# name -> factory(num_classes, multilabel, **options). Methods add their losses here.
LOSSES: dict[str, Callable[..., nn.Module]] = {
    "cross_entropy": _cross_entropy,
    "bce": _bce,
}


def build_loss(config: dict | None, *, num_classes: int, multilabel: bool) -> nn.Module:
    config = dict(config or {})
    name = config.pop("name", "bce" if multilabel else "cross_entropy")
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(sorted(LOSSES))}")
    return LOSSES[name](num_classes, multilabel, **config)
