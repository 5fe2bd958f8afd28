import numpy as np
import pandas as pd
import pytest

from conftest import load_maker
from datamodules import DATAMODULES, DatasetNotFoundError, get_datamodule_class
from datamodules.combined import CombinedReader
from datamodules.splits import EXCLUDED, SPLITS, assert_patient_disjoint, assign_splits, read_split_csv

TWO_CLASSES = {"COVID-19": "COVID-19", "normal": "normal"}
RADIOGRAPHY_AND_COHEN = [
    {"dataset": "covid19_radiography", "prefix": "radiography", "labels": TWO_CLASSES},
    {"dataset": "cohen_covid", "prefix": "cohen", "labels": TWO_CLASSES, "options": {"views": None}},
]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return load_maker("combined").create(tmp_path_factory.mktemp("combined"))


def _dm(name, root, tmp_path, **kwargs):
    kwargs.setdefault("image_size", 32)
    return get_datamodule_class(name)(root, cache_dir=tmp_path / "cache", split_dir=tmp_path / "splits", **kwargs)


def _split_of(dm):
    split = read_split_csv(dm.split_path)
    root = dm.image_root.resolve()
    return dict(zip([str(root / i) for i in split["image"]], split["split"]))


# ----- group-aware splitting (datamodules/splits.py) -----
def test_groups_are_drawn_together_and_patients_are_still_checked():
    rows = [{"path": f"/x/{p}.png", "label": ["a", "b"][p % 2], "patient_id": f"p{p}", "group_id": f"g{p // 3}"} for p in range(60)]
    manifest = pd.DataFrame(rows)
    for seed in range(5):
        split = assign_splits(manifest, seed=seed, val_fraction=0.2, test_fraction=0.2)
        per_group = manifest.assign(split=split).groupby("group_id")["split"].nunique()
        assert (per_group == 1).all() and set(split) == set(SPLITS)


def test_rows_without_a_stratum_are_still_split():
    """A component without a ``stratum`` column beside one with it (NaN there) must not be left unassigned."""
    manifest = pd.DataFrame({"path": [f"/{i}.png" for i in range(40)], "label": ["a"] * 40, "patient_id": [f"p{i}" for i in range(40)],
                             "stratum": ["s"] * 20 + [np.nan] * 20})
    assert set(assign_splits(manifest, seed=0)) == set(SPLITS)


def test_a_group_touching_the_official_test_list_is_kept_out_of_training():
    manifest = pd.DataFrame({
        "path": ["/t.png", "/dup.png", "/mate.png", "/other.png", "/ref.png"],
        "label": ["a", "a", "a", "a", "a"],
        "patient_id": ["t", "d", "d", "o", "r"],
        "group_id": ["t", "t", "t", "o", "r"],
        "official_split": ["test", "", "", "", EXCLUDED],
    })
    split = assign_splits(manifest, seed=0, val_fraction=0.0)
    assert list(split) == ["test", EXCLUDED, EXCLUDED, "train", EXCLUDED]


# ----- a combined dataset with a drawn split -----
def test_combined_manifest_keeps_sources_and_prefixes_patients(data_root, tmp_path):
    dm = _dm("combined", data_root, tmp_path, components=RADIOGRAPHY_AND_COHEN)
    manifest = dm.build_manifest()
    assert set(manifest["component"]) == {"radiography", "cohen"}
    assert manifest["patient_id"].str.match(r"^(radiography|cohen):").all()
    # ``source`` keeps the component's own column: for Cohen, the publication each image came from
    assert set(manifest.loc[manifest["component"] == "cohen", "source"]) <= {"radiopaedia.org", "eurorad.org", "sirm.org", "github.com", "unknown"}
    assert (manifest.loc[manifest["component"] == "radiography", "source"] == "covid19_radiography").all()
    assert set(manifest["label"]) == {"COVID-19", "normal"}  # pneumonia is not in the label map: left out, counted
    assert dm.manifest_excluded["cohen:label_outside_task"] > 0 and dm.manifest_excluded["radiography:label_outside_task"] == 6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_duplicates_are_found_and_never_straddle_splits(data_root, tmp_path, seed):
    dm = _dm("combined", data_root, tmp_path, components=RADIOGRAPHY_AND_COHEN, split_seed=seed, val_fraction=0.25, test_fraction=0.25)
    dm.prepare_data()
    dm.setup()
    pairs = dm.duplicate_pairs
    found = {(a.split("/")[-1], b.split("/")[-1]) for a, b in zip(pairs["path_a"], pairs["path_b"])}
    assert found == {("COVID-1.png", "c18.png"), ("COVID-3.png", "c19.png"), ("COVID-5.png", "c1-l.jpg"),
                     ("Normal-2.png", "nf11.png"), ("Normal-4.png", "nf12.png")}
    assert dict(zip(pairs["path_b"].str.split("/").str[-1], pairs["kind"]))["nf11.png"] == "identical"
    split_of = _split_of(dm)
    for a, b in zip(pairs["path_a"], pairs["path_b"]):
        assert split_of[a] == split_of[b] and split_of[a] in SPLITS
    assert dm.describe()["duplicates"]["pairs_across_splits"] == 0
    assert dm.describe()["duplicates"]["cross_source"] == 5
    assert_patient_disjoint(read_split_csv(dm.split_path))
    # cohen patient 1 has a lateral image that duplicates a Radiography image: its frontal image goes along
    frame = read_split_csv(dm.split_path).set_index("image")
    assert frame.loc["covid-chestxray-dataset/images/c1-pa.jpg", "split"] == split_of[str(data_root.resolve() / "COVID-19_Radiography_Dataset/COVID/COVID-5.png")]


def test_combined_trains_a_batch_through_the_base_pipeline(data_root, tmp_path):
    dm = _dm("combined", data_root, tmp_path, components=RADIOGRAPHY_AND_COHEN, batch_size=4)
    dm.prepare_data()
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 1, 32, 32)
    assert dm.class_names == ["COVID-19", "normal"]
    assert dm.describe()["components"] == {"cohen": int((dm.manifest["component"] == "cohen").sum()), "radiography": 12}


def test_a_component_outside_the_data_root_is_given_by_its_root(data_root, tmp_path):
    elsewhere = load_maker("kermany_pneumonia").create(tmp_path / "elsewhere")
    components = RADIOGRAPHY_AND_COHEN[:1] + [{"dataset": "kermany_pneumonia", "prefix": "kermany"}]
    dm = _dm("combined", data_root, tmp_path, components=components, component_roots={"kermany": str(elsewhere)})
    dm.prepare_data()
    dm.setup()
    assert {"radiography", "kermany"} == set(dm.manifest["component"])
    assert sum(len(f) for f in dm.frames.values()) > 0  # split paths relative to the common folder resolve again


def test_a_missing_component_is_an_error_naming_it(tmp_path):
    (tmp_path / "root").mkdir()
    dm = _dm("combined", tmp_path / "root", tmp_path, components=RADIOGRAPHY_AND_COHEN)
    with pytest.raises(DatasetNotFoundError, match=r"component 'radiography' \(covid19_radiography\).*component_roots.radiography"):
        dm.prepare_data()


def test_bad_component_specs_are_rejected(data_root, tmp_path):
    with pytest.raises(ValueError, match="no components"):
        _dm("combined", data_root, tmp_path)
    with pytest.raises(ValueError, match="unique"):
        _dm("combined", data_root, tmp_path, components=[{"dataset": "cohen_covid"}, {"dataset": "cohen_covid"}])
    with pytest.raises(ValueError, match="unknown components"):
        _dm("combined", data_root, tmp_path, components=RADIOGRAPHY_AND_COHEN, component_roots={"nih": "/x"})


# ----- the papers' presets -----
def test_presets_are_registered():
    for name in ("siamese_covidx", "twice_transfer_radiography", "transfer_chestxray14_covid", "wce_covidxray5k_cohen", "combined"):
        assert issubclass(DATAMODULES[name].reader, CombinedReader)


def test_wce_task_removes_cohen_copies_of_test_images_from_training(data_root, tmp_path):
    dm = _dm("wce_covidxray5k_cohen", data_root, tmp_path)
    dm.prepare_data()
    dm.setup()
    split_of = _split_of(dm)
    cohen = data_root.resolve() / "covid-chestxray-dataset" / "images"
    assert split_of[str(data_root.resolve() / "data/test/covid/lancet-case2a.jpg")] == "test"
    assert split_of[str(cohen / "c4.jpeg")] == EXCLUDED  # a copy of a test image
    assert split_of[str(cohen / "leg16-pa2.jpg")] == EXCLUDED
    assert split_of[str(cohen / "leg16-pa.jpg")] == EXCLUDED  # the same patient's other images
    assert split_of[str(cohen / "leg20-ap.jpg")] == EXCLUDED  # (the reader merged patient 20 into 16: same file)
    assert dm.excluded["duplicate_or_patient_of_fixed_split"] == 4
    cohen_splits = {s for p, s in split_of.items() if "/covid-chestxray-dataset/" in p}
    assert cohen_splits <= {"train", "val", EXCLUDED}  # Cohen adds training images only (the test set is the official one)
    assert dm.class_names == ["COVID-19", "non-COVID"]


def test_twice_transfer_task_renames_classes_and_removes_a_lateral_known_from_cohen(data_root, tmp_path):
    dm = _dm("twice_transfer_radiography", data_root, tmp_path, test_per_class=1)
    dm.prepare_data()
    dm.setup()
    manifest = dm.manifest.set_index("path")
    lateral = str(data_root / "COVID-19_Radiography_Dataset/COVID/COVID-5.png")
    assert manifest.loc[lateral, "view"] == "L" and manifest.loc[lateral, "exclusion"] == "view L"
    assert manifest.loc[lateral, "view_source"].endswith("c1-l.jpg")
    assert dm.class_names == ["normal", "viral_pneumonia", "COVID-19"]
    assert dm.excluded["view"] == 1 and dm.excluded["reference"] > 0
    assert {len(dm.frames["test"][dm.frames["test"]["label"] == c]) for c in dm.class_names} == {1}
    assert not dm.frames["train"]["patient_id"].str.startswith("cohen:").any()  # the reference is never trained on
    assert dm.describe()["duplicates"]["label_conflicts"] == 0  # reference images carry no task label


def test_transfer_task_is_a_balanced_15_class_multilabel_set(data_root, tmp_path):
    dm = _dm("transfer_chestxray14_covid", data_root, tmp_path, images_per_class=2, val_fraction=0.2, test_fraction=0.2)
    dm.prepare_data()
    dm.setup()
    assert len(dm.class_names) == 15 and dm.class_names[-1] == "COVID-19" and dm.multilabel
    manifest = dm.manifest
    assert not (manifest["label"] == "").any()  # no 'No Finding' images unless asked for
    covid = manifest["label"].str.contains("COVID-19")
    assert set(manifest.loc[covid, "component"]) == {"cohen"} and covid.sum() == 2
    targets = dm.datasets["train"].targets
    assert targets.shape[1] == 15 and set(np.unique(targets)) <= {0.0, 1.0}
    assert set(read_split_csv(dm.split_path)["split"]) <= set(SPLITS)  # every image of both components is split


def test_siamese_task_reads_covidx_with_its_official_test_split(tmp_path):
    covidx = load_maker("covidx").create(tmp_path / "root")
    dm = _dm("siamese_covidx", tmp_path / "root", tmp_path, component_options={"covidx": {"images_dir": str(covidx / "images")}})
    dm.prepare_data()
    dm.setup()
    assert dm.class_names == ["COVID-19", "normal", "pneumonia"]
    assert set(dm.manifest.loc[dm.manifest["official_split"] == "test", "path"].map(_split_of(dm))) == {"test"}
    assert dm.manifest["patient_id"].str.startswith("covidx:").all()


def test_transfer_task_reads_all_images_and_balances_each_epoch(data_root, tmp_path):
    dm = _dm("transfer_chestxray14_covid", data_root, tmp_path, val_fraction=0.2, test_fraction=0.2, balanced_sampling="multilabel", balanced_per_class=2)
    dm.prepare_data()
    dm.setup()
    assert "-n" not in dm.variant and (dm.manifest["label"] == "").any()  # the whole data, 'No Finding' images too
    targets = dm.datasets["train"].targets
    sampler = dm.train_dataloader().sampler
    present = targets.sum(axis=0) > 0
    for _ in range(2):
        drawn = targets[list(sampler)].sum(axis=0)
        assert (drawn[present] >= 2).all() and len(drawn) == 15


def test_cae_task_takes_each_class_from_its_papers_sources(tmp_path):
    root = load_maker("combined").create(tmp_path / "root")
    load_maker("kermany_pneumonia").create(root)  # Kermany's chest_xray/ beside the others
    dm = _dm("cae_covid_pneumonia", root, tmp_path)
    dm.prepare_data()
    dm.setup()
    assert dm.class_names == ["COVID-19", "normal", "pneumonia"]
    frame = pd.concat(dm.frames.values())
    source = frame["patient_id"].str.split(":").str[0]
    assert set(source[frame["label"] == "pneumonia"]) == {"kermany"}  # pneumonia from Kermany only (section 3.2)
    assert set(source[frame["label"] == "normal"]) == {"radiography"}  # normals from the Radiography Database only
    assert set(source[frame["label"] == "COVID-19"]) <= {"radiography", "cohen"}
    assert dm.excluded["kermany:label_outside_task"] > 0 and dm.excluded["radiography:label_outside_task"] > 0  # counted, not lost
    assert {"test", "val"} <= set(frame["split"]) and (frame.loc[source == "kermany", "split"] != "").all()  # no official test list kept
