"""Losses by name, so a method's YAML picks one: ``loss: {name: cross_entropy}``."""

from __future__ import annotations

from torch import nn


def build_loss(config: dict | None, *, num_classes: int, multilabel: bool) -> nn.Module:
    config = dict(config or {})
    name = config.pop("name", "bce" if multilabel else "cross_entropy")
    if name == "cross_entropy":
        return nn.CrossEntropyLoss(**config)
    if name == "bce":
        return nn.BCEWithLogitsLoss(**config)
    raise ValueError(f"unknown loss {name!r}; known: cross_entropy, bce")
