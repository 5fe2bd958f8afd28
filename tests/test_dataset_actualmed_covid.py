import pytest

from conftest import dataset_header
from datamodules import DATAMODULES
from datamodules.readers.agchung import ActualmedCovidReader, Figure1CovidReader
from datamodules.readers.cohen_covid import CohenCovidReader
from datamodules.manifest import ManifestError

maker, actualmed, _dm = dataset_header("actualmed_covid", "actualmed")


def test_manifest_from_imagename_with_patients(actualmed, tmp_path):
    dm = _dm(actualmed, tmp_path)
    manifest = dm.build_manifest()
    assert manifest["label"].value_counts().to_dict() == {"COVID-19": 7, "normal": 5}
    assert dm.manifest_excluded["unlabelled"] == 2 and list(dm.missing["path"]) == [str(actualmed / "images" / maker.ABSENT)]
    assert manifest.groupby("patient_id").size().to_dict()["ANON191"] == 2
    assert manifest.loc[manifest["patient_id"] == "ANON196", "label"].tolist() == ["COVID-19"]


def test_setup_keeps_patients_together(actualmed, tmp_path):
    dm = _dm(actualmed, tmp_path, val_fraction=0.2, test_fraction=0.2)
    dm.prepare_data()
    dm.setup()
    where = {}
    for split, frame in dm.frames.items():
        for patient in frame["patient_id"]:
            assert where.setdefault(patient, split) == split
    assert sum(len(f) for f in dm.frames.values()) == 12


def test_missing_imagename_column_and_empty_imagename(actualmed, tmp_path):
    metadata = actualmed / "metadata.csv"
    text = metadata.read_text()
    metadata.write_text(text.replace("imagename", "image", 1))
    with pytest.raises(ManifestError, match=r"metadata.csv: missing column 'imagename'"):
        _dm(actualmed, tmp_path).build_manifest()
    metadata.write_text(text.replace(maker.ROWS[3][3], ""))
    with pytest.raises(ManifestError, match=r"metadata.csv, line 5, column 'imagename': empty imagename"):
        _dm(actualmed, tmp_path).build_manifest()


def test_registered_and_told_apart(actualmed):
    assert DATAMODULES["actualmed_covid"].reader is ActualmedCovidReader
    assert ActualmedCovidReader.locate(actualmed.parent) == actualmed
    assert not Figure1CovidReader.looks_like_root(actualmed) and not CohenCovidReader.looks_like_root(actualmed)
