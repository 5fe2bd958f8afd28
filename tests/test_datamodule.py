from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datamodules import DATAMODULES, DatasetNotFoundError
from datamodules.describe import class_counts
from datamodules.manifest import ManifestError
from datamodules.readers.covid19_radiography import Covid19RadiographyReader
from datamodules.sampling import PairBatchSampler
from datamodules.splits import read_split_csv


def _dm(root, tmp_path, **kwargs):
    kwargs.setdefault("image_size", 32)
    kwargs.setdefault("batch_size", 4)
    return DATAMODULES["covid19_radiography"](root, cache_dir=tmp_path / "cache", split_dir=tmp_path / "splits", **kwargs)


def test_manifest_from_flat_and_v4_class_folders(radiography_root, tmp_path):
    manifest = _dm(radiography_root, tmp_path).build_manifest()
    assert len(manifest) == 18
    assert manifest["label"].value_counts().to_dict() == {"COVID-19": 6, "normal": 6, "pneumonia": 6}
    assert manifest["path"].str.contains("Viral Pneumonia/images/").sum() == 6
    assert manifest["patient_id"].is_unique  # no patient ids in this database: one image, one patient
    assert not manifest["path"].str.endswith(".xlsx").any()


def test_patient_map_supplies_patients(radiography_root, tmp_path):
    images = sorted(p.relative_to(radiography_root).as_posix() for p in radiography_root.rglob("*.png"))
    pd.DataFrame({"image": images, "patient_id": [f"pt{i // 2}" for i in range(len(images))]}).to_csv(radiography_root / "patient_map.csv", index=False)
    manifest = _dm(radiography_root, tmp_path).build_manifest()
    assert manifest["patient_id"].nunique() == 9


def test_malformed_patient_map_names_file_and_column(radiography_root, tmp_path):
    (radiography_root / "patient_map.csv").write_text("file,patient\nx,y\n")
    with pytest.raises(ManifestError, match=r"patient_map.csv: missing column 'image'"):
        _dm(radiography_root, tmp_path).build_manifest()


def test_locate_finds_the_dataset_under_a_data_root(radiography_root):
    assert Covid19RadiographyReader.locate(radiography_root.parent) == radiography_root
    with pytest.raises(DatasetNotFoundError, match="looked in"):
        Covid19RadiographyReader.locate(radiography_root / "COVID")


def test_setup_splits_caches_and_loads(radiography_root, tmp_path):
    dm = _dm(radiography_root, tmp_path, val_fraction=0.2, test_fraction=0.2)
    dm.prepare_data()
    dm.setup()
    assert sum(len(f) for f in dm.frames.values()) == 18
    split = read_split_csv(dm.split_path)
    assert split["image"].str.startswith(("COVID/", "Normal/", "Viral Pneumonia/")).all()  # portable relative paths
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 1, 32, 32) and batch["label"].dtype.is_floating_point is False
    assert dm.describe()["split_sha256"] == dm.split_sha256


def test_shared_split_file_is_reused_not_redrawn(radiography_root, tmp_path):
    first = _dm(radiography_root, tmp_path)
    first.prepare_data()
    before = first.split_path.read_bytes()
    second = _dm(radiography_root, tmp_path, augmentation="light", batch_size=2)  # another method, same split
    second.prepare_data()
    second.setup()
    assert second.split_path.read_bytes() == before


def test_corrupt_image_is_excluded_and_counted(radiography_root, tmp_path):
    (radiography_root / "COVID" / "COVID-1.png").write_bytes(b"\x89PNG\r\n\x1a\ngarbage")
    dm = _dm(radiography_root, tmp_path)
    dm.prepare_data()
    dm.setup()
    assert sum(len(f) for f in dm.frames.values()) == 17
    assert list(dm._cache.problems["path"]) == [str(radiography_root / "COVID" / "COVID-1.png")]


def test_normalisation_comes_from_the_train_split(radiography_root, tmp_path):
    dm = _dm(radiography_root, tmp_path)
    dm.prepare_data()
    dm.setup()
    pixels = dm._cache.open()[np.sort(dm.frames["train"]["row"].to_numpy())] / 255.0
    assert dm.mean == pytest.approx(pixels.mean()) and dm.std == pytest.approx(pixels.std())


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        _dm(tmp_path / "nowhere", tmp_path).prepare_data()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_copies_of_an_image_never_straddle_splits(radiography_root, tmp_path, seed):
    import shutil

    # the database has no patient ids: the same X-ray filed under three names is three "patients" to the reader
    for name in ("COVID-5.png", "COVID-6.png"):
        shutil.copy(radiography_root / "COVID" / "COVID-1.png", radiography_root / "COVID" / name)
    dm = _dm(radiography_root, tmp_path, split_seed=seed, val_fraction=0.3, test_fraction=0.3)
    dm.prepare_data()
    dm.setup()
    frame = pd.concat(dm.frames.values())
    copies = frame[frame["image"].isin(["COVID/COVID-1.png", "COVID/COVID-5.png", "COVID/COVID-6.png"])]
    assert len(copies) == 3 and copies["split"].nunique() == 1 and copies["group_id"].nunique() == 1
    assert dm.describe()["patients_joined_by_duplicates"] == 3


def test_duplicate_grouping_can_be_turned_off(radiography_root, tmp_path):
    dm = _dm(radiography_root, tmp_path, group_duplicates=False)
    dm.prepare_data()
    dm.setup()
    assert "group_id" not in dm.frames["train"].columns


def test_options_that_change_a_split_are_in_its_name_and_the_default_name_stays(radiography_root, tmp_path):
    default, toggled = _dm(radiography_root, tmp_path), _dm(radiography_root, tmp_path, group_duplicates=False)
    assert default.split_path.name == "covid19_radiography-seed0-val0.15-test0.15.csv"
    assert toggled.split_path.name == "covid19_radiography-seed0-val0.15-test0.15-nodupgroups.csv"
    assert DATAMODULES["synthetic"](cache_dir=tmp_path / "cache", group_duplicates=True).split_path.name.endswith("-dupgroups.csv")
    assert DATAMODULES["synthetic"](cache_dir=tmp_path / "cache").split_path.name == "synthetic-seed0-val0.15-test0.15.csv"


def test_multilabel_images_count_once_per_finding():
    frame = pd.DataFrame({"label": ["A|B", "A", "", "C"], "patient_id": ["p1", "p1", "p2", "p3"]})
    assert class_counts(frame, ["A", "B"], multilabel=True) == {"A": {"images": 2, "patients": 1}, "B": {"images": 1, "patients": 1}}


def test_pair_sampling_is_a_data_option_with_the_siamese_sampler(radiography_root, tmp_path):
    dm = _dm(radiography_root, tmp_path, val_fraction=0.2, test_fraction=0.2, pair_sampling={"pairs_per_epoch": 8})
    dm.setup()
    batches = list(dm.train_dataloader())
    expected = list(PairBatchSampler(dm.datasets["train"].targets, pairs_per_epoch=8, pairs_per_batch=4, seed=0))
    assert len(batches) == len(expected) == 2
    for batch, (indices, left, right, same) in zip(batches, expected):
        assert batch["index"].tolist() == list(indices) and batch["left"].tolist() == list(left) and batch["right"].tolist() == list(right)


def test_validation_is_in_a_seeded_random_order_so_a_limited_validation_samples_every_class(tmp_path):
    """The split file is sorted by path (so by class folder): read in that order, the first validation batches of a
    quick profile (`limit_val_batches`) would hold one class only."""
    from datamodules import DATAMODULES

    make = lambda: DATAMODULES["synthetic"](image_size=16, patients_per_class=12, cache_dir=tmp_path / "cache", split_dir=tmp_path / "splits")  # noqa: E731
    first, again = make(), make()
    first.setup("fit")
    again.setup("fit")
    val = first.frames["val"]
    split = pd.read_csv(first.split_path)
    assert sorted(val["path"].map(lambda p: Path(p).name)) == sorted(split.loc[split["split"] == "val", "image"].map(lambda p: Path(p).name))
    assert list(val["path"]) == list(again.frames["val"]["path"])  # the same order every time
    assert list(val["path"]) != sorted(val["path"])
    half = val["label"].iloc[: len(val) // 2]
    assert half.nunique() > 1  # the first half already holds more than one class
