"""Combined datasets: several DataModules read as one task, with harmonised labels and duplicates kept together.

A combined dataset is an ordinary CXRDataModule whose manifest concatenates its components' manifests, so the
base builds one preprocessing cache and one shared split for all of them. Per component (``Component``):

- ``labels``: a label map from the component's labels to the task's; labels not in the map are left out and
  counted (``excluded["<prefix>:label_outside_task"]``). Multi-label tasks map each '|'-joined finding; a finding
  mapped to "" is dropped ("No Finding" -> no positive finding).
- ``prefix``: patient ids become ``<prefix>:<id>`` (two sources never share a patient by accident) and the manifest
  column ``component`` holds it; ``source`` keeps the component's own source column (COVIDx lines name cohen,
  rsna, ...).
- ``official_split``: keep the component's published split (default) or draw its images like the rest. When any
  component has an official test list, the others' images only go to train/val (the weighted-CE paper adds the
  Cohen images to training only).
- ``role="reference"``: images read only for duplicate and view look-up, never split or trained on.

Duplicates (datamodules/duplicates.py: identical bytes, or pHash distance <= ``duplicate_distance`` and pixel
correlation >= ``duplicate_correlation``) are found on the cache before the split is drawn. Every patient is
joined with every image that duplicates one of its images (connected components); the split is drawn over these
groups (manifest column ``group_id``, see splits.py), so duplicates never straddle train/val/test. Where a split
is fixed (an official test list), the rest of a test image's group is removed from training and counted
(``excluded["duplicate_or_patient_of_fixed_split"]``); pairs that still straddle splits (an old split file, two
fixed lists) are counted and warned about. ``describe()`` (the result JSON) and the data report list them all.
An image without a view inherits the view of a duplicate that has one (``view_source``), so ``exclude_views``
can remove the lateral views a collection does not label (the twice-transfer paper removes them).

Roots. A combined dataset takes one data root, under which each component is found by its own
``folder_names`` (``cohen-covid-chestxray/``, ``COVID-19_Radiography_Dataset/``, ...). A component elsewhere is
given in the suite's dataset entry::

    datasets:
      - name: wce_covidxray5k_cohen
        options:
          component_roots: {cohen: /data/covid-chestxray-dataset, covidx5k: /data/COVID-XRay-5K}
          component_options: {covidx: {images_dir: /data/covidx/images}}

(keys are component prefixes). Split CSV paths are relative to the deepest folder holding every component.
``combined`` is the generic module (components given in ``options.components``); the presets below are the
derived tasks of the papers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from datamodules.base import CXRDataModule, DatasetNotFoundError
from datamodules.cache import ImageCache
from datamodules.duplicates import DEFAULT_MAX_DISTANCE, DEFAULT_MIN_CORRELATION, duplicate_groups, find_duplicates
from datamodules.locking import file_lock
from datamodules.manifest import COVID, NON_COVID, NORMAL, PNEUMONIA, ManifestError, make_manifest, multilabel_strata
from datamodules.splits import EXCLUDED, SPLITS, read_split_csv

log = logging.getLogger(__name__)

REFERENCE = "reference"
FIXED_SPLIT_CLASH = "duplicate_or_patient_of_fixed_split"


@dataclass(frozen=True)
class Component:
    """One dataset inside a combined task (see the module docstring)."""

    dataset: str
    prefix: str
    labels: dict[str, str] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    official_split: bool = True
    role: str = "task"
    required: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Component:
        unknown = set(data) - {f for f in cls.__dataclass_fields__}
        if unknown or "dataset" not in data:
            raise ValueError(f"combined: component {data!r}: needs 'dataset' (and may have prefix, labels, options, official_split, role, required); unknown keys {sorted(unknown)}")
        return cls(**{"prefix": data["dataset"], **data})


class CombinedDataModule(CXRDataModule):
    """Several datasets as one task. Presets set ``components`` and ``classes``; ``combined`` takes them as options.

    Args:
        components: list of component dicts (``dataset``, ``prefix``, ``labels``, ``options``, ``official_split``,
            ``role``, ``required``) for the generic ``combined``; presets define their own.
        component_roots: ``{prefix: folder}`` for components that are not under the data root.
        component_options: ``{prefix: {option: value}}`` merged into the components' constructor options.
        duplicate_distance / duplicate_correlation: near-duplicate thresholds (datamodules/duplicates.py).
        duplicate_scope: ``"all"`` pairs or only ``"cross_source"`` pairs (between components).
        exclude_views: views removed after view inheritance from duplicates (e.g. ``["L"]``).
    """

    name = "combined"
    components: tuple[Component, ...] = ()
    exclude_views: tuple[str, ...] = ()

    def __init__(
        self,
        root,
        *,
        components: list[dict] | None = None,
        classes: list[str] | None = None,
        multilabel: bool | None = None,
        component_roots: dict[str, str] | None = None,
        component_options: dict[str, dict] | None = None,
        duplicate_distance: int = DEFAULT_MAX_DISTANCE,
        duplicate_correlation: float = DEFAULT_MIN_CORRELATION,
        duplicate_scope: str = "all",
        exclude_views: list[str] | None = None,
        **kwargs,
    ):
        super().__init__(root, **kwargs)
        if components is not None:
            self.components = tuple(Component.from_dict(c) for c in components)
        if classes is not None:
            self.classes = tuple(classes)
        if multilabel is not None:
            self.multilabel = bool(multilabel)
        if not self.components:
            raise ValueError(f"{self.name}: no components; give options.components (a list of {{dataset, prefix, labels}})")
        prefixes = [c.prefix for c in self.components]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError(f"{self.name}: component prefixes must be unique, got {prefixes}")
        unknown = set(component_roots or {}) | set(component_options or {})
        if unknown - set(prefixes):
            raise ValueError(f"{self.name}: component_roots/component_options name unknown components {sorted(unknown - set(prefixes))}; known: {prefixes}")
        self.component_roots = {k: Path(v).expanduser() for k, v in (component_roots or {}).items()}
        self.component_options = component_options or {}
        if duplicate_scope not in ("all", "cross_source"):
            raise ValueError(f"{self.name}: duplicate_scope must be 'all' or 'cross_source', not {duplicate_scope!r}")
        self.duplicate_distance = int(duplicate_distance)
        self.duplicate_correlation = float(duplicate_correlation)
        self.duplicate_scope = duplicate_scope
        if exclude_views is not None:
            self.exclude_views = tuple(exclude_views)
        self._image_root: Path | None = None
        self.duplicate_pairs = pd.DataFrame()
        self.duplicate_summary: dict[str, Any] = {}
        self.component_counts: dict[str, int] = {}

    # ----- where the data is -----
    @classmethod
    def locate(cls, data_root: str | Path) -> Path:
        """The data root itself: components are found under it when the manifest is built (errors name each)."""
        data_root = Path(data_root).expanduser()
        if not data_root.is_dir():
            raise DatasetNotFoundError(f"{cls.name}: data root {data_root} does not exist")
        return data_root

    def component_root(self, component: Component) -> Path:
        if component.prefix in self.component_roots:
            return self.component_roots[component.prefix]
        from datamodules import get_datamodule_class

        return get_datamodule_class(component.dataset).locate(self.root)

    @property
    def image_root(self) -> Path:
        return self._image_root or self.root

    @property
    def variant(self) -> str:
        tag = f"hd{self.duplicate_distance}-r{self.duplicate_correlation:g}"
        if self.duplicate_scope != "all":
            tag += "-xsrc"
        if type(self) is CombinedDataModule:  # the generic module: its components are part of its identity
            spec = json.dumps([asdict(c) for c in self.components] + [list(self.classes)], sort_keys=True, default=str)
            tag = hashlib.sha256(spec.encode()).hexdigest()[:8] + "-" + tag
        return tag

    # ----- the manifest -----
    def build_manifest(self) -> pd.DataFrame:
        frames, roots = [], [self.root]
        self.manifest_excluded = {}
        self.missing = self.missing.iloc[0:0]
        for component in self.components:
            part, used_roots = self._component_manifest(component)
            if part is None:
                continue
            frames.append(part)
            roots += used_roots
        if not frames:
            raise DatasetNotFoundError(f"{self.name}: none of its components was found under {self.root}")
        manifest = pd.concat(frames, ignore_index=True)
        # two components name the same file (e.g. COVIDx reading the Cohen folder): with two task labels it is left
        # out (counted as conflicting_labels), else the first row is kept
        task = manifest["role"] != REFERENCE
        kept = self.drop_conflicting_labels(manifest[task], origin=f"the components of {self.name} ({', '.join(c.prefix for c in self.components)})")
        manifest = manifest[~(task & ~manifest["path"].isin(kept["path"]))]
        repeated = manifest["path"].duplicated()
        if repeated.any():
            self.manifest_excluded["same_file_in_two_components"] = int(repeated.sum())
            manifest = manifest[~repeated]
        manifest = self.screen_paths(make_manifest(self.select(manifest.reset_index(drop=True)), origin=self.root))
        if self.multilabel:  # split strata over the whole task, not per component (see splits.py, multilabel_strata)
            manifest["stratum"] = multilabel_strata(manifest["label"], no_finding=("No Finding", ""))
        elif "stratum" in manifest.columns:  # a component's own strata mean nothing once its labels are mapped
            manifest = manifest.drop(columns="stratum")
        self._image_root = Path(os.path.commonpath([str(Path(r).resolve()) for r in roots]))
        self.component_counts = {k: int(v) for k, v in manifest["component"].value_counts().sort_index().items()}
        manifest = self._join_duplicates(manifest)
        return self.fix_splits(manifest)

    def _component_manifest(self, component: Component) -> tuple[pd.DataFrame | None, list[Path]]:
        from datamodules import get_datamodule_class

        cls = get_datamodule_class(component.dataset)
        try:
            root = self.component_root(component)
        except DatasetNotFoundError as error:
            if component.role == REFERENCE or not component.required:
                log.warning("%s: optional component %s not found, left out (%s)", self.name, component.prefix, error)
                return None, []
            raise DatasetNotFoundError(f"{self.name}: component {component.prefix!r} ({component.dataset}): {error}; "
                                       f"or give options.component_roots.{component.prefix}") from None
        options = {**component.options, **self.component_options.get(component.prefix, {})}
        reader = cls(root, cache_dir=self.cache_dir, split_dir=self.split_dir, image_size=self.image_size, **options)
        part = reader.build_manifest().copy()
        for reason, count in reader.manifest_excluded.items():
            self.manifest_excluded[f"{component.prefix}:{reason}"] = int(count)
        self.missing = pd.concat([self.missing, reader.missing], ignore_index=True).drop_duplicates("path")
        self.label_conflicts = pd.concat([self.label_conflicts, reader.label_conflicts], ignore_index=True).drop_duplicates()
        if component.labels is not None and component.role != REFERENCE:
            mapped = part["label"].map(lambda label: self._map_label(label, component.labels))
            outside = mapped.isna()
            if outside.any():
                self.manifest_excluded[f"{component.prefix}:label_outside_task"] = int(outside.sum())
            part = part[~outside].assign(label=mapped[~outside])
        if part.empty:
            raise ManifestError(f"{self.name}: component {component.prefix!r} has no images with a label of the task ({', '.join(self.classes)})")
        part["patient_id"] = component.prefix + ":" + part["patient_id"].astype(str)
        part["component"] = component.prefix
        part["source"] = part["source"].replace("", component.prefix)
        part["role"] = component.role
        part["exclusion"] = REFERENCE if component.role == REFERENCE else ""
        if not component.official_split:
            part["official_split"] = ""
        part.loc[part["role"] == REFERENCE, "official_split"] = EXCLUDED
        image_root = getattr(reader, "image_root", root)
        return part, [Path(root), Path(image_root)]

    def _map_label(self, label: str, labels: dict[str, str]) -> str | None:
        if not self.multilabel:
            return labels.get(label)
        findings = [labels.get(f) for f in str(label).split("|")]
        if all(f is None for f in findings):
            return None
        return "|".join(dict.fromkeys(f for f in findings if f))

    def select(self, manifest: pd.DataFrame) -> pd.DataFrame:
        """Preset hook run before caching: which images form the task (default: all)."""
        return manifest

    def fix_splits(self, manifest: pd.DataFrame) -> pd.DataFrame:
        """Preset hook run after duplicate grouping: set ``official_split`` for a paper's fixed test set."""
        return manifest

    # ----- duplicates -----
    def _join_duplicates(self, manifest: pd.DataFrame) -> pd.DataFrame:
        """Find duplicates on the cache, inherit views, exclude views, and give every row its ``group_id``."""
        with file_lock(self.cache_dir / f"{self.name}.lock"):  # the base reuses this cache (same image set)
            cache = ImageCache(self.cache_dir, self.name, self.image_size).build(manifest)
        sources = manifest.set_index("path")["component"]
        pairs = find_duplicates(cache, sources=sources, scope=self.duplicate_scope, max_distance=self.duplicate_distance,
                                min_correlation=self.duplicate_correlation)
        position = pd.Series(np.arange(len(manifest)), index=manifest["path"])
        a, b = position[pairs["path_a"]].to_numpy(), position[pairs["path_b"]].to_numpy()
        manifest = self._inherit_views(manifest, a, b)
        manifest["group_id"] = duplicate_groups(manifest, pairs)  # patients joined with their duplicates
        # source_a/source_b name the components; labels are the task's (a conflict is worth a look); a reference
        # image has no task label (None)
        labels = manifest["label"].where(manifest["role"] != REFERENCE, None).to_numpy(dtype=object)
        self.duplicate_pairs = pairs.drop(columns=["row_a", "row_b"]).assign(label_a=labels[a], label_b=labels[b])
        joined = int((manifest.groupby("group_id")["patient_id"].nunique() > 1).sum())
        log.info("%s: %d duplicate pairs (%d across components); %d groups join several patients", self.name, len(pairs),
                 int((pairs["source_a"] != pairs["source_b"]).sum()), joined)
        return manifest

    def _inherit_views(self, manifest: pd.DataFrame, a: np.ndarray, b: np.ndarray) -> pd.DataFrame:
        manifest = manifest.copy()
        manifest["view_source"] = ""
        view = manifest["view"].to_numpy(dtype=object)
        for x, y in ((a, b), (b, a)):
            take = (view[x] == "") & (view[y] != "")
            for i, j in zip(x[take], y[take]):
                if manifest.at[i, "view_source"] == "":
                    manifest.at[i, "view"] = view[j]
                    manifest.at[i, "view_source"] = manifest.at[j, "path"]
        if self.exclude_views:
            drop = manifest["view"].str.lower().isin({v.lower() for v in self.exclude_views}) & (manifest["exclusion"] == "")
            manifest.loc[drop, "exclusion"] = "view " + manifest.loc[drop, "view"]
            manifest.loc[drop, "official_split"] = EXCLUDED
            if drop.any():
                log.info("%s: %d images of an excluded view (%s) left out, %d of them known from a duplicate", self.name,
                         int(drop.sum()), ", ".join(self.exclude_views), int((drop & (manifest["view_source"] != "")).sum()))
        return manifest

    # ----- setup, report -----
    def _resolve_classes(self, frame: pd.DataFrame) -> list[str]:
        if self.requested_classes or self.multilabel:
            return super()._resolve_classes(frame)
        present = set(frame.loc[frame["split"].isin(SPLITS), "label"])  # reference/excluded rows do not add classes
        return [c for c in self.classes if c in present] + sorted(present - set(self.classes))

    def setup(self, stage: str | None = None) -> None:
        first = not self.frames
        super().setup(stage)
        if not first:
            return
        split = read_split_csv(self.split_path)
        split_of = dict(zip([str((self.image_root.resolve() / i)) for i in split["image"]], split["split"]))
        manifest = self.manifest.assign(split=[split_of.get(str(Path(p).resolve()), "") for p in self.manifest["path"]])
        clash = (manifest["split"] == EXCLUDED) & (manifest["exclusion"] == "")
        counts = manifest.loc[manifest["exclusion"] != "", "exclusion"].str.replace(r"^view .*", "view", regex=True).value_counts()
        for reason, count in counts.items():
            self.excluded[reason] = int(count)
        self.excluded[FIXED_SPLIT_CLASH] = int(clash.sum())
        self.duplicate_summary = summarise_duplicates(self.duplicate_pairs, manifest[["path", "split"]])
        if self.duplicate_summary["pairs_across_splits"]:
            log.warning("%s: %d duplicate pairs straddle two splits of %s (an older split file?); see the data report",
                        self.name, self.duplicate_summary["pairs_across_splits"], self.split_path)

    def describe(self) -> dict[str, Any]:
        description = super().describe()
        description["components"] = self.component_counts
        description["duplicates"] = {k: v for k, v in self.duplicate_summary.items() if k != "pairs"}
        return description


def summarise_duplicates(pairs: pd.DataFrame, splits: pd.DataFrame) -> dict[str, Any]:
    """Counts of duplicate pairs, and the pairs with the split of each side (``splits``: path, split)."""
    split_of = dict(zip(splits["path"], splits["split"]))
    pairs = pairs.assign(split_a=pairs["path_a"].map(split_of).fillna(""), split_b=pairs["path_b"].map(split_of).fillna(""))
    used = pairs["split_a"].isin(SPLITS) & pairs["split_b"].isin(SPLITS)
    across = used & (pairs["split_a"] != pairs["split_b"])
    cross = pairs["source_a"] != pairs["source_b"]
    if "label_a" in pairs.columns:
        conflicts = (pairs["label_a"] != pairs["label_b"]) & pairs["label_a"].notna() & pairs["label_b"].notna()
    else:
        conflicts = pd.Series(False, index=pairs.index)
    return {
        "pairs": pairs,
        "pair_count": int(len(pairs)),
        "identical": int((pairs["kind"] == "identical").sum()),
        "near": int((pairs["kind"] == "near").sum()),
        "cross_source": int(cross.sum()),
        "by_sources": {f"{a}~{b}": int(n) for (a, b), n in pairs.groupby(["source_a", "source_b"]).size().items()} if len(pairs) else {},
        "label_conflicts": int(conflicts.sum()),
        "pairs_across_splits": int(across.sum()),
    }


# ----- the papers' derived tasks -----
def _identity(*labels: str) -> dict[str, str]:
    return {label: label for label in labels}


class SiameseCovidxDataModule(CombinedDataModule):
    """Siamese COVID-Net's 3-class COVIDx task (Castro Sundin et al., section 3.1): COVID-19 / normal / pneumonia
    from the COVID-Net split files and the image folder; the published test file is the test split, validation is
    drawn from the training file's patients (the paper: 20 % per class). Deviation: the paper's Table 1 counts
    (test 31/885/594) are an early COVIDx release; the default reads v5 (option component_options.covidx.version)."""

    name = "siamese_covidx"
    classes = (COVID, NORMAL, PNEUMONIA)
    components = (Component("covidx", "covidx", labels=_identity(COVID, NORMAL, PNEUMONIA), options={"version": "5", "task": "three_class"}),)


class TwiceTransferRadiographyDataModule(CombinedDataModule):
    """Twice-transfer paper's 3-class task (Bassi & Attux, sections 2.2 and 4.2): the COVID-19 Radiography Database's
    COVID-19, normal and viral pneumonia images (Lung_Opacity left out), lateral views removed, 60 test images
    drawn per class (``test_per_class``) and the rest split into train/val.

    The database labels no views. When the ieee8023 collection (``cohen_covid``) lies under the data root it is read
    as a reference: a Radiography image that duplicates a Cohen image takes its view, and lateral ones are removed
    (the paper found 13 among its 219 COVID-19 images). Without it, no lateral view can be recognised: reported.
    Class names follow the paper (Normal, Viral Pneumonia, COVID-19)."""

    name = "twice_transfer_radiography"
    classes = (NORMAL, "viral_pneumonia", COVID)
    exclude_views = ("L",)
    components = (
        Component("covid19_radiography", "radiography", labels={COVID: COVID, NORMAL: NORMAL, PNEUMONIA: "viral_pneumonia"},
                  options={"task": "three_class"}),
        Component("cohen_covid", "cohen", options={"views": None, "task": "binary"}, role=REFERENCE, required=False),
    )

    def __init__(self, root, *, test_per_class: int | None = 60, **kwargs):
        super().__init__(root, **kwargs)
        self.test_per_class = test_per_class

    @property
    def variant(self) -> str:
        return super().variant + (f"-test{self.test_per_class}" if self.test_per_class else "")

    def fix_splits(self, manifest: pd.DataFrame) -> pd.DataFrame:
        if not self.test_per_class:
            return manifest
        rng = np.random.default_rng([self.split_seed, int(self.test_per_class)])
        manifest = manifest.copy()
        for label in self.classes:
            pool = np.flatnonzero((manifest["label"] == label).to_numpy() & (manifest["official_split"] == "").to_numpy())
            take = min(int(self.test_per_class), len(pool) // 3)  # a small class keeps most of its images for training
            manifest.loc[rng.choice(pool, take, replace=False), "official_split"] = "test"
        return manifest


class TransferChestXray14CovidDataModule(CombinedDataModule):
    """The transfer paper's 15-class task (Morales et al., "Transfer learning for COVID-19 detection", section 5.3):
    the 14 ChestX-ray14 findings plus COVID-19 (frontal Cohen images), multi-label, on a balanced set with at least
    ``images_per_class`` images of each class (drawn rarest class first, seeded by ``subset_seed``; fewer where a
    class has fewer). 'No Finding' images are not classes of the paper; ``no_finding_images`` adds that many.
    Both sources are split by the suite's fractions (ChestX-ray14's official test list is not used, so that
    COVID-19 images reach the test split too)."""

    name = "transfer_chestxray14_covid"
    multilabel = True
    classes = (
        "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
        "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia", COVID,
    )
    components = (
        Component("chestxray14", "nih", labels={**_identity(*classes[:-1]), "No Finding": ""}, official_split=False),
        Component("cohen_covid", "cohen", labels={COVID: COVID}, options={"task": "three_class"}),
    )

    def __init__(self, root, *, images_per_class: int | None = 200, no_finding_images: int = 0, subset_seed: int = 0, **kwargs):
        super().__init__(root, **kwargs)
        self.images_per_class = images_per_class
        self.no_finding_images = int(no_finding_images)
        self.subset_seed = int(subset_seed)

    @property
    def variant(self) -> str:
        subset = f"-n{self.images_per_class}s{self.subset_seed}" + (f"nf{self.no_finding_images}" if self.no_finding_images else "") if self.images_per_class else ""
        return super().variant + subset

    def select(self, manifest: pd.DataFrame) -> pd.DataFrame:
        return balanced_multilabel_subset(manifest, self.classes, self.images_per_class, no_finding=self.no_finding_images, seed=self.subset_seed)


class WceCovidXray5kCohenDataModule(CombinedDataModule):
    """The weighted-CE paper's data (section III, Table I): COVID-Xray-5k (COVID-19 / non-COVID, its official test
    set of 40 + 3000 images is the test split) with the frontal Cohen images added to training (binary labels).
    The COVID-Xray-5k COVID-19 images come from the Cohen collection, so Cohen copies of test images are removed
    from training (counted as ``duplicate_or_patient_of_fixed_split``); the paper did not check this."""

    name = "wce_covidxray5k_cohen"
    classes = (COVID, NON_COVID)
    components = (
        Component("covidx_ray_5k", "covidx5k", labels=_identity(COVID, NON_COVID)),
        Component("cohen_covid", "cohen", labels=_identity(COVID, NON_COVID), options={"task": "binary"}),
    )


def balanced_multilabel_subset(manifest: pd.DataFrame, classes, per_class: int | None, *, no_finding: int = 0, seed: int = 0) -> pd.DataFrame:
    """Rows such that every class has at least ``per_class`` positive images where it can: classes are filled
    rarest first with randomly drawn images holding them (images already drawn for another class count)."""
    if not per_class:
        return manifest
    rng = np.random.default_rng(seed)
    findings = manifest["label"].str.split("|")
    hot = np.stack([findings.map(lambda f, c=c: c in f).to_numpy() for c in classes], axis=1)
    chosen = np.zeros(len(manifest), dtype=bool)
    for column in np.argsort(hot.sum(axis=0), kind="stable"):
        need = int(per_class) - int((hot[:, column] & chosen).sum())
        pool = np.flatnonzero(hot[:, column] & ~chosen)
        if need > 0 and len(pool):
            chosen[rng.choice(pool, min(need, len(pool)), replace=False)] = True
    empty = np.flatnonzero(~hot.any(axis=1) & ~chosen)
    if no_finding and len(empty):
        chosen[rng.choice(empty, min(no_finding, len(empty)), replace=False)] = True
    return manifest[chosen].reset_index(drop=True)


PRESETS = (SiameseCovidxDataModule, TwiceTransferRadiographyDataModule, TransferChestXray14CovidDataModule, WceCovidXray5kCohenDataModule)
