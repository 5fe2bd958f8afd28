"""Class-balanced epochs: each epoch redraws an equal number of images per class.

``undersample`` is the siamese paper's scheme (section 3.1): every image of the smallest class plus as many drawn
without replacement from each other class. ``oversample`` draws every class up to the largest one with
replacement. ``multilabel`` is the transfer paper's balanced 15-class set (section 5.3) redrawn every epoch
(``MultilabelBalancedSampler``).

``ExpansionSampler`` repeats each train image of a class a fixed number of times an epoch (twice-transfer paper,
section 5.2: normal and viral pneumonia 8 times, COVID-19 72 times), each copy augmented on its own.

``PairBatchSampler`` and ``PairBatchDataset`` give a siamese network its per-epoch pairs (siamese paper, 3.1);
the data option ``pair_sampling: {pairs_per_epoch, images_per_batch}`` chooses them (``pair_loader``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class BalancedEpochSampler(Sampler[int]):
    def __init__(self, labels: Sequence[int], *, mode: str = "undersample", seed: int = 0):
        if mode not in ("undersample", "oversample"):
            raise ValueError(f"balanced sampling mode must be 'undersample' or 'oversample', not {mode!r}")
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ValueError(f"balanced sampling {mode!r} is for single-label datasets; a multi-label one takes 'multilabel'")
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


class ExpansionSampler(Sampler[int]):
    """Every image ``repeats[i]`` times an epoch in a shuffled order, reproducible from (seed, epoch); the dataset's
    random transform augments every appearance independently (twice-transfer paper, section 5.2)."""

    def __init__(self, repeats: Sequence[int], *, seed: int = 0):
        self.repeats = np.asarray(repeats, dtype=np.int64)
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return int(self.repeats.sum())

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        order = np.repeat(np.arange(len(self.repeats)), self.repeats)
        rng.shuffle(order)
        return iter(order.tolist())


def expansion_factors(expansion: dict[str, int], class_names: Sequence[str]) -> np.ndarray:
    """The data option ``expansion: {class: factor}`` as one factor per class (1 where not named); an unknown class
    or a factor below 1 is a ValueError naming it."""
    factors = np.ones(len(class_names), dtype=np.int64)
    for name, factor in expansion.items():
        if name not in class_names:
            raise ValueError(f"expansion names the class {name!r}, which is not a class of this task (classes: {', '.join(class_names)})")
        if int(factor) < 1:
            raise ValueError(f"expansion factor of {name!r} must be at least 1, got {factor}")
        factors[list(class_names).index(name)] = int(factor)
    return factors


def image_repeats(targets: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Appearances per image: its class's factor, or for a multi-label image the largest factor of its findings."""
    targets = np.asarray(targets)
    if targets.ndim == 1:
        return factors[targets]
    return np.where(targets == 1, factors[None, :], 1).max(axis=1, initial=1)


class MultilabelBalancedSampler(Sampler[int]):
    """A balanced multi-label epoch (transfer paper, 5.3: over 200 images of each of the 15 classes), redrawn from
    (seed, epoch): classes rarest first get ``per_class`` positives (images already drawn count; with replacement
    once a class runs out), then the class with the fewest is topped up to a fixed length, per_class x classes
    (Lightning sizes an epoch once). Targets are (N, C); only 1 is positive (CheXpert's uncertain -1 is not)."""

    def __init__(self, targets, *, per_class: int = 200, seed: int = 0):
        targets = np.asarray(targets)
        if targets.ndim != 2:
            raise ValueError("balanced sampling 'multilabel' needs multi-label targets (images x classes); "
                             "a single-label dataset takes 'undersample' or 'oversample'")
        if int(per_class) < 1:
            raise ValueError(f"balanced_per_class must be at least 1, got {per_class}")
        hot = targets == 1
        self.members = [np.flatnonzero(hot[:, c]) for c in range(hot.shape[1])]
        self.order = [int(c) for c in np.argsort(hot.sum(axis=0), kind="stable") if len(self.members[c])]  # rarest first
        if not self.order:
            raise ValueError("balanced sampling 'multilabel': no class has a positive image in the train split")
        self.hot = hot
        self.per_class = int(per_class)
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.per_class * len(self.order)

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        drawn = np.zeros(len(self.hot), dtype=np.int64)  # times each image is drawn this epoch
        counts = np.zeros(self.hot.shape[1], dtype=np.int64)  # positives drawn per class
        for c in self.order:
            self._draw(c, self.per_class - counts[c], drawn, counts, rng)
        while (rest := len(self) - int(drawn.sum())) > 0:  # top up: the class with the fewest positives, rarest first
            ranked = sorted(self.order, key=lambda k: counts[k])
            gap = counts[ranked[1]] - counts[ranked[0]] if len(ranked) > 1 else rest
            self._draw(ranked[0], min(rest, max(1, int(gap))), drawn, counts, rng)
        order = np.repeat(np.arange(len(drawn)), drawn)
        rng.shuffle(order)
        return iter(order.tolist())

    def _draw(self, c: int, need: int, drawn: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> None:
        if need <= 0:
            return
        members = self.members[c]
        fresh = members[drawn[members] == 0]
        picks = rng.choice(fresh, need, replace=False) if need <= len(fresh) else np.concatenate([fresh, rng.choice(members, need - len(fresh))])
        np.add.at(drawn, picks, 1)
        counts += self.hot[picks].sum(axis=0)


class PairBatchSampler(Sampler[tuple]):
    """Batches of image pairs for a siamese network (siamese paper, section 3.1), one batch per item.

    Every epoch draws the paper's balanced pool: all images of the smallest class (COVID-19 there) plus as many
    drawn without replacement from each other class. An epoch holds ``pairs_per_epoch`` pairs in batches of
    ``pairs_per_batch``, half same-class and half different-class, the same-class pairs spread evenly over the
    classes and the different-class pairs over the class pairs (as the authors' generator does).

    Each batch first draws ``images_per_batch`` distinct pool images, spread evenly over the classes, and forms
    its pairs among them, so a network embeds each image once per batch instead of twice per pair. Every pair is
    still a uniform draw from the pool for its class (pair), so the distribution of pairs is the paper's.

    Items are ``(images, left, right, same)``: dataset indices of the batch's images, and per pair the positions
    of its two images in ``images`` and whether they share a class. Reproducible from (seed, epoch).
    """

    def __init__(self, labels: Sequence[int], *, pairs_per_epoch: int, pairs_per_batch: int, images_per_batch: int | None = None, seed: int = 0):
        labels = np.asarray(labels)
        self.classes = np.unique(labels)
        self.members = [np.flatnonzero(labels == c) for c in self.classes]
        self.per_class = min(len(m) for m in self.members)
        k = len(self.classes)
        if k < 2:
            raise ValueError(f"pair sampling needs at least two classes in the train split, found {k}")
        if self.per_class < 2:
            raise ValueError("pair sampling needs at least two train images of every class (for same-class pairs)")
        if pairs_per_batch < 2:
            raise ValueError(f"pairs_per_batch must be at least 2 (one same, one different pair), got {pairs_per_batch}")
        self.pairs_per_epoch = int(pairs_per_epoch)
        self.pairs_per_batch = int(pairs_per_batch)
        images = int(images_per_batch or pairs_per_batch)
        self.images_per_batch = max(2 * k, min(images, self.per_class * k))  # two per class at least, for same pairs
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return -(-self.pairs_per_epoch // self.pairs_per_batch)

    def __iter__(self) -> Iterator[tuple]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        pool = [m if len(m) == self.per_class else rng.choice(m, self.per_class, replace=False) for m in self.members]
        remaining = self.pairs_per_epoch
        batches = []
        for _ in range(len(self)):
            size = min(self.pairs_per_batch, remaining)
            remaining -= size
            batches.append(self._batch(pool, size, rng))
        return iter(batches)

    def _batch(self, pool: list[np.ndarray], n_pairs: int, rng: np.random.Generator) -> tuple:
        k = len(pool)
        counts = np.full(k, self.images_per_batch // k)
        counts[rng.permutation(k)[: self.images_per_batch % k]] += 1
        chosen = [rng.choice(members, count, replace=False) for members, count in zip(pool, counts)]
        images = np.concatenate(chosen)
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        n_same = (n_pairs + 1) // 2
        same_classes = _spread(np.arange(k), n_same, rng)
        class_pairs = [(a, b) for a in range(k) for b in range(a + 1, k)]
        different = _spread(np.arange(len(class_pairs)), n_pairs - n_same, rng)
        left, right = [], []
        for c in same_classes:
            i, j = rng.choice(counts[c], 2, replace=False)
            left.append(offsets[c] + i)
            right.append(offsets[c] + j)
        for p in different:
            a, b = class_pairs[p]
            if rng.random() < 0.5:
                a, b = b, a
            left.append(offsets[a] + rng.integers(counts[a]))
            right.append(offsets[b] + rng.integers(counts[b]))
        same = np.array([True] * n_same + [False] * (n_pairs - n_same))
        order = rng.permutation(n_pairs)
        return images, np.asarray(left, dtype=np.int64)[order], np.asarray(right, dtype=np.int64)[order], same[order]


def _spread(options: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws covering ``options`` as evenly as possible: whole rounds, then a random remainder."""
    rounds, rest = divmod(n, len(options))
    return np.concatenate([np.tile(options, rounds), rng.choice(options, rest, replace=False)]).astype(np.int64)


class PairBatchDataset(Dataset):
    """Loads one ``PairBatchSampler`` item: the batch's images (each once) and its pair structure. Use it in a
    DataLoader with ``batch_size=None`` and the sampler as ``sampler``."""

    def __init__(self, images: Dataset):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item: tuple) -> dict[str, torch.Tensor]:
        indices, left, right, same = item
        samples = [self.images[int(i)] for i in indices]
        return {
            "image": torch.stack([s["image"] for s in samples]),
            "label": torch.stack([torch.as_tensor(s["label"]) for s in samples]),
            "index": torch.as_tensor(np.asarray(indices, dtype=np.int64)),
            "left": torch.as_tensor(left, dtype=torch.long),
            "right": torch.as_tensor(right, dtype=torch.long),
            "same": torch.as_tensor(same, dtype=torch.bool),
        }


def train_sampler(labels, mode: str | None, *, seed: int = 0, factors: np.ndarray | None = None, per_class: int = 200) -> Sampler[int] | None:
    """The data options ``balanced_sampling`` (a class-balanced epoch sampler; ``multilabel`` draws ``per_class``
    positives of every class, the option ``balanced_per_class``) and ``expansion`` (per-class factors,
    ``expansion_factors``), or None for a plain shuffle."""
    if factors is not None:
        if mode:
            raise ValueError("expansion cannot be combined with balanced_sampling")
        return ExpansionSampler(image_repeats(labels, factors), seed=seed)
    if mode == "multilabel":
        return MultilabelBalancedSampler(labels, per_class=per_class, seed=seed)
    return BalancedEpochSampler(labels, mode=mode, seed=seed) if mode else None


@dataclass(frozen=True)
class PairSampling:
    """The data option ``pair_sampling``: pairs drawn per epoch and distinct images per batch (None: as the
    sampler chooses), Siamese COVID-Net's training batches (Castro Sundin et al., section 3.1)."""

    pairs_per_epoch: int = 12000
    images_per_batch: int | None = None


def pair_loader(train: Dataset, pairs: PairSampling, *, pairs_per_batch: int, seed: int, num_workers: int) -> DataLoader:
    """The training loader of a single-label train set as batches of ``pairs_per_batch`` pairs."""
    sampler = PairBatchSampler(train.targets, pairs_per_epoch=int(pairs.pairs_per_epoch), pairs_per_batch=pairs_per_batch,
                               images_per_batch=pairs.images_per_batch, seed=seed)
    return DataLoader(PairBatchDataset(train), batch_size=None, sampler=sampler, num_workers=num_workers,
                      persistent_workers=num_workers > 0, pin_memory=torch.cuda.is_available())
