"""Class-balanced epochs: each epoch redraws an equal number of images per class.

``undersample`` is the siamese paper's scheme (section 3.1): every image of the smallest class plus as many drawn
without replacement from each other class. ``oversample`` draws every class up to the largest one with
replacement (the transfer paper's balanced 15-class sampling).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class BalancedEpochSampler(Sampler[int]):
    def __init__(self, labels: Sequence[int], *, mode: str = "undersample", seed: int = 0):
        if mode not in ("undersample", "oversample"):
            raise ValueError(f"balanced sampling mode must be 'undersample' or 'oversample', not {mode!r}")
        labels = np.asarray(labels)
        self.members = [np.flatnonzero(labels == c) for c in np.unique(labels)]
        sizes = [len(m) for m in self.members]
        self.per_class = min(sizes) if mode == "undersample" else max(sizes)
        self.mode = mode
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.per_class * len(self.members)

    def __iter__(self) -> Iterator[int]:
        # A fresh draw every pass, reproducible from (seed, epoch); Lightning's distributed wrapper
        # re-iterates this sampler each epoch, so every rank sees the same draw.
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        replace = self.mode == "oversample"
        chosen = [
            members if len(members) == self.per_class and not replace else rng.choice(members, self.per_class, replace=replace)
            for members in self.members
        ]
        order = np.concatenate(chosen)
        rng.shuffle(order)
        return iter(order.tolist())
