"""The papers' combined tasks: presets of the generic composition (compose.py), each with its paper's labels,
components and fixed test sets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from datamodules.combined.compose import CombinedReader, Component
from datamodules.grouping import REFERENCE
from datamodules.manifest import COVID, NON_COVID, NORMAL, PNEUMONIA
from datamodules.readers import READERS

def _identity(*labels: str) -> dict[str, str]:
    return {label: label for label in labels}


@READERS.register()
class SiameseCovidxReader(CombinedReader):
    """Siamese COVID-Net's 3-class COVIDx task (Castro Sundin et al., section 3.1): COVID-19 / normal / pneumonia
    from the COVID-Net split files and the image folder; the published test file is the test split, validation is
    drawn from the training file's patients (the paper: 20 % per class). Deviation: the paper's Table 1 counts
    (test 31/885/594) are an early COVIDx release; the default reads v5 (option component_options.covidx.version)."""

    name = "siamese_covidx"
    classes = (COVID, NORMAL, PNEUMONIA)
    components = (Component("covidx", "covidx", labels=_identity(COVID, NORMAL, PNEUMONIA), options={"version": "5", "task": "three_class"}),)


@READERS.register()
class TwiceTransferRadiographyReader(CombinedReader):
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

    def fix_splits(self, manifest: pd.DataFrame, *, split_seed: int) -> pd.DataFrame:
        if not self.test_per_class:
            return manifest
        rng = np.random.default_rng([split_seed, int(self.test_per_class)])
        manifest = manifest.copy()
        for label in self.classes:
            pool = np.flatnonzero((manifest["label"] == label).to_numpy() & (manifest["official_split"] == "").to_numpy())
            take = min(int(self.test_per_class), len(pool) // 3)  # a small class keeps most of its images for training
            manifest.loc[rng.choice(pool, take, replace=False), "official_split"] = "test"
        return manifest


@READERS.register()
class TransferChestXray14CovidReader(CombinedReader):
    """The transfer paper's 15-class task (Morales et al., "Transfer learning for COVID-19 detection", section 5.3):
    the 14 ChestX-ray14 findings plus COVID-19 (frontal Cohen images), multi-label. The paper's balanced set ("over
    200 samples of each of the 15 diseases") is meant as the data options ``balanced_sampling: multilabel`` and
    ``balanced_per_class: 200``, a fresh balanced draw from the whole train split every epoch (sampling.py).
    ``images_per_class`` keeps the older fixed subset instead (drawn once, rarest class first, seeded by
    ``subset_seed``); ``no_finding_images`` then adds that many 'No Finding' images (not classes of the paper).
    Both sources are split by the suite's fractions (ChestX-ray14's official test list is not used, so that
    COVID-19 images reach the test split too). Without data, ``synthetic_chestxray14`` with COVID-19 stands in."""

    name = "transfer_chestxray14_covid"
    multilabel = True
    classes = (
        "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
        "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia", COVID,
    )
    synthetic_stand_in = ("synthetic_chestxray14", {"extra_findings": [COVID]})
    components = (
        Component("chestxray14", "nih", labels={**_identity(*classes[:-1]), "No Finding": ""}, official_split=False),
        Component("cohen_covid", "cohen", labels={COVID: COVID}, options={"task": "three_class"}),
    )

    def __init__(self, root, *, images_per_class: int | None = None, no_finding_images: int = 0, subset_seed: int = 0, **kwargs):
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


@READERS.register()
class CaeCovidPneumoniaReader(CombinedReader):
    """The CAE paper's 3-class task (Mahalingam & Pandraju, section 3.2): COVID-19 from the COVID-19 Radiography
    Database, the Cohen collection and agchung's Figure 1 and Actualmed sets; normal from the Radiography Database;
    pneumonia (bacterial and viral) from Kermany's paediatric set. Kermany's normals and the Radiography Database's
    viral pneumonias are left out and counted, as the paper took each class from the named sources only. The
    sources copy each other (Cohen images lie in Radiography's COVID folder), so duplicates are joined before the
    split as in every combined task; the paper did not check this. Figure 1 and Actualmed are read when present.
    Every image is drawn by the suite's split fractions (the paper: 73/13.5/13.5 at random), so no published test
    list is kept; without data the synthetic phantoms stand in."""

    name = "cae_covid_pneumonia"
    classes = (COVID, NORMAL, PNEUMONIA)
    components = (
        Component("covid19_radiography", "radiography", labels=_identity(COVID, NORMAL), options={"task": "three_class"}, official_split=False),
        Component("kermany_pneumonia", "kermany", labels={PNEUMONIA: PNEUMONIA}, options={"task": "binary"}, official_split=False),
        Component("cohen_covid", "cohen", labels=_identity(COVID), options={"task": "three_class"}, official_split=False),
        Component("figure1_covid", "figure1", labels=_identity(COVID), options={"task": "three_class"}, official_split=False, required=False),
        Component("actualmed_covid", "actualmed", labels=_identity(COVID), options={"task": "three_class"}, official_split=False, required=False),
    )


@READERS.register()
class WceCovidXray5kCohenReader(CombinedReader):
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


@READERS.register()
class CovidNormalSourcesReader(CombinedReader):
    """COVID-19 vs normal from several sources, for leave-one-source-out tests (``split: {by: source, test: each}``,
    benchmark/held_out.py): COVID-19 and normal images of the COVID-19 Radiography Database and of the Cohen
    collection (its 'No Finding' images), Figure 1 and Actualmed COVID-19 images when present, and Kermany's
    paediatric normals. Each component is a source; held out in turn, each COVID-19 source with normals of its own
    is tested on images from a source the model never saw (Kermany, normals only, always trains). Official splits
    are not kept (a source split ignores them). Without data, phantoms of three sites stand in."""

    name = "covid_normal_sources"
    classes = (COVID, NORMAL)
    synthetic_stand_in = ("synthetic", {"sources": 3})  # their pneumonias are non-COVID under the suites' map
    components = (
        Component("covid19_radiography", "radiography", labels=_identity(COVID, NORMAL), options={"task": "three_class"}, official_split=False),
        Component("cohen_covid", "cohen", labels=_identity(COVID, NORMAL), options={"task": "three_class"}, official_split=False),
        Component("kermany_pneumonia", "kermany", labels=_identity(NORMAL), options={"task": "binary"}, official_split=False),
        Component("figure1_covid", "figure1", labels=_identity(COVID), options={"task": "three_class"}, official_split=False, required=False),
        Component("actualmed_covid", "actualmed", labels=_identity(COVID), options={"task": "three_class"}, official_split=False, required=False),
    )
