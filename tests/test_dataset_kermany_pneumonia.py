import pytest

from conftest import dataset_header
from datamodules import DATAMODULES
from datamodules.readers.kermany_pneumonia import KermanyPneumoniaReader, patient_of
from datamodules.manifest import ManifestError

maker, kermany, _dm = dataset_header("kermany_pneumonia", "kermany")


@pytest.mark.parametrize("name, patient", [
    ("IM-0115-0001.jpeg", "IM-0115"), ("IM-0119-0001-0002.jpeg", "IM-0119"), ("NORMAL2-IM-0115-0001.jpeg", "NORMAL2-IM-0115"),
    ("person1_bacteria_1.jpeg", "person1_bacteria"), ("person1_virus_6.jpeg", "person1_virus"), ("odd.jpeg", "odd"),
])
def test_patient_ids_from_file_names(name, patient):
    assert patient_of(name) == patient


def test_binary_manifest_counts_and_official_splits(kermany, tmp_path):
    manifest = _dm(kermany, tmp_path).build_manifest()
    assert len(manifest) == sum(len(v) for v in maker.FILES.values())  # junk and hidden files ignored
    assert manifest["label"].value_counts().to_dict() == {"pneumonia": 14, "normal": 12}
    assert manifest["official_split"].value_counts().to_dict() == {"train": 19, "test": 7}  # val joins the train pool
    assert manifest.groupby("patient_id")["official_split"].nunique().max() == 1


def test_three_class_from_file_names(kermany, tmp_path):
    manifest = _dm(kermany, tmp_path, task="three_class").build_manifest()
    assert manifest["label"].value_counts().to_dict() == {"normal": 12, "bacterial_pneumonia": 8, "viral_pneumonia": 6}
    (kermany / "train" / "PNEUMONIA" / "scan.jpeg").write_bytes((kermany / "train" / "PNEUMONIA" / "person1_virus_6.jpeg").read_bytes())
    with pytest.raises(ManifestError, match=r"scan.jpeg: the file name gives no pneumonia type"):
        _dm(kermany, tmp_path, task="three_class").build_manifest()


def test_setup_keeps_the_official_test_folder_and_draws_val_by_patient(kermany, tmp_path):
    dm = _dm(kermany, tmp_path, val_fraction=0.25)
    dm.prepare_data()
    dm.setup()
    assert {p.split("/")[-3] for p in dm.frames["test"]["path"]} == {"test"}
    assert len(dm.frames["test"]) == 7 and len(dm.frames["val"]) > 0
    assert set(dm.frames["val"]["patient_id"]).isdisjoint(dm.frames["train"]["patient_id"])
    assert dm.frames["train"].groupby("patient_id").size().max() >= 2  # IM-0115 and person1_bacteria stay together
    assert dm.class_names == ["normal", "pneumonia"]
    assert sum(len(f) for f in dm.frames.values()) == 26


def test_official_val_option(kermany, tmp_path):
    dm = _dm(kermany, tmp_path, official_val=True)
    assert dm.build_manifest()["official_split"].value_counts()["val"] == 2
    dm.prepare_data()
    dm.setup()
    assert sorted(p.rsplit("/", 1)[-1] for p in dm.frames["val"]["path"]) == ["NORMAL2-IM-1427-0001.jpeg", "person1946_bacteria_4874.jpeg"]
    assert "officialval" in dm.split_path.name


def test_registered_and_located(kermany):
    assert DATAMODULES["kermany_pneumonia"].reader is KermanyPneumoniaReader
    assert KermanyPneumoniaReader.locate(kermany.parent) == kermany
