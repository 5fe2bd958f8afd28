"""The one DataModule: a reader's manifest through the pipeline's stages, top to bottom.

reader (readers/) -> missing files (missing.py) -> preprocessing cache (cache.py) -> duplicate groups
(grouping.py) -> shared split (splits.py, split_read.py) -> transforms and sampling (transforms.py, sampling.py)
-> Datasets and loaders (datasets.py, here) -> describe (describe.py). Every dataset, single or combined, runs
the same stages, so all are split, cached, normalised and loaded the same way.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from datamodules import describe as describe_stage
from datamodules.cache import CachedImages, ImageCache
from datamodules.datasets import CachedImageDataset, train_statistics
from datamodules.atomic import file_sha256
from datamodules.grouping import join_duplicates, search_duplicates, summarise_duplicates
from datamodules.locking import file_lock
from datamodules.manifest import ManifestError
from datamodules.missing import MISSING_POLICIES, screen_paths
from datamodules.readers.base import DatasetNotFoundError, Reader
from datamodules.sampling import PairSampling, expansion_factors, pair_loader, train_sampler
from datamodules.split_read import read_split
from datamodules.source_split import (HELD_OUT_DUPLICATE, VAL_SOURCE_DUPLICATE, assign_source_splits, check_held_out_classes,
                                      check_sources, count_source_duplicates, held_out_options, held_out_tag, source_counts,
                                      source_field)
from datamodules.split_read import resolved
from datamodules.splits import (EXCLUDED, IN_SOURCE_TEST, SPLITS, USED_SPLITS, assert_patient_disjoint, assign_splits, read_split_csv,
                                write_split_csv)
from datamodules.transforms import build_transform, check_inputs, generator_states, normalization_values, set_generator_states

log = logging.getLogger(__name__)
FIXED_SPLIT_CLASH = "duplicate_or_patient_of_fixed_split"


def _from_reader(attribute: str) -> property:
    return property(lambda self: getattr(self.reader, attribute), doc=f"The reader's ``{attribute}``.")


class CXRDataModule(pl.LightningDataModule):
    """A reader's dataset as train/val/test loaders; every argument but ``reader`` is a pipeline option.

    ``held_out`` ({field, test, validation, val_source}, source_split.py): a leave-one-source-out split, whose test
    split is the images of the ``test`` sources; its in-distribution test of the training sources is
    ``in_source_test_dataloader()``."""

    def __init__(
        self,
        reader: Reader,
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
        channels: int = 1,
        balanced_sampling: str | None = None,
        balanced_per_class: int = 200,
        pair_sampling: dict[str, Any] | None = None,
        expansion: dict[str, int] | None = None,
        sampling_seed: int = 0,
        class_names: list[str] | None = None,
        missing: str = "skip",
        class_map: dict[str, str] | None = None,
        group_duplicates: bool | None = None,
        lung_crop: bool = False,
        held_out: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.reader = reader
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
        check_inputs(normalization, int(channels))
        self.normalization = normalization
        self.channels = int(channels)  # 3: the gray image repeated for an RGB stem (every batch is (B, channels, H, W))
        self.balanced_sampling = balanced_sampling
        self.balanced_per_class = int(balanced_per_class)  # ``multilabel``: positives per class and epoch (transfer paper, 5.3)
        # Siamese COVID-Net's training pairs (Castro Sundin et al., section 3.1) instead of single images.
        self.pair_sampling = PairSampling(**pair_sampling) if pair_sampling else None
        # Twice-transfer paper, section 5.2: each train image of a class appears that many times an epoch.
        self.expansion = dict(expansion) if expansion else None
        if self.expansion and (balanced_sampling or pair_sampling):
            raise ValueError(f"{self.name}: expansion cannot be combined with balanced_sampling or pair_sampling")
        if self.expansion and augmentation in (None, "none"):
            log.warning("%s: expansion without augmentation repeats identical copies of each image", self.name)
        self.sampling_seed = int(sampling_seed)
        self.requested_classes = class_names
        # Label map applied in setup, e.g. {COVID-19: COVID-19, "*": non-COVID} for a binary task on a 3-class
        # dataset; "*" maps every other label. The shared split is made from the native labels, so it is the same.
        self.class_map = dict(class_map) if class_map else None
        if self.class_map and self.multilabel:
            raise ValueError(f"{self.name}: class_map is for single-label datasets")
        if missing not in MISSING_POLICIES:
            raise ValueError(f"{self.name}: missing={missing!r}; use one of {', '.join(MISSING_POLICIES)}")
        reader.missing_policy = missing
        self.missing_policy = missing
        self.group_duplicates = reader.group_duplicates_by_default if group_duplicates is None else bool(group_duplicates)
        # leave-one-source-out (source_split.py): whole sources held out as the test split. Duplicates are always
        # grouped then, as a held-out image's copies in other sources are kept out of training by their group_id.
        self.held_out = held_out_options(held_out, name=self.name) if held_out else None
        if self.held_out:
            self.group_duplicates = True
        self.source_field: str | None = None  # the manifest column the held-out sources are values of (set in _prepare)
        self.held_out_rows: pd.DataFrame | None = None  # the split file's rows with their sources (held_out_split, set in setup)
        # siamese paper 3.3.1: every image cropped to its lung region before the resize (cache.py); the split is unchanged
        self.lung_crop = bool(lung_crop)
        self.duplicate_pairs: pd.DataFrame | None = None  # the pairs the grouping stage found, when it ran
        self.duplicate_summary: dict[str, Any] = {}
        self._cache: CachedImages | None = None
        self.frames: dict[str, pd.DataFrame] = {}
        self.excluded: dict[str, int] = {}
        self.datasets: dict[str, CachedImageDataset] = {}
        self._train_sampler = None  # the last train loader's sampler, and the epoch a checkpoint says it draws next
        self._restored_epoch: int | None = None

    name = _from_reader("name")
    classes = _from_reader("classes")
    multilabel = _from_reader("multilabel")
    is_synthetic = _from_reader("is_synthetic")
    root = _from_reader("root")
    variant = _from_reader("variant")
    image_root = _from_reader("image_root")
    missing = _from_reader("missing")
    rejected = _from_reader("rejected")
    label_conflicts = _from_reader("label_conflicts")
    manifest_excluded = _from_reader("manifest_excluded")

    def build_manifest(self) -> pd.DataFrame:
        """Stage 1: the reader's manifest."""
        return self.reader.build_manifest()

    # ----- split naming: every option that changes a split is in its name -----
    @property
    def split_path(self) -> Path:
        tag = f"seed{self.split_seed}-val{self.val_fraction:g}-test{self.test_fraction:g}"
        if self.held_out:  # grouping is implied by a held-out split, so its name does not repeat it
            tag += "-" + held_out_tag(self.held_out)
        elif self.group_duplicates != self.reader.group_duplicates_by_default:  # the default keeps the old names
            tag += "-dupgroups" if self.group_duplicates else "-nodupgroups"
        stem = f"{self.name}-{self.variant}" if self.variant else self.name
        return self.split_dir / f"{stem}-{tag}.csv"

    @property
    def split_sha256(self) -> str:
        return file_sha256(self.split_path)

    # ----- the pipeline -----
    def _prepare(self) -> CachedImages:
        if self._cache is not None:
            return self._cache
        if not self.is_synthetic and not self.root.is_dir():
            raise DatasetNotFoundError(f"{self.name}: data root {self.root} does not exist")
        manifest = screen_paths(self.reader, self.build_manifest())
        with file_lock(self.cache_dir / f"{self.name}.lock"):
            cache = ImageCache(self.cache_dir, self.name, self.image_size, lung_crop=self.lung_crop).build(manifest)
        cache.rejected = self.rejected
        problems = set(cache.problems["path"])
        if problems:
            log.warning("%s: %d of %d images could not be read and are excluded (see the data report)", self.name, len(problems),
                        len(manifest) + len(self.rejected))
        if self.reader.needs_duplicates:  # the manifest itself depends on them (views, fixed test sets)
            manifest = self._group(manifest, cache)
        if self.held_out:
            self.source_field = source_field(manifest, self.held_out["field"])
        with file_lock(self.split_path.with_suffix(".lock")):
            if not self.split_path.exists():
                usable = manifest[~manifest["path"].isin(problems)].reset_index(drop=True)
                self._check_classes(usable.loc[usable["official_split"] != EXCLUDED, "label"], f"the usable images of {self.root}")
                if self.group_duplicates and "group_id" not in usable.columns:
                    usable = self._group(usable, cache)
                if self.held_out:
                    split = self._source_split(usable)
                else:
                    split = assign_splits(usable, seed=self.split_seed, val_fraction=self.val_fraction, test_fraction=self.test_fraction)
                write_split_csv(usable, split, self.image_root, self.split_path)
                log.info("%s: wrote shared split %s", self.name, self.split_path)
            else:
                log.info("%s: reusing shared split %s", self.name, self.split_path)
        self.manifest, self._cache = manifest, cache
        return cache

    def task_labels(self, frame: pd.DataFrame) -> pd.Series:
        """Each row's task label as setup() will see it (class map, requested classes); None = outside the task."""
        labels = frame["label"]
        if self.class_map:
            labels = labels.map(lambda label: self.class_map.get(label, self.class_map.get("*")))
        if self.requested_classes and not self.multilabel:
            labels = labels.where(labels.isin(self.requested_classes), None)
        return labels

    def _source_split(self, usable: pd.DataFrame) -> pd.Series:
        """A leave-one-source-out split (source_split.py), after checking that each held-out source can be scored."""
        labels = self.task_labels(usable)
        counts = source_counts(usable, self.source_field, labels)
        check_sources(counts, usable[self.source_field].astype(str).value_counts(), self.held_out["test"], self.source_field, "test")
        if not self.multilabel:
            check_held_out_classes(counts, self.held_out["test"], f"{self.name} ({self.root}, held_out.field {self.source_field!r})")
        options = {k: v for k, v in self.held_out.items() if k != "field"}
        split = assign_source_splits(usable, field=self.source_field, **options, seed=self.split_seed, val_fraction=self.val_fraction,
                                     test_fraction=self.test_fraction, labels=labels)
        log.info("%s: held out %s (%s) as the test split; %d duplicates of their images in other sources excluded", self.name,
                 ", ".join(self.held_out["test"]), self.source_field, split.attrs[HELD_OUT_DUPLICATE])
        return split

    def held_out_split(self) -> pd.DataFrame:
        """The split file's rows with each image's ``source`` (the held-out field) and whether an official split
        excluded it (``official_excluded``): what describe() and the exclusion counts of a LOSO split read."""
        split = read_split_csv(self.split_path)
        root = self.image_root.resolve()
        paths = [resolved(root / image) for image in split["image"]]
        manifest = self.manifest.assign(path=[resolved(p) for p in self.manifest["path"]]).drop_duplicates("path").set_index("path")
        official = manifest["official_split"] if "official_split" in manifest.columns else pd.Series("", index=manifest.index)
        return split.assign(source=[str(manifest[self.source_field].get(p, "")) for p in paths],
                            official_excluded=[official.get(p, "") == EXCLUDED for p in paths])

    def _group(self, manifest: pd.DataFrame, cache: CachedImages) -> pd.DataFrame:
        """Stage 4 (grouping.py): find duplicates, let the reader use them, and join patients into groups."""
        if self.lung_crop:  # duplicates (so the groups and the split) are found on the uncropped images, as without the crop
            with file_lock(self.cache_dir / f"{self.name}.lock"):
                cache = ImageCache(self.cache_dir, self.name, self.image_size).build(manifest)
        self.duplicate_pairs = search_duplicates(manifest, cache, self.reader.duplicate_search)
        manifest = self.reader.after_duplicates(manifest, self.duplicate_pairs, split_seed=self.split_seed)
        return join_duplicates(manifest, self.duplicate_pairs, name=self.name) if self.group_duplicates else manifest

    def prepare_data(self) -> None:
        self._prepare()

    def setup(self, stage: str | None = None) -> None:
        if self.frames:
            return
        cache = self._prepare()
        frame, self.excluded = read_split(self.split_path, self.reader, self.manifest, cache)
        assert_patient_disjoint(frame, where=str(self.split_path))
        if self.class_map:
            frame["label"] = [self.class_map.get(label, self.class_map.get("*")) for label in frame["label"]]

        self.class_names = self._resolve_classes(frame)
        in_task = frame["label"].map(self._in_task)
        self.excluded["label_outside_task"] = int((~in_task & frame["split"].isin(USED_SPLITS)).sum())
        frame = frame[in_task]
        self._check_classes(frame.loc[frame["split"].isin(USED_SPLITS), "label"], f"the images of {self.split_path} (dataset at {self.root})")
        # train/val/test always; a LOSO split's in-distribution test (test_in_source) when it has such rows
        splits = SPLITS + ((IN_SOURCE_TEST,) if (frame["split"] == IN_SOURCE_TEST).any() else ())
        self.frames = {split: frame[frame["split"] == split].reset_index(drop=True) for split in splits}
        # validation in a seeded random order, not the split file's (sorted by path, so by class folder): a limited
        # validation (``limit_val_batches``, the quick profiles) is then a random sample of every class, not one class
        self.frames["val"] = self.frames["val"].sample(frac=1.0, random_state=self.split_seed).reset_index(drop=True)
        if len(self.frames["train"]) == 0:
            raise ManifestError(f"{self.name}: the train split of {self.split_path} is empty")
        self.mean, self.std = train_statistics(cache, self.frames["train"]["row"].to_numpy())
        if self.expansion:  # an unknown class is an error now, not at the first train epoch
            expansion_factors(self.expansion, self.class_names)
        self.datasets = {split: self._dataset(split, cache) for split in splits}
        if "exclusion" in self.manifest.columns:
            self._count_exclusions()
        if self.held_out:  # a held-out source's duplicates are counted as such, not as clashes with a fixed split
            split = self.held_out_rows = self.held_out_split()  # read once: describe() counts from it too
            duplicates = count_source_duplicates(split, split["official_excluded"])
            self.excluded[FIXED_SPLIT_CLASH] = max(0, self.excluded[FIXED_SPLIT_CLASH] - sum(duplicates.values()))
            self.excluded.update(duplicates)

    def _count_exclusions(self) -> None:
        """Rows a reader marked (``exclusion``: reference, view ...) are counted by reason; duplicate pairs are
        summarised with the split of each side, and pairs that straddle two splits are warned about."""
        split = read_split_csv(self.split_path)
        split_of = dict(zip([str(self.image_root.resolve() / i) for i in split["image"]], split["split"]))
        manifest = self.manifest.assign(split=[split_of.get(str(Path(p).resolve()), "") for p in self.manifest["path"]])
        clash = (manifest["split"] == EXCLUDED) & (manifest["exclusion"] == "")
        counts = manifest.loc[manifest["exclusion"] != "", "exclusion"].str.replace(r"^view .*", "view", regex=True).value_counts()
        for reason, count in counts.items():
            self.excluded[reason] = int(count)
        self.excluded[FIXED_SPLIT_CLASH] = int(clash.sum())
        if self.duplicate_pairs is not None:
            self.duplicate_summary = summarise_duplicates(self.duplicate_pairs, manifest[["path", "split"]])
            if self.duplicate_summary["pairs_across_splits"]:
                log.warning("%s: %d duplicate pairs straddle two splits of %s (an older split file?); see the data report",
                            self.name, self.duplicate_summary["pairs_across_splits"], self.split_path)

    def _check_classes(self, labels: pd.Series, where: str) -> None:
        """A single-label task needs images of at least two classes: one class trains nothing and crashes the
        metrics, so it is an error naming what was found, before a split is written or any training starts."""
        present = sorted(set(labels))
        if not self.multilabel and len(present) < 2:
            found = f"only the class {present[0]!r}" if present else "no class"
            raise ManifestError(f"{self.name}: a classification task needs at least two classes, but {where} hold {found}; "
                                "check the dataset folder and the class options")

    def _resolve_classes(self, frame: pd.DataFrame) -> list[str]:
        """The requested classes, else the class map's, else the reader's in its order (only those with images
        in train/val/test for a single-label task: reference or excluded rows add none), others after them."""
        if self.requested_classes:
            return list(self.requested_classes)
        if self.class_map:
            return [c for c in dict.fromkeys(self.class_map.values()) if c is not None]
        if self.multilabel:
            return list(self.classes)
        present = set(frame.loc[frame["split"].isin(USED_SPLITS), "label"])
        return [c for c in self.classes if c in present] + sorted(present - set(self.classes))

    def _in_task(self, label: str) -> bool:
        return True if self.multilabel else label in self.class_names

    # ----- Datasets and loaders -----
    def _dataset(self, split: str, cache: CachedImages) -> CachedImageDataset:
        frame = self.frames[split]
        inputs = {"mean": self.mean, "std": self.std, "normalization": self.normalization, "channels": self.channels}
        eval_transform = build_transform(None, **inputs)
        transform = eval_transform
        augment_mask = None
        if split == "train" and self.augmentation not in (None, "none"):
            transform = build_transform(self.augmentation, seed=self.sampling_seed, **inputs)
            if self.augment_classes:
                augment_mask = frame["label"].isin(self.augment_classes).to_numpy()
        targets = self.reader.encode_frame(frame, self.class_names)
        return CachedImageDataset(cache.array_path, frame["row"].to_numpy(), targets, transform, augment_mask, eval_transform)

    def _loader(self, dataset, *, shuffle: bool = False, sampler=None, batch_size: int | None = None) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size or self.eval_batch_size, shuffle=shuffle if sampler is None else False,
                          sampler=sampler, num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          pin_memory=torch.cuda.is_available())

    def train_sampler(self):
        factors = expansion_factors(self.expansion, self.class_names) if self.expansion else None
        return train_sampler(self.datasets["train"].targets, self.balanced_sampling, seed=self.sampling_seed, factors=factors,
                             per_class=self.balanced_per_class)

    def train_dataloader(self) -> DataLoader:
        if self.pair_sampling is not None:
            loader = pair_loader(self.datasets["train"], self.pair_sampling, pairs_per_batch=self.batch_size,
                                 seed=self.sampling_seed, num_workers=self.num_workers)
        else:
            loader = self._loader(self.datasets["train"], shuffle=True, sampler=self.train_sampler(), batch_size=self.batch_size)
        self._train_sampler = loader.sampler
        if self._restored_epoch is not None and hasattr(loader.sampler, "epoch"):
            loader.sampler.epoch, self._restored_epoch = self._restored_epoch, None
        return loader

    # ----- checkpoint state: where the training draw stands -----
    def state_dict(self) -> dict[str, Any]:
        """Saved in every training checkpoint: the epoch the balanced, expansion or pair sampler draws next (its draw is a
        function of (seed, epoch)) and the train augmentation's generators, so a run resumed from a checkpoint draws
        the epochs an uninterrupted run would. The generators are this process's: with ``num_workers`` above 0 each
        DataLoader worker seeds its own stream (datasets.py), which a resumed run starts afresh."""
        state: dict[str, Any] = {}
        if isinstance(getattr(self._train_sampler, "epoch", None), int):
            state["sampler_epoch"] = self._train_sampler.epoch
        if self.datasets:
            state["augmentation"] = generator_states(self.datasets["train"].transform)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored_epoch = state_dict.get("sampler_epoch")  # for the sampler the next train_dataloader() builds
        if state_dict.get("augmentation") and self.datasets:
            set_generator_states(self.datasets["train"].transform, state_dict["augmentation"])

    def train_eval_dataloader(self) -> DataLoader:
        """The train split in order with eval transforms (class templates, feature extraction, t-SNE)."""
        if not hasattr(self, "_train_eval"):
            train = self.datasets["train"]
            self._train_eval = CachedImageDataset(train.array_path, train.rows, train.targets, train.eval_transform or train.transform)
        return DataLoader(self._train_eval, batch_size=self.eval_batch_size, shuffle=False, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["val"])

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["test"])

    def in_source_test_dataloader(self) -> DataLoader:
        """A LOSO split's in-distribution test of the training sources (eval transform, like test)."""
        if IN_SOURCE_TEST not in self.datasets:
            raise ValueError(f"{self.name}: the split {self.split_path} has no {IN_SOURCE_TEST} images (only a held_out split with "
                             "test_fraction > 0 has them)")
        return self._loader(self.datasets[IN_SOURCE_TEST])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> dict[str, Any]:
        """What a result file records about the data (describe.py)."""
        return describe_stage.describe(self)

    def input_normalization(self) -> dict[str, Any]:
        """The input preprocessing a result records and an external evaluation repeats: kind, channels, mean, std."""
        mean, std = normalization_values(self.normalization, self.mean, self.std)
        return {"kind": self.normalization, "channels": self.channels, "mean": mean, "std": std}
