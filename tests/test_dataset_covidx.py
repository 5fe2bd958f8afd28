import pytest

from conftest import dataset_header
from datamodules import DATAMODULES
from datamodules.readers.covidx import COVIDxReader, parse_split_line
from datamodules.manifest import ManifestError
from datamodules.splits import read_split_csv

maker, covidx, _dm = dataset_header("covidx", "covidx", images_dir=lambda root: root / "images")


@pytest.mark.parametrize("line, parsed", [
    ("8989e25c 8989e25c.png normal", ("8989e25c", "8989e25c.png", "normal", "")),
    ("3 SARS-10.jpeg pneumonia cohen", ("3", "SARS-10.jpeg", "pneumonia", "cohen")),
    ("COVID 1 COVID(1).png COVID-19 sirm", ("COVID 1", "COVID(1).png", "COVID-19", "sirm")),
    ("a b c.png positive", ("a b", "c.png", "positive", "")),
    ("x x.png normal rnsa", ("x", "x.png", "normal", "rsna")),
])
def test_split_lines_are_parsed_from_the_right(line, parsed):
    assert parse_split_line(line) == parsed


def test_manifest_reads_both_files_and_finds_images_anywhere_below_images_dir(covidx, tmp_path):
    dm = _dm(covidx, tmp_path)
    manifest = dm.build_manifest()
    assert len(manifest) == len(maker.TRAIN) + len(maker.TEST) - 1  # one listed image is absent
    assert manifest["label"].value_counts().to_dict() == {"COVID-19": 7, "normal": 6, "pneumonia": 6}
    assert manifest["official_split"].value_counts().to_dict() == {"train": 13, "test": 6}
    by_name = manifest.set_index(manifest["path"].str.rsplit("/", n=1).str[-1])
    assert by_name.loc["COVID(2).png", "patient_id"] == "COVID 1" and by_name.loc["COVID(2).png", "source"] == "sirm"
    assert by_name.loc["p11.png", "source"] == "rsna" and by_name.loc["n20.png", "source"] == ""
    assert by_name.loc[maker.FLAT, "path"] == str(covidx / "images" / maker.FLAT)
    assert by_name.loc[maker.ELSEWHERE, "path"] == str(covidx / "images" / "actualmed" / "images" / maker.ELSEWHERE)
    assert list(dm.missing["path"]) == [str(covidx / "images" / "train" / maker.ABSENT)]
    assert "file not found" in dm.missing["problem"].iloc[0]


def test_official_test_file_is_the_test_split_and_paths_are_relative_to_images_dir(covidx, tmp_path):
    dm = _dm(covidx, tmp_path, val_fraction=0.3)
    dm.prepare_data()
    dm.setup()
    test_names = {name for _, name, _, _ in maker.TEST}
    assert {p.rsplit("/", 1)[-1] for p in dm.frames["test"]["path"]} == test_names
    assert len(dm.frames["val"]) > 0 and len(dm.frames["train"]) > 0
    patients = [set(f["patient_id"]) for f in dm.frames.values()]
    assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])
    split = read_split_csv(dm.split_path)
    assert dm.split_path.name.startswith("covidx-v5-seed0")
    assert split["image"].str.startswith(("train/", "test/", "actualmed/", maker.FLAT)).all()
    assert dm.describe()["excluded"]["missing_file"] == 1
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape[1:] == (1, 32, 32)


def test_images_dir_defaults_to_the_root(covidx, tmp_path):
    manifest = _dm(covidx, tmp_path, images_dir=None).build_manifest()
    assert len(manifest) == len(maker.TRAIN) + len(maker.TEST) - 1


def test_binary_files_and_binary_task(covidx, tmp_path):
    binary = _dm(covidx, tmp_path, version="9B").build_manifest()
    assert binary["label"].value_counts().to_dict() == {"non-COVID": 12, "COVID-19": 7}
    mapped = _dm(covidx, tmp_path, task="binary").build_manifest()
    assert sorted(mapped["label"]) == sorted(binary["label"])
    with pytest.raises(ManifestError, match=r"train_COVIDx9B.txt, line 1, column 'label'.*use task='binary'"):
        _dm(covidx, tmp_path, version="9B", task="three_class").build_manifest()


def test_malformed_split_files_name_file_and_line(covidx, tmp_path):
    labels = covidx / "labels"
    text = (labels / "test_COVIDx5.txt").read_text()
    (labels / "test_COVIDx5.txt").write_text(text + "t-9 t9.png level2 cohen\n")
    with pytest.raises(ManifestError, match=r"test_COVIDx5.txt, line 7, column 'label': unknown label 'level2'"):
        _dm(covidx, tmp_path).build_manifest()
    (labels / "test_COVIDx5.txt").write_text(text + "t9.png normal\n")
    with pytest.raises(ManifestError, match=r"test_COVIDx5.txt, line 7.*expected"):
        _dm(covidx, tmp_path).build_manifest()
    with pytest.raises(ManifestError, match="no split files train_COVIDx7A.txt"):
        _dm(covidx, tmp_path, version="7A").build_manifest()


def test_wrong_images_dir_is_a_clear_error(covidx, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match="none of the 20 images"):
        _dm(covidx, tmp_path, images_dir=tmp_path / "empty").build_manifest()
    with pytest.raises(ManifestError, match="does not exist"):
        _dm(covidx, tmp_path, images_dir=tmp_path / "nowhere").build_manifest()


def test_registered_and_located(covidx):
    assert DATAMODULES["covidx"].reader is COVIDxReader
    assert COVIDxReader.locate(covidx.parent) == covidx
