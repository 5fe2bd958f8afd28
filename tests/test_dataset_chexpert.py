import pytest

from conftest import dataset_header
from datamodules import DATAMODULES
from datamodules.readers.chexpert import COMPETITION, OBSERVATIONS, CheXpertReader
from datamodules.manifest import ManifestError

_, chexpert, _dm = dataset_header("chexpert", "chexpert")


def _by_name(manifest):
    return manifest.set_index(manifest["path"].str.split("/").str[-4:].str.join("/"))


def test_manifest_frontal_labels_uncertain_and_patients(chexpert, tmp_path):
    dm = _dm(chexpert, tmp_path)
    manifest = dm.build_manifest()
    assert len(manifest) == 14 and dm.manifest_excluded == {"view": 3}  # 3 lateral images left out
    assert manifest["official_split"].value_counts().to_dict() == {"train": 11, "test": 3}
    rows = _by_name(manifest)
    study2 = rows.loc["train/patient00001/study2/view1_frontal.jpg"]
    assert (study2["label"], study2["uncertain"], study2["patient_id"], study2["view"]) == ("Cardiomegaly", "Edema", "patient00001", "AP")
    patient2 = rows.loc["train/patient00002/study1/view1_frontal.jpg"]
    assert (patient2["label"], patient2["uncertain"], patient2["sex"]) == ("Pleural Effusion", "Atelectasis", "F")  # 0.0 is negative
    assert manifest["path"].map(lambda p: (chexpert / "train").as_posix() in p or (chexpert / "valid").as_posix() in p).all()


def test_views_option(chexpert, tmp_path):
    both = _dm(chexpert, tmp_path, views=["frontal", "lateral"]).build_manifest()
    assert len(both) == 17 and (both["view"] == "L").sum() == 3
    assert len(_dm(chexpert, tmp_path, views="lateral").build_manifest()) == 3
    with pytest.raises(ValueError, match="views"):
        _dm(chexpert, tmp_path, views=["oblique"])


@pytest.mark.parametrize("policy, value", [("u_ones", 1.0), ("u_zeros", 0.0), ("u_ignore", -1.0)])
def test_uncertainty_policies_set_the_targets(chexpert, tmp_path, policy, value):
    dm = _dm(chexpert, tmp_path, uncertainty=policy, val_fraction=0.2)
    dm.prepare_data()
    dm.setup()
    assert dm.class_names == list(OBSERVATIONS)
    seen = 0
    for split in ("train", "val", "test"):
        frame, targets = dm.frames[split], dm.datasets[split].targets
        assert targets.shape == (len(frame), 14)
        for row, label, uncertain in zip(targets, frame["label"], frame["uncertain"]):
            for finding in filter(None, label.split("|")):
                assert row[OBSERVATIONS.index(finding)] == 1.0
            for finding in filter(None, uncertain.split("|")):
                assert row[OBSERVATIONS.index(finding)] == value
                seen += 1
            expected = len([f for f in label.split("|") if f]) + (len([f for f in uncertain.split("|") if f]) if value == 1.0 else 0)
            assert (row == 1.0).sum() == expected
    assert seen == 4  # every uncertain frontal label was checked
    assert {p.split("/")[-4] for p in dm.frames["test"]["path"]} == {"valid"}
    assert set(dm.frames["val"]["patient_id"]).isdisjoint(dm.frames["train"]["patient_id"]) and len(dm.frames["val"])


def test_the_policy_does_not_change_the_split_file(chexpert, tmp_path):
    names = {_dm(chexpert, tmp_path, uncertainty=p).split_path.name for p in ("u_ones", "u_zeros", "u_ignore")}
    assert names == {"chexpert-seed0-val0.15-test0.15.csv"}


def test_competition_subset_through_class_names(chexpert, tmp_path):
    dm = _dm(chexpert, tmp_path, class_names=list(COMPETITION))
    dm.prepare_data()
    dm.setup()
    assert dm.datasets["train"].targets.shape[1] == 5
    batch = next(iter(dm.train_dataloader()))
    assert batch["label"].shape[1] == 5 and batch["label"].min() >= -1


def test_malformed_csv_names_file_line_and_column(chexpert, tmp_path):
    train = chexpert / "train.csv"
    text = train.read_text()
    lines = text.splitlines()
    lines[4] = lines[4].replace("-1.0", "2.0", 1)
    train.write_text("\n".join(lines) + "\n")
    with pytest.raises(ManifestError, match=r"train.csv, line 5, column '(Edema|Atelectasis)': value '2.0' is not 1.0, 0.0, -1.0 or blank"):
        _dm(chexpert, tmp_path).build_manifest()
    train.write_text(text.replace("Frontal/Lateral", "View", 1))
    with pytest.raises(ManifestError, match=r"train.csv: missing column 'Frontal/Lateral'"):
        _dm(chexpert, tmp_path).build_manifest()
    train.write_text(text.replace("patient00003", "case00003"))
    with pytest.raises(ManifestError, match=r"train.csv, line 6, column 'Path': no patientNNNNN folder"):
        _dm(chexpert, tmp_path).build_manifest()


def test_renamed_dataset_folder_still_resolves_paths(chexpert, tmp_path):
    renamed = chexpert.rename(chexpert.parent / "my-chexpert")
    assert len(_dm(renamed, tmp_path).build_manifest()) == 14


def test_registered_and_located(chexpert):
    assert DATAMODULES["chexpert"].reader is CheXpertReader
    assert CheXpertReader.locate(chexpert.parent) == chexpert
