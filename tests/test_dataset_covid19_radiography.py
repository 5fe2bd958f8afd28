import shutil

import pytest

from conftest import dataset_header
from datamodules import DATAMODULES
from datamodules.readers.covid19_radiography import Covid19RadiographyReader


_, _, _dm = dataset_header("covid19_radiography", "covid19_radiography_root")  # the layout: conftest's radiography_root


@pytest.fixture
def with_lung_opacity(radiography_root):
    opacity = radiography_root / "Lung_Opacity" / "images"
    opacity.mkdir(parents=True)
    for i in range(1, 4):
        shutil.copy(radiography_root / "COVID" / f"COVID-{i}.png", opacity / f"Lung_Opacity-{i}.png")
    return radiography_root


def test_four_classes_by_default_three_on_request(with_lung_opacity, tmp_path):
    every = _dm(with_lung_opacity, tmp_path).build_manifest()
    assert every["label"].value_counts().to_dict() == {"COVID-19": 6, "normal": 6, "pneumonia": 6, "lung_opacity": 3}
    three = _dm(with_lung_opacity, tmp_path, task="three_class")
    assert set(three.build_manifest()["label"]) == {"COVID-19", "normal", "pneumonia"}
    assert "lung_opacity" not in three.classes and "three_class" in three.split_path.name
    assert _dm(with_lung_opacity, tmp_path).split_path.name == "covid19_radiography-seed0-val0.15-test0.15.csv"
    with pytest.raises(ValueError, match="task"):
        _dm(with_lung_opacity, tmp_path, task="binary")


def test_first_release_folder_names(radiography_root, tmp_path):
    (radiography_root / "COVID").rename(radiography_root / "COVID-19")
    (radiography_root / "Normal").rename(radiography_root / "NORMAL")
    manifest = _dm(radiography_root, tmp_path).build_manifest()
    assert manifest["label"].value_counts().to_dict() == {"COVID-19": 6, "normal": 6, "pneumonia": 6}
    assert Covid19RadiographyReader.locate(radiography_root.parent) == radiography_root


def test_registered():
    assert DATAMODULES["covid19_radiography"].reader is Covid19RadiographyReader
