"""The unlabelled image pool of an autoencoder's pretraining stage (CAE paper, section 3.1), built without leakage.

The paper pretrains on 18,617 images pooled from six sources that include its own test images. Here the pool
holds the downstream task's train split and, optionally, other datasets ("extras"), minus every image that is
in the downstream val or test split, copies it (the cross-dataset duplicate search, cross_duplicates.py) or
belongs to a val/test patient of the same dataset. Each exclusion is counted by reason. A fixed part of the pool
(by patient) validates the reconstruction; the authors' code re-drew it every epoch, so it leaked into training.

The pool is written as a CSV (source, image relative to its dataset's root, patient, role) whose sha256 keys the
stored stage, as a split file keys a classification stage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import ConcatDataset, DataLoader

from datamodules.atomic import atomic_path, file_sha256
from datamodules.cross_duplicates import split_duplicates
from datamodules.datasets import CachedImageDataset
from datamodules.split_read import resolved
from datamodules.splits import EXCLUDED
from datamodules.transforms import build_transform

log = logging.getLogger(__name__)
POOL_COLUMNS = ("source", "image", "patient_id", "role")


@dataclass
class PoolSource:
    """One dataset's images in the pool: its cache and the rows (path, row, patient_id) taken from it."""

    name: str
    image_root: Path
    array_path: Path
    frame: pd.DataFrame
    excluded: dict[str, int] = field(default_factory=dict)


def downstream_source(downstream) -> PoolSource:
    """The downstream task's train split (never its val or test images)."""
    train = downstream.frames["train"]
    return PoolSource(f"downstream/{downstream.name}", Path(downstream.image_root), downstream._prepare().array_path,
                      train[["path", "row", "patient_id"]].reset_index(drop=True),
                      {"downstream_val_test": int(sum(len(f) for split, f in downstream.frames.items() if split != "train"))})


def extra_source(extra, downstream) -> PoolSource:
    """All usable images of another dataset but those in, copying, or of a patient of the downstream val/test."""
    cache = extra._prepare()
    manifest = extra.manifest
    if "exclusion" in manifest.columns:  # a combined reader's references and removed views
        manifest = manifest[manifest["exclusion"] == ""]
    if "official_split" in manifest.columns:
        manifest = manifest[manifest["official_split"] != EXCLUDED]
    frame = manifest.merge(cache.index, on="path", how="inner")
    excluded = {"unreadable": int((frame["problem"] != "").sum())}
    frame = frame[frame["problem"] == ""].reset_index(drop=True)
    held = dict(downstream.frames)  # train/val/test, and a LOSO split's test_in_source, kept out like test
    scored = tuple(split for split in held if split != "train")
    held_paths = {resolved(p) for split in scored for p in held[split]["path"]}
    paths = frame["path"].map(resolved)
    same_file = paths.isin(held_paths).to_numpy()
    patient = np.zeros(len(frame), dtype=bool)
    if extra.name == downstream.name:  # same patient ids: a test patient's other images stay out too
        patients = {p for split in scored for p in held[split]["patient_id"]}
        patient = frame["patient_id"].isin(patients).to_numpy() & ~same_file
    pairs = split_duplicates(cache, downstream._prepare(), held, splits=scored)
    copies = paths.isin({resolved(p) for p in pairs["external_path"]}).to_numpy() & ~same_file & ~patient
    in_train = paths.isin({resolved(p) for p in held["train"]["path"]}).to_numpy() & ~same_file & ~patient & ~copies
    excluded.update({"downstream_val_test_image": int(same_file.sum()), "patient_of_downstream_val_test": int(patient.sum()),
                     "copy_of_downstream_val_test": int(copies.sum()), "already_in_downstream_train": int(in_train.sum())})
    keep = ~(same_file | patient | copies | in_train)
    return PoolSource(extra.name, Path(extra.image_root), cache.array_path, frame.loc[keep, ["path", "row", "patient_id"]].reset_index(drop=True), excluded)


def assign_pool_roles(sources: list[PoolSource], *, val_fraction: float, seed: int) -> list[pd.DataFrame]:
    """Each source's frame with a ``role`` (train/val): ``val_fraction`` of the pool's patients validate, drawn once."""
    rng = np.random.default_rng(seed)
    keys = pd.concat([s.name + ":" + s.frame["patient_id"].astype(str) for s in sources], ignore_index=True)
    unique = np.array(sorted(set(keys)))
    val = set(rng.choice(unique, int(round(val_fraction * len(unique))), replace=False)) if len(unique) > 1 and val_fraction > 0 else set()
    framed = []
    for source in sources:
        key = source.name + ":" + source.frame["patient_id"].astype(str)
        framed.append(source.frame.assign(role=np.where(key.isin(val), "val", "train")))
    return framed


class PretrainingPool(pl.LightningDataModule):
    """Unlabelled images of several datasets for an autoencoder: train and val loaders over the pool (batches of
    ``{"image", "label" (0), "index"}``, images in [0, 1] with ``channels`` channels)."""

    def __init__(self, downstream, extras: list | None = None, *, pool_file: Path, batch_size: int = 16, eval_batch_size: int | None = None,
                 channels: int = 3, val_fraction: float = 0.1, seed: int = 0, num_workers: int = 0):
        super().__init__()
        self.downstream, self.extras = downstream, list(extras or [])
        self.pool_file = Path(pool_file)
        self.batch_size, self.eval_batch_size = int(batch_size), int(eval_batch_size or batch_size)
        self.channels, self.val_fraction, self.seed, self.num_workers = int(channels), float(val_fraction), int(seed), int(num_workers)
        self.image_size = downstream.image_size
        self.sources: list[PoolSource] = []
        self.frames: list[pd.DataFrame] = []
        self.datasets: dict[str, ConcatDataset] = {}

    name = "pretraining_pool"
    class_names: list[str] = []
    multilabel = False

    @property
    def is_synthetic(self) -> bool:
        return bool(self.downstream.is_synthetic)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        self.sources = [downstream_source(self.downstream)] + [extra_source(extra, self.downstream) for extra in self.extras]
        names = [source.name for source in self.sources]
        for number, source in enumerate(self.sources):  # the same dataset twice (two variants): told apart by position
            if names.count(source.name) > 1:
                source.name = f"{source.name}#{number}"
        self.frames = assign_pool_roles(self.sources, val_fraction=self.val_fraction, seed=self.seed)
        self._write()
        transform = build_transform(None, mean=0.0, std=1.0, normalization="unit", channels=self.channels)
        for role in ("train", "val"):
            parts = []
            for source, frame in zip(self.sources, self.frames):
                rows = frame.loc[frame["role"] == role, "row"].to_numpy()
                if len(rows):
                    parts.append(CachedImageDataset(source.array_path, rows, np.zeros(len(rows), dtype=np.int64), transform))
            if not parts:
                raise ValueError(f"pretraining pool {self.pool_file}: no {role} images (pool of {sum(len(f) for f in self.frames)})")
            self.datasets[role] = ConcatDataset(parts)
        log.info("pretraining pool: %s", self.counts())

    def _write(self) -> None:
        table = pd.concat([pd.DataFrame({"source": s.name, "image": [Path(p).resolve().relative_to(s.image_root.resolve()).as_posix() for p in f["path"]],
                                         "patient_id": f["patient_id"].astype(str).to_numpy(), "role": f["role"].to_numpy()})
                           for s, f in zip(self.sources, self.frames)], ignore_index=True)
        self.pool_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.pool_file) as tmp:
            table.to_csv(tmp, index=False, lineterminator="\n")
        self._sha256 = file_sha256(self.pool_file)

    @property
    def split_sha256(self) -> str:
        """The pool file's sha256 (a stored stage is reused only for the same pool)."""
        self.setup()
        return self._sha256

    def counts(self) -> dict[str, Any]:
        """Images per source and role, and what each source left out, by reason (the result records it)."""
        return {s.name: {"train": int((f["role"] == "train").sum()), "val": int((f["role"] == "val").sum()), "left_out": s.excluded}
                for s, f in zip(self.sources, self.frames)}

    def describe(self) -> dict[str, Any]:
        """What a stage record says about its data (as CXRDataModule.describe for a classification stage)."""
        self.setup()
        return {"name": self.name, "variant": "+".join(s.name for s in self.sources), "synthetic": self.is_synthetic, "image_size": self.image_size,
                "classes": [], "counts": self.counts(), "images": int(sum(len(f) for f in self.frames)), "split_file": str(self.pool_file),
                "split_sha256": self.split_sha256, "downstream_split_sha256": self.downstream.split_sha256, "multilabel": False,
                "val_fraction": self.val_fraction, "seed": self.seed}

    def sample_images(self, count: int = 8) -> torch.Tensor:
        """The first ``count`` validation images, for the reconstruction grid."""
        dataset = self.datasets["val"]
        return torch.stack([dataset[i]["image"] for i in range(min(count, len(dataset)))])

    def _loader(self, role: str, shuffle: bool, batch_size: int) -> DataLoader:
        return DataLoader(self.datasets[role], batch_size=batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, pin_memory=torch.cuda.is_available())

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True, self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False, self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("val", False, self.eval_batch_size)
