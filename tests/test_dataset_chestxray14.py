import gzip

import numpy as np
import pytest

from conftest import dataset_header
from datamodules import DATAMODULES
from datamodules.readers.chestxray14 import FINDINGS, ChestXray14Reader
from datamodules.manifest import ManifestError

maker, nih, _dm = dataset_header("chestxray14", "nih")


def _rewrite(nih, old, new):
    path = nih / "Data_Entry_2017_v2020.csv.gz"
    text = gzip.open(path, "rt").read()
    assert old in text
    with gzip.open(path, "wt") as handle:
        handle.write(text.replace(old, new, 1))


def test_manifest_finds_images_in_any_folder_and_summarises_absent_ones(nih, tmp_path):
    dm = _dm(nih, tmp_path)
    manifest = dm.build_manifest()
    assert len(manifest) == len(maker.PATIENTS) - len(maker.ABSENT)
    assert sorted(p.rsplit("/", 1)[-1] for p in dm.missing["path"]) == sorted(maker.ABSENT)
    assert manifest["path"].str.contains("images_002/images/").any() and manifest["path"].str.contains("images_001/images/").any()
    first = manifest.iloc[1]
    assert (first["label"], first["patient_id"], first["view"], first["sex"], first["age"]) == ("Cardiomegaly|Emphysema", "1", "PA", "F", 41.0)
    assert set(manifest.loc[manifest["patient_id"].isin(["9", "10"]), "official_split"]) == {"test"}
    assert set(manifest.loc[~manifest["patient_id"].isin(["9", "10"]), "official_split"]) == {"train"}


def test_setup_multi_hot_targets_and_official_test_split(nih, tmp_path):
    dm = _dm(nih, tmp_path, val_fraction=0.2)
    dm.prepare_data()
    dm.setup()
    assert dm.class_names == list(FINDINGS)
    assert set(dm.frames["test"]["patient_id"]) == {"9", "10"}
    assert set(dm.frames["val"]["patient_id"]).isdisjoint(dm.frames["train"]["patient_id"]) and len(dm.frames["val"])
    targets = dm.datasets["test"].targets
    labels = list(dm.frames["test"]["label"])
    assert targets.shape == (4, 14) and targets.dtype == np.float32
    for row, label in zip(targets, labels):
        expected = {f for f in label.split("|") if f != "No Finding"}
        assert {FINDINGS[i] for i in np.flatnonzero(row)} == expected
    batch = next(iter(dm.test_dataloader()))
    assert batch["image"].shape == (4, 1, 32, 32) and batch["label"].shape == (4, 14)
    assert dm.describe()["excluded"]["missing_file"] == 3


def test_no_finding_as_a_fifteenth_class(nih, tmp_path):
    dm = _dm(nih, tmp_path, no_finding=True)
    dm.prepare_data()
    dm.setup()
    assert dm.class_names[-1] == "No Finding" and dm.num_classes == 15
    frame, targets = dm.frames["test"], dm.datasets["test"].targets
    assert np.array_equal(targets[:, -1] == 1, (frame["label"] == "No Finding").to_numpy())


def test_views_option(nih, tmp_path):
    dm = _dm(nih, tmp_path, views=["PA"])
    manifest = dm.build_manifest()
    assert set(manifest["view"]) == {"PA"} and dm.manifest_excluded["view"] == 8
    assert "PA" in dm.split_path.name


def test_malformed_label_file_names_file_line_and_column(nih, tmp_path):
    _rewrite(nih, "Pneumothorax", "Pneumothorax|Covid")
    with pytest.raises(ManifestError, match=r"Data_Entry_2017_v2020.csv.gz, line 12, column 'Finding Labels': unknown finding 'Covid'"):
        _dm(nih, tmp_path).build_manifest()
    _rewrite(nih, "Patient ID", "Patient")
    with pytest.raises(ManifestError, match=r"missing column 'Patient ID'"):
        _dm(nih, tmp_path).build_manifest()


def test_no_label_file_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match="no label file"):
        _dm(tmp_path / "empty", tmp_path).build_manifest()


def test_registered_and_located(nih):
    assert DATAMODULES["chestxray14"].reader is ChestXray14Reader
    assert ChestXray14Reader.locate(nih.parent) == nih


def test_multilabel_strata_use_the_rarest_common_finding():
    import pandas as pd

    from datamodules.manifest import multilabel_strata

    labels = pd.Series(["Effusion"] * 3 + ["Effusion|Hernia"] * 2 + ["Hernia|Mass", "Mass", "No Finding", ""])
    # Effusion 5, Hernia 3, Mass 2 images: each image goes with its rarest finding.
    assert list(multilabel_strata(labels, min_images=2)) == ["Effusion"] * 3 + ["Hernia"] * 2 + ["Mass"] * 2 + ["No Finding"] * 2
    # With min_images=4 only Effusion is common; images with only rarer findings share one stratum.
    assert list(multilabel_strata(labels, min_images=4))[3:7] == ["Effusion", "Effusion", "finding", "finding"]


def test_manifest_has_split_strata(nih, tmp_path):
    manifest = _dm(nih, tmp_path).build_manifest()
    assert set(manifest["stratum"]) == {"No Finding", "finding"}  # every finding is rare in 21 images
