import pytest

from conftest import dataset_header
from datamodules import DATAMODULES
from datamodules.readers.covidx_ray_5k import CovidXray5kReader
from datamodules.manifest import ManifestError

_, covid5k, _dm = dataset_header("covidx_ray_5k", "covid5k", folder="downloads")


def test_manifest_labels_official_split_and_patients(covid5k, tmp_path):
    manifest = _dm(covid5k, tmp_path).build_manifest()
    assert manifest.groupby(["official_split", "label"]).size().to_dict() == {
        ("test", "COVID-19"): 2, ("test", "non-COVID"): 3, ("train", "COVID-19"): 4, ("train", "non-COVID"): 7}
    patients = dict(zip(manifest["path"].str.rsplit("/", n=1).str[-1], manifest["patient_id"]))
    assert patients["patient00001-study1-view1_frontal.jpg"] == patients["patient00001-study2-view1_frontal.jpg"] == "chexpert-patient00001"
    assert patients["00000005.jpg"] == "train/non/00000005.jpg" and patients["lancet-case2a.jpg"] == "test/covid/lancet-case2a.jpg"
    assert set(manifest["source"]) == {"cohen", "chexpert"}


def test_setup_uses_the_published_test_folder(covid5k, tmp_path):
    dm = _dm(covid5k, tmp_path, val_fraction=0.3)
    dm.prepare_data()
    dm.setup()
    assert {p.split("/")[-3] for p in dm.frames["test"]["path"]} == {"test"} and len(dm.frames["test"]) == 5
    assert len(dm.frames["val"]) and set(dm.frames["val"]["patient_id"]).isdisjoint(dm.frames["train"]["patient_id"])
    assert dm.class_names == ["COVID-19", "non-COVID"]


def test_val_folder_is_the_test_split_when_there_is_no_test_folder(covid5k, tmp_path):
    (covid5k / "test").rename(covid5k / "val")
    manifest = _dm(covid5k, tmp_path).build_manifest()
    assert (manifest["official_split"] == "test").sum() == 5


def test_empty_layout_is_a_clear_error(tmp_path):
    (tmp_path / "empty" / "train" / "covid").mkdir(parents=True)
    with pytest.raises(ManifestError, match="no images"):
        _dm(tmp_path / "empty", tmp_path).build_manifest()


def test_registered_and_located(covid5k):
    assert DATAMODULES["covidx_ray_5k"].reader is CovidXray5kReader
    assert CovidXray5kReader.locate(covid5k.parent) == covid5k
