"""Combined datasets, the generic composition: several readers read as one task, with harmonised labels and
duplicates kept together.

A combined dataset is a reader whose manifest concatenates its components' manifests (each read by its own
reader, never a DataModule), so the one DataModule builds one preprocessing cache and one shared split for all of
them. Per component (``Component``):

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

Duplicates (the grouping stage, datamodules/grouping.py: identical bytes, or pHash distance <=
``duplicate_distance`` and pixel correlation >= ``duplicate_correlation``) are found on the cache before the split
is drawn; a combined reader always has them searched (``needs_duplicates``), as its manifest depends on them. Every patient is
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
``combined`` is the generic reader (components given in ``options.components``); presets.py holds the derived
tasks of the papers.
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

from datamodules.duplicates import DEFAULT_MAX_DISTANCE, DEFAULT_MIN_CORRELATION
from datamodules.grouping import REFERENCE, DuplicateSearch
from datamodules.lung_regions import LUNG_BOXES_COLUMN
from datamodules.manifest import ManifestError, make_manifest, multilabel_strata
from datamodules.missing import screen_paths
from datamodules.readers import READERS
from datamodules.readers.base import DatasetNotFoundError, Reader
from datamodules.splits import EXCLUDED

log = logging.getLogger(__name__)


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


@READERS.register()
class CombinedReader(Reader):
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
    ):
        super().__init__(root)
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
        self.duplicate_search = DuplicateSearch(duplicate_scope, int(duplicate_distance), float(duplicate_correlation), "component")
        self.duplicate_distance = int(duplicate_distance)
        self.duplicate_correlation = float(duplicate_correlation)
        self.duplicate_scope = duplicate_scope
        if exclude_views is not None:
            self.exclude_views = tuple(exclude_views)
        self._image_root: Path | None = None
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
        return READERS[component.dataset].locate(self.root)

    @property
    def image_root(self) -> Path:
        return self._image_root or self.root

    @property
    def variant(self) -> str:
        tag = f"hd{self.duplicate_distance}-r{self.duplicate_correlation:g}"
        if self.duplicate_scope != "all":
            tag += "-xsrc"
        if type(self) is CombinedReader:  # the generic module: its components are part of its identity
            spec = json.dumps([asdict(c) for c in self.components] + [list(self.classes)], sort_keys=True, default=str)
            tag = hashlib.sha256(spec.encode()).hexdigest()[:8] + "-" + tag
        return tag

    # ----- the manifest -----
    def build_manifest(self) -> pd.DataFrame:
        frames, roots = [], [self.root]
        self.reset()
        for component in self.components:
            part, used_roots = self._component_manifest(component)
            if part is None:
                continue
            frames.append(part)
            roots += used_roots
        if not frames:
            raise DatasetNotFoundError(f"{self.name}: none of its components was found under {self.root}")
        manifest = pd.concat(frames, ignore_index=True)
        if LUNG_BOXES_COLUMN in manifest.columns:  # only some components annotate lungs (Cohen); the others have none
            manifest[LUNG_BOXES_COLUMN] = manifest[LUNG_BOXES_COLUMN].fillna("")
        # two components name the same file (e.g. COVIDx reading the Cohen folder): with two task labels it is left
        # out (counted as conflicting_labels), else the first row is kept
        task = manifest["role"] != REFERENCE
        kept = self.drop_conflicting_labels(manifest[task], origin=f"the components of {self.name} ({', '.join(c.prefix for c in self.components)})")
        manifest = manifest[~(task & ~manifest["path"].isin(kept["path"]))]
        repeated = manifest["path"].duplicated()
        if repeated.any():
            self.manifest_excluded["same_file_in_two_components"] = int(repeated.sum())
            manifest = manifest[~repeated]
        manifest = screen_paths(self, make_manifest(self.select(manifest.reset_index(drop=True)), origin=self.root))
        if self.multilabel:  # split strata over the whole task, not per component (see splits.py, multilabel_strata)
            manifest["stratum"] = multilabel_strata(manifest["label"], no_finding=("No Finding", ""))
        elif "stratum" in manifest.columns:  # a component's own strata mean nothing once its labels are mapped
            manifest = manifest.drop(columns="stratum")
        self._image_root = Path(os.path.commonpath([str(Path(r).resolve()) for r in roots]))
        self.component_counts = {k: int(v) for k, v in manifest["component"].value_counts().sort_index().items()}
        return manifest

    def _component_manifest(self, component: Component) -> tuple[pd.DataFrame | None, list[Path]]:
        cls = READERS[component.dataset]
        try:
            root = self.component_root(component)
        except DatasetNotFoundError as error:
            if component.role == REFERENCE or not component.required:
                log.warning("%s: optional component %s not found, left out (%s)", self.name, component.prefix, error)
                return None, []
            raise DatasetNotFoundError(f"{self.name}: component {component.prefix!r} ({component.dataset}): {error}; "
                                       f"or give options.component_roots.{component.prefix}") from None
        options = {**component.options, **self.component_options.get(component.prefix, {})}
        reader = cls(root, **options)
        reader.missing_policy = self.missing_policy
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
        return part, [Path(root), Path(reader.image_root)]

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

    def fix_splits(self, manifest: pd.DataFrame, *, split_seed: int) -> pd.DataFrame:
        """Preset hook run after duplicate grouping: set ``official_split`` for a paper's fixed test set."""
        return manifest

    # ----- once the duplicates are known (the grouping stage, datamodules/grouping.py) -----
    needs_duplicates = True

    def after_duplicates(self, manifest: pd.DataFrame, pairs: pd.DataFrame, *, split_seed: int) -> pd.DataFrame:
        """Inherit views from duplicates, exclude views, then fix a paper's test set (``fix_splits``)."""
        position = pd.Series(np.arange(len(manifest)), index=manifest["path"])
        a, b = position[pairs["path_a"]].to_numpy(), position[pairs["path_b"]].to_numpy()
        return self.fix_splits(self._inherit_views(manifest, a, b), split_seed=split_seed)

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

    # ----- report -----
    def describe_extra(self, dm) -> dict[str, Any]:
        return {"components": self.component_counts, "duplicates": {k: v for k, v in dm.duplicate_summary.items() if k != "pairs"}}
