"""Leave-one-source-out splits (datamodules/source_split.py and CXRDataModule's ``held_out``): phantoms dealt to
three sites, a tiny combined task with planted copies across its components, and the Cohen sources."""

from pathlib import Path

import pandas as pd
import pytest

from conftest import load_maker
from datamodules import DATAMODULES
from datamodules.manifest import ManifestError
from datamodules.source_split import assign_source_splits, source_counts, sources_with_classes
from datamodules.splits import EXCLUDED, IN_SOURCE_TEST, read_split_csv

PHANTOMS = {"patients_per_class": 6, "sources": 3, "image_size": 32, "batch_size": 4}
TWO_CLASSES = {"COVID-19": "COVID-19", "normal": "normal"}
RADIOGRAPHY_AND_COHEN = [
    {"dataset": "covid19_radiography", "prefix": "radiography", "labels": TWO_CLASSES},
    {"dataset": "cohen_covid", "prefix": "cohen", "labels": TWO_CLASSES, "options": {"views": None}},
]


@pytest.fixture(scope="module")
def phantom_cache(tmp_path_factory):
    """One phantom set and cache for the module (generated once); each test writes its splits elsewhere."""
    return tmp_path_factory.mktemp("phantoms")


def _phantoms(cache, split_dir, **options):
    dm = DATAMODULES["synthetic"](cache_dir=cache, split_dir=split_dir, **{**PHANTOMS, **options})
    dm.prepare_data()
    dm.setup()
    return dm


def _split_with_sources(dm) -> pd.DataFrame:
    """The split CSV file itself, with each image's source from the manifest."""
    split = read_split_csv(dm.split_path)
    root = dm.image_root.resolve()
    source = {Path(p).resolve(): s for p, s in zip(dm.manifest["path"], dm.manifest[dm.source_field])}
    return split.assign(source=[source[root / image] for image in split["image"]])


def test_held_out_site_is_the_whole_test_split_and_never_trained_on(phantom_cache, tmp_path):
    dm = _phantoms(phantom_cache, tmp_path, held_out={"test": ["site1"]})
    split = _split_with_sources(dm)
    assert set(split["source"]) == {"site0", "site1", "site2"}
    held = split["source"] == "site1"
    assert (split.loc[held, "split"] == "test").all() and (split.loc[~held, "split"] != "test").all()
    others = split[split["split"].isin(["train", "val", IN_SOURCE_TEST])]
    assert not set(others["image"]) & set(split.loc[held, "image"])
    assert not set(others["patient_id"]) & set(split.loc[held, "patient_id"])
    assert {"train", "val", IN_SOURCE_TEST} <= set(split["split"])
    # every phantom patient is one site's, so no patient is shared and nothing is excluded
    assert split.groupby("patient_id")["source"].nunique().max() == 1 and EXCLUDED not in set(split["split"])

    batch = next(iter(dm.in_source_test_dataloader()))
    assert batch["image"].shape[1:] == (1, 32, 32)
    record = dm.describe()
    assert record["counts"][IN_SOURCE_TEST]["images"] == int((split["split"] == IN_SOURCE_TEST).sum())
    held_out = record["held_out"]
    assert held_out["field"] == "source" and held_out["test"] == ["site1"] and held_out["validation"] == "random"
    assert held_out["per_source"]["site1"] == {"test": int(held.sum())}
    assert sum(held_out["per_source"]["site0"].values()) == int((split["source"] == "site0").sum())
    assert held_out["duplicates_of_held_out"] == 0 and dm.excluded["duplicate_of_held_out_source"] == 0


def test_an_identical_copy_of_a_held_out_phantom_in_another_site_is_excluded_with_its_patient(tmp_path):
    dm = DATAMODULES["synthetic"](cache_dir=tmp_path / "cache", split_dir=tmp_path / "splits", held_out={"test": ["site1"]}, **PHANTOMS)
    manifest = dm.build_manifest()  # generates the phantoms; then one site0 image is overwritten by a site1 image's bytes
    original = manifest[manifest["source"] == "site1"].iloc[0]
    copy = manifest[(manifest["source"] == "site0") & (manifest["label"] == original["label"])].iloc[0]
    Path(copy["path"]).write_bytes(Path(original["path"]).read_bytes())
    dm.prepare_data()
    dm.setup()
    split = _split_with_sources(dm)
    patient = split["patient_id"] == copy["patient_id"]
    assert (split.loc[patient, "split"] == EXCLUDED).all()  # the copy, and its patient's other images with it
    assert set(split.loc[split["split"] == EXCLUDED, "patient_id"]) == {copy["patient_id"]}
    assert dm.excluded["duplicate_of_held_out_source"] == int(patient.sum()) == dm.describe()["held_out"]["duplicates_of_held_out"]
    assert dm.excluded["duplicate_or_patient_of_fixed_split"] == 0


def test_same_seed_same_file_and_each_held_out_source_its_own_file(phantom_cache, tmp_path):
    a = _phantoms(phantom_cache, tmp_path / "a", held_out={"test": ["site2"]}, split_seed=3)
    b = _phantoms(phantom_cache, tmp_path / "b", held_out={"test": ["site2"]}, split_seed=3)
    assert a.split_path.name == b.split_path.name and a.split_path.read_bytes() == b.split_path.read_bytes()
    names = {DATAMODULES["synthetic"](cache_dir=phantom_cache, **PHANTOMS, **extra).split_path.name
             for extra in ({}, {"held_out": {"test": ["site0"]}}, {"held_out": {"test": ["site1"]}}, {"held_out": {"test": ["site1", "site0"]}},
                           {"held_out": {"test": ["site1"], "validation": "source"}}, {"held_out": {"test": ["site1"], "field": "source"}},
                           {"held_out": {"test": ["a/b c"]}})}
    assert len(names) == 7
    assert "-loso-site1-valsource-auto" in " ".join(names) and "-loso-site0+site1" in " ".join(names)
    assert "-loso-a_b_c" in " ".join(names) and not any("/" in n for n in names)


def test_validation_source_holds_out_a_whole_training_site_as_val(phantom_cache, tmp_path):
    dm = _phantoms(phantom_cache, tmp_path, held_out={"test": ["site1"], "validation": "source"})
    split = _split_with_sources(dm)
    assert set(split.loc[split["source"] == "site0", "split"]) == {"val"}  # the first training site with two classes
    assert set(split.loc[split["split"] == "val", "source"]) == {"site0"}
    assert set(split.loc[split["source"] == "site2", "split"]) <= {"train", IN_SOURCE_TEST}
    assert dm.describe()["held_out"]["val_source"] == "site0"
    chosen = _phantoms(phantom_cache, tmp_path / "chosen", held_out={"test": ["site1"], "validation": "source", "val_source": "site2"})
    assert set(_split_with_sources(chosen).query("split == 'val'")["source"]) == {"site2"}


def test_unknown_source_is_an_error_naming_field_name_and_known_sources(phantom_cache, tmp_path):
    with pytest.raises(ManifestError, match=r"source='site9'.*site0 \(\d+ images\), site1 \(\d+ images\), site2"):
        _phantoms(phantom_cache, tmp_path, held_out={"test": ["site9"]})
    with pytest.raises(ManifestError, match=r"val_source: no image has source='site7'"):
        _phantoms(phantom_cache, tmp_path, held_out={"test": ["site1"], "validation": "source", "val_source": "site7"})
    with pytest.raises(ValueError, match="unknown keys"):
        DATAMODULES["synthetic"](cache_dir=phantom_cache, held_out={"test": ["site0"], "tset": 1})
    with pytest.raises(ValueError, match="val_source"):
        DATAMODULES["synthetic"](cache_dir=phantom_cache, held_out={"test": ["site0"], "val_source": "site1"})


def test_sites_change_only_the_source_column(phantom_cache):
    one = DATAMODULES["synthetic"](cache_dir=phantom_cache, patients_per_class=6).build_manifest()
    three = DATAMODULES["synthetic"](cache_dir=phantom_cache, patients_per_class=6, sources=3).build_manifest()
    assert set(one["source"]) == {"synthetic"}
    pd.testing.assert_frame_equal(one.drop(columns="source"), three.drop(columns="source"))
    counts = source_counts(three, "auto")
    assert sources_with_classes(counts) == ["site0", "site1", "site2"]
    assert all(set(per_class) == {"COVID-19", "normal", "pneumonia"} for per_class in counts.values())


def test_assign_source_splits_ignores_official_splits_but_keeps_excluded_rows():
    manifest = pd.DataFrame({
        "path": [f"/{i}.png" for i in range(8)], "label": ["a", "b"] * 4,
        "patient_id": ["h1", "h2", "c1", "o1", "o2", "o3", "o4", "x"],
        "group_id": ["h1", "h2", "h1", "o1", "o2", "o3", "o4", "x"],  # c1 copies an image of h1
        "source": ["held", "held", "copy", "other", "other", "other", "other", "other"],
        "official_split": ["", "train", "", "test", "val", "", "", EXCLUDED],
    })
    split = assign_source_splits(manifest, test=["held"], seed=0, val_fraction=0.0, test_fraction=0.0)
    assert list(split) == ["test", "test", EXCLUDED, "train", "train", "train", "train", EXCLUDED]
    assert split.attrs["duplicate_of_held_out_source"] == 1
    with pytest.raises(ManifestError, match="every source"):
        assign_source_splits(manifest.assign(source="held"), test=["held"], seed=0)


# ----- a combined task: components as sources, copies across them -----
@pytest.fixture(scope="module")
def combined_root(tmp_path_factory):
    return load_maker("combined").create(tmp_path_factory.mktemp("combined"), components=("covid19_radiography", "cohen_covid"))


def test_copies_of_a_held_out_component_are_excluded_and_counted(combined_root, tmp_path):
    dm = DATAMODULES["combined"](combined_root, components=RADIOGRAPHY_AND_COHEN, image_size=32, batch_size=4, cache_dir=tmp_path / "cache",
                                 split_dir=tmp_path / "splits", held_out={"test": ["cohen"]})
    dm.prepare_data()
    dm.setup()
    assert dm.source_field == "component"
    split = _split_with_sources(dm)
    cohen = split["source"] == "cohen"
    assert (split.loc[cohen, "split"] == "test").all()
    copies = ~cohen & split["group_id"].isin(set(split.loc[cohen, "group_id"]))
    assert copies.sum() >= 3  # the planted copies of Cohen images in the Radiography folders (one identical)
    assert (split.loc[copies, "split"] == EXCLUDED).all()
    assert dm.excluded["duplicate_of_held_out_source"] == int(copies.sum())
    assert dm.describe()["held_out"]["duplicates_of_held_out"] == int(copies.sum())
    assert dm.excluded["duplicate_or_patient_of_fixed_split"] >= 0
    used = split[split["split"].isin(["train", "val", IN_SOURCE_TEST])]
    assert not set(used["group_id"]) & set(split.loc[cohen, "group_id"])


# ----- the Cohen collection: publications as sources -----
def test_a_single_class_held_out_source_is_an_error_naming_it(tmp_path):
    root = load_maker("cohen_covid").create(tmp_path / "data")
    dm = DATAMODULES["cohen_covid"](root, image_size=32, views=None, cache_dir=tmp_path / "cache", split_dir=tmp_path / "splits",
                                    held_out={"test": ["github.com"]})
    with pytest.raises(ManifestError, match=r"'github.com' holds only the classes \['pneumonia'\].*at least two classes"):
        dm.prepare_data()
    assert not dm.split_path.exists()
