"""Stage 6 of the pipeline: torch Datasets over the preprocessing cache, and the train split's normalisation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

NORMALISATION_SAMPLE = 5000  # train images used for the global mean/std (evenly spaced, deterministic)


class CachedImageDataset(Dataset):
    """Images from the cache memmap (opened lazily, once per worker process) with their targets."""

    def __init__(self, array_path: Path, rows: np.ndarray, targets: np.ndarray, transform, augment_mask: np.ndarray | None = None, eval_transform=None):
        self.array_path = array_path
        self.rows = rows
        self.targets = targets
        self.transform = transform
        self.augment_mask = augment_mask
        self.eval_transform = eval_transform
        self._array: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def _open(self) -> None:
        """First item in this process: map the cache, and give each DataLoader worker its own augmentation
        stream (derived from the transform's seed), so workers do not repeat each other and reruns match."""
        self._array = np.load(self.array_path, mmap_mode="r")
        worker = torch.utils.data.get_worker_info()
        seed = getattr(self.transform, "seed", None)
        if worker is not None and seed is not None:
            self.transform.set_random_seed(int(seed) * 1000 + worker.id + 1)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self._array is None:
            self._open()
        pixels = np.asarray(self._array[self.rows[index]])[:, :, None]
        transform = self.transform
        if self.augment_mask is not None and not self.augment_mask[index]:
            transform = self.eval_transform
        return {"image": transform(image=pixels)["image"], "label": torch.as_tensor(self.targets[index]), "index": index}


def train_statistics(cache, rows: np.ndarray) -> tuple[float, float]:
    """Global mean and std of the train images (at most NORMALISATION_SAMPLE, evenly spaced) in [0, 1]."""
    if len(rows) > NORMALISATION_SAMPLE:
        rows = rows[np.linspace(0, len(rows) - 1, NORMALISATION_SAMPLE).astype(int)]
    pixels = cache.open()[np.sort(rows)].astype(np.float64) / 255.0
    return float(pixels.mean()), float(max(pixels.std(), 1e-6))
