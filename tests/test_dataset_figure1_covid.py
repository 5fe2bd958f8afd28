import pytest

from conftest import dataset_header
from datamodules import DATAMODULES
from datamodules.readers.agchung import ActualmedCovidReader, Figure1CovidReader
from datamodules.manifest import ManifestError

_, figure1, _dm = dataset_header("figure1_covid", "figure1")


def test_latin1_metadata_images_by_patientid_and_patients(figure1, tmp_path):
    dm = _dm(figure1, tmp_path)
    manifest = dm.build_manifest()
    names = dict(zip(manifest["path"].str.rsplit("/", n=1).str[-1], manifest["label"]))
    assert names == {"COVID-00001.jpg": "COVID-19", "COVID-00003a.jpg": "COVID-19", "COVID-00003b.png": "COVID-19",
                     "COVID-00004.jpg": "COVID-19", "COVID-00005.jpg": "pneumonia", "COVID-00006.jpg": "normal",
                     "COVID-00007.png": "normal", "COVID-00010.jpg": "normal", "COVID-00011.jpg": "COVID-19",
                     "COVID-00012.jpg": "COVID-19"}
    assert set(manifest.loc[manifest["path"].str.contains("COVID-00003"), "patient_id"]) == {"COVID-00003"}
    assert dm.manifest_excluded == {"not_xray": 0, "view": 1, "unlabelled": 1, "label_outside_task": 0}  # lateral, blank finding
    assert list(dm.missing["path"]) == [str(figure1 / "images" / "COVID-00009.jpg")]


def test_binary_task_and_setup(figure1, tmp_path):
    dm = _dm(figure1, tmp_path, task="binary", val_fraction=0.2, test_fraction=0.2)
    assert dm.build_manifest()["label"].value_counts().to_dict() == {"COVID-19": 6, "non-COVID": 4}
    dm.prepare_data()
    dm.setup()
    splits = {p: s for s, f in dm.frames.items() for p in f["patient_id"]}
    assert splits["COVID-00003"] and sum(len(f) for f in dm.frames.values()) == 10
    assert [s for s, f in dm.frames.items() if (f["patient_id"] == "COVID-00003").any()] == [splits["COVID-00003"]]


def test_unknown_finding_is_a_clear_error(figure1, tmp_path):
    metadata = figure1 / "metadata.csv"
    metadata.write_bytes(metadata.read_bytes().replace(b"Pneumonia", b"Sarcoidosis"))
    with pytest.raises(ManifestError, match=r"metadata.csv, line 7, column 'finding': unknown finding 'Sarcoidosis'"):
        _dm(figure1, tmp_path).build_manifest()


def test_registered_and_told_apart_from_actualmed(figure1):
    assert DATAMODULES["figure1_covid"].reader is Figure1CovidReader
    assert Figure1CovidReader.locate(figure1.parent) == figure1
    assert not ActualmedCovidReader.looks_like_root(figure1)
