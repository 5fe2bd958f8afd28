"""The base DataModule: native files -> manifest -> shared patient-level split -> preprocessing cache -> loaders.

A dataset file only implements ``build_manifest`` (and ``locate`` to find its folder under a data root). Every
other step is here, so all datasets are split, cached, normalised and loaded the same way.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.cache import CachedImages, ImageCache
from datamodules.locking import file_lock
from datamodules.manifest import ManifestError, path_problem, printable, repeated_images
from datamodules.sampling import BalancedEpochSampler
from datamodules.splits import (
    EXCLUDED, REDRAW, SPLITS, SplitMismatchError, assert_patient_disjoint, assign_splits, check_split, file_sha256, read_split_csv,
    write_split_csv,
)
from datamodules.transforms import build_transform

log = logging.getLogger(__name__)

NORMALISATION_SAMPLE = 5000  # train images used for the global mean/std (evenly spaced, deterministic)
MISSING_POLICIES = ("skip", "keep", "error")  # what to do with images listed in metadata but absent on disk
MISSING_LISTED = 20  # up to this many absent images are named one by one in the log; more are summarised
FOUND_LISTED = 12  # entries of a folder a "dataset not found" error names


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's native files are not where the user pointed."""


def resolved(path: str | Path) -> str:
    """The absolute path with symlinks resolved; a path that cannot be resolved (a link loop) stays absolute."""
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):
        return os.path.abspath(path)


def _found(folder: Path) -> str:
    """What a folder holds (sub-folders marked with /), for an error message."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as error:
        return f"{folder} cannot be listed ({error.strerror or error})"
    names = [printable(e.name) + ("/" if e.is_dir() else "") for e in entries if not e.name.startswith(".")]
    shown = ", ".join(names[:FOUND_LISTED]) + (f", ... ({len(names)} entries)" if len(names) > FOUND_LISTED else "")
    return f"{folder} holds {shown or 'nothing'}"


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


class CXRDataModule(pl.LightningDataModule):
    """Shared machinery; subclasses set ``name``, ``classes`` and implement ``build_manifest``."""

    name: str = "base"
    classes: tuple[str, ...] = ()  # canonical class order of the dataset's task
    multilabel: bool = False
    is_synthetic: bool = False
    folder_names: tuple[str, ...] = ()  # sub-folders of a data root where the dataset may lie
    layout: str = ""  # the native layout looks_like_root expects, in words (named when the dataset is not found)
    target_columns: tuple[str, ...] = ()  # extra manifest columns that encode_frame needs (joined onto the split in setup)
    # Draw the split over duplicate groups (datamodules/duplicates.py), so a copied image never straddles splits.
    group_duplicates_by_default: bool = True

    def __init__(
        self,
        root: str | Path,
        *,
        image_size: int = 224,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        cache_dir: str | Path = ".cache/cxrbench",
        split_dir: str | Path = "runs/splits",
        split_seed: int = 0,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        augmentation: str | None = "none",
        augment_classes: list[str] | None = None,
        normalization: str = "train_stats",
        balanced_sampling: str | None = None,
        sampling_seed: int = 0,
        class_names: list[str] | None = None,
        missing: str = "skip",
        class_map: dict[str, str] | None = None,
        group_duplicates: bool | None = None,
    ):
        super().__init__()
        self.root = Path(root).expanduser()
        self.image_size = int(image_size)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.num_workers = int(num_workers)
        self.cache_dir = Path(cache_dir)
        self.split_dir = Path(split_dir)
        self.split_seed = int(split_seed)
        self.val_fraction = float(val_fraction)
        self.test_fraction = float(test_fraction)
        self.augmentation = augmentation
        self.augment_classes = augment_classes
        self.normalization = normalization
        self.balanced_sampling = balanced_sampling
        self.sampling_seed = int(sampling_seed)
        self.requested_classes = class_names
        # Label map applied in setup, e.g. {COVID-19: COVID-19, "*": non-COVID} for a binary task on a 3-class
        # dataset; "*" maps every other label. The shared split is made from the native labels, so it is the same.
        self.class_map = dict(class_map) if class_map else None
        if self.class_map and self.multilabel:
            raise ValueError(f"{self.name}: class_map is for single-label datasets")
        # A method with its own training batches (the siamese pairs) sets this: datamodule -> DataLoader.
        self.train_loader_factory = None
        if missing not in MISSING_POLICIES:
            raise ValueError(f"{self.name}: missing={missing!r}; use one of {', '.join(MISSING_POLICIES)}")
        self.missing_policy = missing
        self.group_duplicates = self.group_duplicates_by_default if group_duplicates is None else bool(group_duplicates)
        # Images the metadata lists that are not on disk (path, problem); filled by drop_missing.
        self.missing = pd.DataFrame({"path": pd.Series(dtype=str), "problem": pd.Series(dtype=str)})
        # Metadata rows a reader left out on purpose, by reason (e.g. {"view": 54, "unlabelled": 78}); build_manifest
        # sets it, setup adds it to ``excluded`` so the result file and data report show it.
        self.manifest_excluded: dict[str, int] = {}
        # Images listed with different labels (image, labels, origin), left out by drop_conflicting_labels.
        self.label_conflicts = pd.DataFrame({"image": [], "labels": [], "origin": []}, dtype=str)
        # Paths unusable before decoding (manifest.path_problem), left out by screen_paths; path shown printably.
        self.rejected = pd.DataFrame({"path": [], "problem": []}, dtype=str)
        self._cache: CachedImages | None = None
        self.frames: dict[str, pd.DataFrame] = {}
        self.excluded: dict[str, int] = {}

    # ----- what a dataset file implements -----
    def build_manifest(self) -> pd.DataFrame:
        raise NotImplementedError

    @classmethod
    def locate(cls, data_root: str | Path) -> Path:
        """Find this dataset's root under ``data_root`` (the folder itself or one of ``folder_names``)."""
        data_root = Path(data_root).expanduser()
        candidates = [data_root] + [data_root / name for name in cls.folder_names]
        for candidate in candidates:
            if candidate.is_dir() and cls.looks_like_root(candidate):
                return candidate
        tried = ", ".join(str(c) for c in candidates)
        expected = f"; expected {cls.layout}" if cls.layout else ""
        found = _found(data_root) if data_root.is_dir() else f"{data_root} does not exist"
        raise DatasetNotFoundError(f"{cls.name}: no dataset in its native layout found; looked in {tried}{expected}; {found}")

    @classmethod
    def looks_like_root(cls, path: Path) -> bool:
        return path.is_dir()

    @property
    def variant(self) -> str:
        """The options that change which images or labels the manifest holds (task, views, version), as a short
        tag in the split file name, so that two option sets never share a split file. '' when there are none."""
        return ""

    @property
    def image_root(self) -> Path:
        """The folder the split CSV's image paths are relative to: the dataset root, unless images lie elsewhere."""
        return self.root

    def encode_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Targets of a split frame; a dataset overrides this when its targets need more than ``label``."""
        return self.encode_targets(frame["label"])

    def drop_missing(self, frame: pd.DataFrame, *, origin: str | Path, exists: pd.Series | None = None) -> pd.DataFrame:
        """Handle manifest rows whose image file is not on disk, per the ``missing`` option.

        ``skip`` (default): drop them, record them in ``self.missing`` (path, problem; counted as
        ``excluded['missing_file']``) and log one warning that names them, or summarises them when there are many
        (a subset of a large dataset may lack 100k files). ``keep``: leave them in, so the cache reports each one
        as unreadable. ``error``: raise a ManifestError. ``exists`` may give the check precomputed.
        """
        frame = pd.DataFrame(frame).reset_index(drop=True)
        if exists is None:
            exists = frame["path"].map(lambda p: os.path.isfile(p))
        exists = pd.Series(exists, index=frame.index).astype(bool)
        absent = frame.loc[~exists, "path"].astype(str)
        if absent.empty or self.missing_policy == "keep":
            return frame
        if exists.sum() == 0:
            raise ManifestError(f"{origin}: none of the {len(frame)} images it lists is on disk (e.g. {absent.iloc[0]})")
        if self.missing_policy == "error":
            raise ManifestError(f"{origin}: {len(absent)} listed images are not on disk, e.g. {', '.join(absent.iloc[:5])}")
        problem = f"listed in {origin} but file not found"
        self.missing = pd.concat([self.missing, pd.DataFrame({"path": absent.to_numpy(), "problem": problem})], ignore_index=True)
        self.missing = self.missing.drop_duplicates("path").reset_index(drop=True)
        shown = list(absent.iloc[:MISSING_LISTED]) if len(absent) <= MISSING_LISTED else list(absent.iloc[:3]) + ["..."]
        log.warning("%s: %d of %d images listed in %s are not on disk and are excluded: %s", self.name, len(absent), len(frame), origin, ", ".join(shown))
        return frame[exists].reset_index(drop=True)

    def drop_conflicting_labels(self, frame: pd.DataFrame, *, origin: str | Path, key: str = "path") -> pd.DataFrame:
        """Merge rows that list one image (``key``) twice: the same label twice keeps one row; different labels
        leave the image out, logged (image, labels, ``origin``) and counted as ``excluded['conflicting_labels']``."""
        frame, conflicts = repeated_images(pd.DataFrame(frame), key=key)
        if len(conflicts):
            self.label_conflicts = pd.concat([self.label_conflicts, conflicts.assign(origin=str(origin))], ignore_index=True).drop_duplicates()
            self.manifest_excluded["conflicting_labels"] = self.manifest_excluded.get("conflicting_labels", 0) + len(conflicts)
            shown = "; ".join(f"{printable(r.image)} ({r.labels})" for r in conflicts.head(MISSING_LISTED).itertuples())
            log.warning("%s: %d images are listed in %s with different labels and are left out: %s%s", self.name, len(conflicts),
                        origin, shown, " ..." if len(conflicts) > MISSING_LISTED else "")
        return frame.reset_index(drop=True)

    def screen_paths(self, manifest: pd.DataFrame) -> pd.DataFrame:
        """Leave out the images whose path cannot be used at all (a file name that is not valid UTF-8, a symlink
        loop: manifest.path_problem); each is reported with the cache's problems and counted as unreadable."""
        problems = manifest["path"].map(path_problem)
        bad = problems != ""
        if not bad.any():
            return manifest
        rejected = pd.DataFrame({"path": manifest.loc[bad, "path"].map(printable).to_numpy(), "problem": problems[bad].to_numpy()})
        for row in rejected.itertuples():
            log.warning("unreadable image excluded: %s (%s)", row.path, row.problem)
        self.rejected = pd.concat([self.rejected, rejected], ignore_index=True).drop_duplicates("path").reset_index(drop=True)
        return manifest[~bad].reset_index(drop=True)

    # ----- split naming -----
    @property
    def split_path(self) -> Path:
        tag = f"seed{self.split_seed}-val{self.val_fraction:g}-test{self.test_fraction:g}"
        stem = f"{self.name}-{self.variant}" if self.variant else self.name
        return self.split_dir / f"{stem}-{tag}.csv"

    @property
    def split_sha256(self) -> str:
        return file_sha256(self.split_path)

    # ----- the pipeline -----
    def _prepare(self) -> CachedImages:
        if self._cache is not None:
            return self._cache
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"{self.name}: data root {self.root} does not exist")
        manifest = self.screen_paths(self.build_manifest())
        with file_lock(self.cache_dir / f"{self.name}.lock"):
            cache = ImageCache(self.cache_dir, self.name, self.image_size).build(manifest)
        cache.rejected = self.rejected
        problems = set(cache.problems["path"])
        if problems:
            log.warning("%s: %d of %d images could not be read and are excluded (see the data report)", self.name, len(problems),
                        len(manifest) + len(self.rejected))
        with file_lock(self.split_path.with_suffix(".lock")):
            if not self.split_path.exists():
                usable = manifest[~manifest["path"].isin(problems)].reset_index(drop=True)
                self._check_classes(usable.loc[usable["official_split"] != EXCLUDED, "label"], f"the usable images of {self.root}")
                if self.group_duplicates and "group_id" not in usable.columns:
                    usable = self._join_duplicates(usable, cache)
                split = assign_splits(usable, seed=self.split_seed, val_fraction=self.val_fraction, test_fraction=self.test_fraction)
                write_split_csv(usable, split, self.image_root, self.split_path)
                log.info("%s: wrote shared split %s", self.name, self.split_path)
            else:
                log.info("%s: reusing shared split %s", self.name, self.split_path)
        self.manifest, self._cache = manifest, cache
        return cache

    def _join_duplicates(self, manifest: pd.DataFrame, cache: CachedImages) -> pd.DataFrame:
        """Give every row a ``group_id``: its patient joined with all patients whose images duplicate its own."""
        from datamodules.duplicates import duplicate_groups, find_duplicates

        pairs = find_duplicates(cache)
        manifest = manifest.assign(group_id=duplicate_groups(manifest, pairs))
        joined = manifest.groupby("group_id")["patient_id"].nunique()
        if (joined > 1).any():
            log.info("%s: %d duplicate image pairs join %d patients into %d groups that the split keeps together",
                     self.name, len(pairs), int(joined[joined > 1].sum()), int((joined > 1).sum()))
        return manifest

    def prepare_data(self) -> None:
        self._prepare()

    def setup(self, stage: str | None = None) -> None:
        if self.frames:
            return
        cache = self._prepare()
        frame = self._read_split(cache)
        assert_patient_disjoint(frame, where=str(self.split_path))
        if self.class_map:
            frame["label"] = [self.class_map.get(label, self.class_map.get("*")) for label in frame["label"]]

        self.class_names = self._resolve_classes(frame)
        in_task = frame["label"].map(self._in_task)
        self.excluded["label_outside_task"] = int((~in_task & frame["split"].isin(SPLITS)).sum())
        frame = frame[in_task]
        self._check_classes(frame.loc[frame["split"].isin(SPLITS), "label"], f"the images of {self.split_path} (dataset at {self.root})")
        self.frames = {split: frame[frame["split"] == split].reset_index(drop=True) for split in SPLITS}
        if len(self.frames["train"]) == 0:
            raise ManifestError(f"{self.name}: the train split of {self.split_path} is empty")
        self.mean, self.std = self._train_statistics(cache)
        self.datasets = {split: self._dataset(split, cache) for split in SPLITS}

    def _read_split(self, cache: CachedImages) -> pd.DataFrame:
        """The shared split's usable rows with their cache row, checked against the dataset as read now (the split
        file's labels are the ground truth of every run): an image with another label or patient, or one the
        dataset no longer holds although its file is there, is a SplitMismatchError; an image that is unreadable
        or gone now is reported and counted; a dataset image the split does not know is counted and not used."""
        frame = read_split_csv(self.split_path)
        root = self.image_root.resolve()
        frame["path"] = [str(root / image) for image in frame["image"]]
        manifest = self.manifest.assign(path=[resolved(p) for p in self.manifest["path"]])
        index = cache.index.assign(path=[resolved(p) for p in cache.index["path"]])
        unreadable = set(index.loc[index["problem"] != "", "path"])
        usable = manifest[~manifest["path"].isin(unreadable)]
        check_split(frame, usable, where=self.split_path, origin=self.root)
        known = frame["path"].isin(usable["path"])
        if not known.all():
            self._split_images_not_in_dataset(frame[~known], unreadable)
        unsplit = int((~usable["path"].isin(frame["path"])).sum())
        if unsplit:
            log.warning("%s: %d images of the dataset are not in the shared split file %s and are not used; "
                        "delete that file (or use a new --out) to split again", self.name, unsplit, self.split_path)
        self.excluded = {
            "unreadable": len(cache.problems),
            "not_in_split_file": unsplit,
            # rows the split keeps out of train/val/test: their patient (or a duplicate of one of their images) is
            # in a fixed official val/test list (splits.assign_splits)
            "duplicate_or_patient_of_fixed_split": int((frame["split"] == EXCLUDED).sum()),
            "missing_file": len(self.missing),
            **self.manifest_excluded,
        }
        frame = frame[known]
        if self.target_columns:
            frame = frame.merge(manifest[["path", *self.target_columns]], on="path", how="left")
        frame = frame.merge(index, on="path", how="left")
        frame["row"] = frame["row"].astype(np.int64)
        return frame

    def _split_images_not_in_dataset(self, rows: pd.DataFrame, unreadable: set[str]) -> None:
        """Split rows the dataset does not hold now: unreadable or listed-but-absent ones are reported already; a
        file gone from disk is reported as missing and counted; one still on disk but no longer read (its metadata
        row or label changed) is a SplitMismatchError."""
        reported = rows["path"].isin(unreadable | {resolved(p) for p in self.missing["path"]})
        gone = ~reported & ~rows["path"].map(os.path.lexists)
        stray = rows[~reported & ~gone]
        if len(stray):
            shown = "; ".join(f"{r.image} ({r.label})" for r in stray.head(5).itertuples())
            raise SplitMismatchError(f"{self.split_path}: {len(stray)} images are in the split file but not in the dataset as {self.name} "
                                     f"reads {self.root} now (their metadata rows or labels changed?): {shown}; {REDRAW}")
        if gone.any():
            problem = f"in the split file {self.split_path} but file not found"
            self.missing = pd.concat([self.missing, pd.DataFrame({"path": rows.loc[gone, "path"].to_numpy(), "problem": problem})], ignore_index=True)
            log.warning("%s: %d images of the split file %s are no longer on disk and are excluded: %s", self.name, int(gone.sum()),
                        self.split_path, ", ".join(rows.loc[gone, "image"].head(MISSING_LISTED)))

    def _check_classes(self, labels: pd.Series, where: str) -> None:
        """A single-label task needs images of at least two classes: one class trains nothing and crashes the
        metrics, so it is an error naming what was found, before a split is written or any training starts."""
        present = sorted(set(labels))
        if not self.multilabel and len(present) < 2:
            found = f"only the class {present[0]!r}" if present else "no class"
            raise ManifestError(f"{self.name}: a classification task needs at least two classes, but {where} hold {found}; "
                                "check the dataset folder and the class options")

    # ----- helpers -----
    def _resolve_classes(self, frame: pd.DataFrame) -> list[str]:
        if self.requested_classes:
            return list(self.requested_classes)
        if self.class_map:
            return [c for c in dict.fromkeys(self.class_map.values()) if c is not None]
        if self.multilabel:
            return list(self.classes)
        present = set(frame["label"])
        ordered = [c for c in self.classes if c in present]
        return ordered + sorted(present - set(ordered))

    def _in_task(self, label: str) -> bool:
        return True if self.multilabel else label in self.class_names

    def encode_targets(self, labels: pd.Series) -> np.ndarray:
        """Class indices (single-label) or a multi-hot float matrix (multi-label)."""
        if self.multilabel:
            hot = np.zeros((len(labels), len(self.class_names)), dtype=np.float32)
            for i, label in enumerate(labels):
                for finding in filter(None, str(label).split("|")):
                    if finding in self.class_names:
                        hot[i, self.class_names.index(finding)] = 1.0
            return hot
        return labels.map(self.class_names.index).to_numpy(dtype=np.int64)

    def _train_statistics(self, cache: CachedImages) -> tuple[float, float]:
        rows = self.frames["train"]["row"].to_numpy()
        if len(rows) > NORMALISATION_SAMPLE:
            rows = rows[np.linspace(0, len(rows) - 1, NORMALISATION_SAMPLE).astype(int)]
        pixels = cache.open()[np.sort(rows)].astype(np.float64) / 255.0
        return float(pixels.mean()), float(max(pixels.std(), 1e-6))

    def _dataset(self, split: str, cache: CachedImages) -> CachedImageDataset:
        frame = self.frames[split]
        eval_transform = build_transform(None, mean=self.mean, std=self.std, normalization=self.normalization)
        transform = eval_transform
        augment_mask = None
        if split == "train" and self.augmentation not in (None, "none"):
            transform = build_transform(self.augmentation, mean=self.mean, std=self.std, normalization=self.normalization, seed=self.sampling_seed)
            if self.augment_classes:
                augment_mask = frame["label"].isin(self.augment_classes).to_numpy()
        return CachedImageDataset(cache.array_path, frame["row"].to_numpy(), self.encode_frame(frame), transform, augment_mask, eval_transform)

    def _loader(self, split: str, *, shuffle: bool, sampler=None, batch_size: int | None = None) -> DataLoader:
        return DataLoader(
            self.datasets[split],
            batch_size=batch_size or self.eval_batch_size,
            shuffle=shuffle if sampler is None else False,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_sampler(self):
        if not self.balanced_sampling:
            return None
        return BalancedEpochSampler(self.datasets["train"].targets, mode=self.balanced_sampling, seed=self.sampling_seed)

    def train_dataloader(self) -> DataLoader:
        if self.train_loader_factory is not None:
            return self.train_loader_factory(self)
        return self._loader("train", shuffle=True, sampler=self.train_sampler(), batch_size=self.batch_size)

    def train_eval_dataloader(self) -> DataLoader:
        """The train split in order with eval transforms (class templates, feature extraction, t-SNE)."""
        if not hasattr(self, "_train_eval"):
            train = self.datasets["train"]
            self._train_eval = CachedImageDataset(train.array_path, train.rows, train.targets, train.eval_transform or train.transform)
        return DataLoader(self._train_eval, batch_size=self.eval_batch_size, shuffle=False, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _patients_joined(self) -> int:
        """Patients that share a split group with another patient because their images are duplicates."""
        frame = pd.concat(self.frames.values())
        if "group_id" not in frame.columns:
            return 0
        per_group = frame.groupby("group_id")["patient_id"].nunique()
        return int(per_group[per_group > 1].sum())

    def describe(self) -> dict[str, Any]:
        """What a result file records about the data: enough to tell exactly which images were used."""
        counts = {
            split: {"images": len(f), "patients": int(f["patient_id"].nunique()), "per_class": f["label"].value_counts().sort_index().to_dict()}
            for split, f in self.frames.items()
        }
        return {
            "name": self.name,
            "synthetic": self.is_synthetic,
            "root": str(self.root),
            "classes": self.class_names,
            "class_map": self.class_map,
            "multilabel": self.multilabel,
            "image_size": self.image_size,
            "split_file": str(self.split_path),
            "split_sha256": self.split_sha256,
            "split_seed": self.split_seed,
            "patients_joined_by_duplicates": self._patients_joined(),
            "counts": counts,
            "excluded": self.excluded,
            "normalization": {"kind": self.normalization, "mean": self.mean, "std": self.std},
        }
