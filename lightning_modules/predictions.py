"""Per-image outputs gathered from every rank, each image once: the distributed sampler repeats items to even out
the ranks, so the test metrics and the siamese validation trials count every index exactly once."""

from __future__ import annotations

import torch


def deduplicate(index: torch.Tensor, *values: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(index, *values) ordered by index, keeping the first row of every index."""
    order = torch.argsort(index, stable=True)
    index = index[order]
    keep = torch.ones_like(index, dtype=torch.bool)
    keep[1:] = index[1:] != index[:-1]
    return (index[keep], *(value[order][keep] for value in values))
