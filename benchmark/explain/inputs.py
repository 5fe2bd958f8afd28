"""What an explanation looks at: a seeded sample of a run's test images as raw pixels, with their labels, patients,
sources and lung regions, and the run's own preprocessing and scoring of any (altered) pixels.

Probes alter pixels (masks, burnt-in text) before the run's eval transform, so the sample is kept as the cache's
uint8 images; ``Scorer`` normalises them as the run did and returns the method's class scores (softmax, sigmoid,
or the siamese net's similarity to each class template).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from datamodules.lung_regions import LUNG_BOXES_COLUMN, lung_region, region_mask
from datamodules.split_read import resolved
from datamodules.transforms import build_transform
from lightning_modules.explain import score_model

SOURCE_COLUMNS = ("component", "source")  # a combined task's component, else the reader's own source field


@dataclass
class Sample:
    """Test images drawn once: uint8 pixels (N, H, W), targets (class index, or (N, K) 0/1 for multi-label),
    label names, patient ids, sources, lung masks (N, H, W) and the kind of region each mask is."""

    pixels: np.ndarray
    targets: np.ndarray
    labels: list[str]
    patients: np.ndarray
    sources: list[str]
    masks: np.ndarray
    region_kinds: list[str]
    images: list[str]

    def __len__(self) -> int:
        return len(self.pixels)

    def region_counts(self) -> dict[str, int]:
        return {kind: self.region_kinds.count(kind) for kind in sorted(set(self.region_kinds))}


def draw_sample(datamodule, *, split: str, per_class: int, seed: int) -> Sample:
    """At most ``per_class`` images of each class of ``split`` (multi-label: ``per_class`` times 3, drawn at random: a
    sample the size of a three-class task's, not one per finding), the same for every method on the shared split."""
    frame = datamodule.frames[split]
    dataset = datamodule.datasets[split]
    rng = np.random.default_rng(seed)
    if datamodule.multilabel:
        chosen = np.sort(rng.permutation(len(frame))[: per_class * min(3, len(datamodule.class_names))])
    else:
        chosen = np.sort(np.concatenate([rng.permutation(np.flatnonzero(dataset.targets == c))[:per_class]
                                         for c in range(len(datamodule.class_names))]).astype(int))
    rows = frame.iloc[chosen]
    extra = _manifest_rows(datamodule.manifest, rows["path"])
    pixels = np.asarray(np.load(dataset.array_path, mmap_mode="r")[dataset.rows[chosen]])
    regions = [lung_region(text) for text in (extra[LUNG_BOXES_COLUMN] if LUNG_BOXES_COLUMN in extra else [""] * len(rows))]
    size = pixels.shape[1:]
    return Sample(pixels=pixels, targets=np.asarray(dataset.targets[chosen]), labels=[str(label) for label in rows["label"]],
                  patients=rows["patient_id"].to_numpy(), sources=_sources(extra), masks=np.stack([region_mask(b, size) for b, _ in regions]) if regions else np.zeros((0, *size), bool),
                  region_kinds=[kind for _, kind in regions], images=[str(i) for i in rows["image"]])


def _manifest_rows(manifest: pd.DataFrame, paths: pd.Series) -> pd.DataFrame:
    """The manifest's rows of ``paths`` (split paths are resolved; the manifest's may not be: resolved only if needed)."""
    wanted = [str(p) for p in paths]
    unique = manifest.drop_duplicates("path")
    by_path = unique.set_index(unique["path"].astype(str))
    if not set(wanted) <= set(by_path.index):
        by_path.index = [resolved(p) for p in by_path.index]
    return by_path.reindex(wanted)


def _sources(extra: pd.DataFrame) -> list[str]:
    """Each image's source: the component of a combined task, else the reader's source column, else one source."""
    for column in SOURCE_COLUMNS:
        if column in extra and extra[column].fillna("").astype(str).str.strip().ne("").all():
            values = extra[column].astype(str).tolist()
            if len(set(values)) > 1 or column == SOURCE_COLUMNS[-1]:
                return values
    return ["(one source)"] * len(extra)


class Scorer:
    """The run's eval transform and model: uint8 pixels in, class scores out (batched, no gradient)."""

    def __init__(self, task, normalization: dict, *, templates=None, batch_size: int = 64):
        self.task = task
        self.transform = build_transform(None, mean=normalization["mean"], std=normalization["std"],
                                         normalization=normalization.get("kind") or "train_stats", channels=int(normalization.get("channels", 1)))
        self.templates = templates
        self.model = score_model(task, templates=templates)
        self.siamese = templates is not None
        self.batch_size = batch_size

    def tensors(self, pixels: np.ndarray) -> torch.Tensor:
        """(N, C, H, W) float32 inputs of uint8 (N, H, W) pixels, as the run's test loader gives them."""
        return torch.stack([self.transform(image=np.asarray(p)[:, :, None])["image"] for p in pixels])

    @torch.no_grad()
    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        outputs = []
        for start in range(0, len(pixels), self.batch_size):
            logits = self.model(self.tensors(pixels[start:start + self.batch_size]).to(self.task.device))
            outputs.append((torch.sigmoid(logits) if self.siamese else self.task.scores(logits)).float().cpu())
        return torch.cat(outputs).numpy() if outputs else np.zeros((0, len(self.task.class_names)), np.float32)
