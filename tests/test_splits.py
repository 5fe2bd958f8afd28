from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datamodules.splits import (
    LeakageError, SplitMismatchError, assert_patient_disjoint, assign_splits, check_split, read_split_csv, write_split_csv,
)


def _manifest(n_patients=60, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        label = ["COVID-19", "normal", "pneumonia"][p % 3]
        for visit in range(int(rng.integers(1, 4))):
            rows.append({"path": f"/x/{p}_{visit}.png", "label": label, "patient_id": f"p{p}", "official_split": ""})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_splits_are_patient_disjoint_and_stratified(seed):
    manifest = _manifest(seed=seed)
    split = assign_splits(manifest, seed=seed, val_fraction=0.2, test_fraction=0.2)
    frame = manifest.assign(split=split)
    assert_patient_disjoint(frame)
    assert set(split) == {"train", "val", "test"}
    for name in ("train", "val", "test"):
        assert set(frame.loc[frame.split == name, "label"]) == {"COVID-19", "normal", "pneumonia"}
    per_patient = frame.groupby("patient_id").split.nunique()
    assert (per_patient == 1).all()
    test_patients = frame.loc[frame.split == "test", "patient_id"].nunique()
    assert test_patients == pytest.approx(12, abs=1)  # 20% of 60 patients


def test_same_seed_same_split_and_other_seed_other_split():
    manifest = _manifest()
    a = assign_splits(manifest, seed=7)
    b = assign_splits(manifest.sample(frac=1, random_state=3).sort_index(), seed=7)
    assert (a == b).all()
    assert not (a == assign_splits(manifest, seed=8)).all()


def test_official_test_list_is_kept_and_its_patients_never_train():
    manifest = _manifest()
    manifest.loc[manifest.patient_id.isin(["p0", "p1", "p2"]), "official_split"] = "test"
    # an image of p0 outside the official list: it must not end up in train
    manifest = pd.concat([manifest, pd.DataFrame([{"path": "/x/extra.png", "label": "COVID-19", "patient_id": "p0", "official_split": ""}])], ignore_index=True)
    split = assign_splits(manifest, seed=0)
    assert set(manifest.loc[split == "test", "patient_id"]) == {"p0", "p1", "p2"}
    assert split.iloc[-1] == "excluded"
    assert_patient_disjoint(manifest.assign(split=split))


def test_leakage_is_detected():
    frame = pd.DataFrame({"patient_id": ["a", "a", "b"], "split": ["train", "test", "val"]})
    with pytest.raises(LeakageError, match="1 patients"):
        assert_patient_disjoint(frame)


def test_bad_fractions_are_rejected():
    with pytest.raises(ValueError):
        assign_splits(_manifest(), seed=0, val_fraction=0.6, test_fraction=0.5)


def test_check_split_names_the_rows_that_disagree_with_the_dataset():
    split = pd.DataFrame({"image": ["a.png", "b.png"], "path": ["/d/a.png", "/d/b.png"], "label": ["x", "y"],
                          "patient_id": ["1", "2"], "split": ["train", "test"]})
    dataset = pd.DataFrame({"path": ["/d/a.png", "/d/b.png"], "label": ["x", "z"], "patient_id": ["1", "2"]})
    with pytest.raises(SplitMismatchError, match=r"s.csv: 1 images have another label than in /d: b.png: 'y' in the split file, 'z'"):
        check_split(split, dataset, where="s.csv", origin="/d")
    check_split(split, dataset.assign(label=["x", "y"]), where="s.csv", origin="/d")  # agreeing: no error


def test_split_file_is_written_atomically_and_read_back(tmp_path):
    manifest = _manifest()
    path = tmp_path / "splits" / "s.csv"
    write_split_csv(manifest, assign_splits(manifest, seed=0), Path("/x"), path)
    assert [p.name for p in path.parent.iterdir()] == ["s.csv"]  # no temporary file left behind
    assert len(read_split_csv(path)) == len(manifest)
