"""Integration tests on the real subsets in ../shared/data: every count asserted here is one the subset's README
states (or, where marked, follows from it). Skipped when the data is absent. Big sets are checked at the
manifest; only small ones are decoded (at 32 px)."""

from collections import Counter

import numpy as np
import pytest

from datamodules import DATAMODULES
from datamodules.readers.chestxray14 import FINDINGS, ChestXray14Reader
from datamodules.readers.cohen_covid import CohenCovidReader
from datamodules.readers.covid19_radiography import Covid19RadiographyReader
from datamodules.readers.covidx import parse_split_line
from datamodules.readers.kermany_pneumonia import KermanyPneumoniaReader

pytestmark = pytest.mark.integration

COHEN_ABSENT = {
    "covid-19-pneumonia-14-PA.png", "2C10A413-AABE-4807-8CCE-6A2025594067.jpeg", "E1724330-1866-4581-8CD8-CEC9B8AFEDDE.jpeg",
    "7E335538-2F86-424E-A0AB-6397783A38D0.jpeg", "parapneumonic-effusion-1-PA.png", "parapneumonic-effusion-1-L.png",
    "chlamydia-pneumonia-PA.png", "chlamydia-pneumonia-L.png", "cavitating-pneumonia-4-day28-PA.png",
    "cavitating-pneumonia-4-day28-L.png", "pneumocystis-jiroveci-pneumonia-4-PA.png", "covid-19-pneumonia-24-day6.jpg",
    "case_71_figura1.png", "covid-19-caso-86-RX-Torace-2.jpg",
}


def _dirs(tmp_path):
    return {"cache_dir": tmp_path / "cache", "split_dir": tmp_path / "splits", "image_size": 32}


def _names(paths):
    return {str(p).rsplit("/", 1)[-1] for p in paths}


def test_cohen_all_views_match_the_readme(shared_data, tmp_path):
    root = CohenCovidReader.locate(shared_data / "cohen-covid-chestxray")
    binary = DATAMODULES["cohen_covid"](root, task="binary", views=None, **_dirs(tmp_path))
    manifest = binary.build_manifest()
    # README: 648 X-ray files have a metadata row (first row per file); 78 are 'todo'; COVID-19 439 + COVID-19+ARDS 12.
    assert len(manifest) == 648 - 78 and binary.manifest_excluded["unlabelled"] == 78
    assert manifest["label"].value_counts().to_dict() == {"COVID-19": 439 + 12, "non-COVID": 648 - 78 - 451}
    # README: 14 listed X-ray files are absent; each is reported by path, none crashes.
    assert _names(binary.missing["path"]) == COHEN_ABSENT and len(binary.missing) == 14
    three = DATAMODULES["cohen_covid"](root, views=None, **_dirs(tmp_path)).build_manifest()
    # README: No Finding 19; ARDS 4 is outside the three classes; every other finding is a pneumonia.
    pneumonias = 16 + 16 + 13 + 11 + 8 + 8 + 5 + 5 + 4 + 4 + 4 + 2
    assert three["label"].value_counts().to_dict() == {"COVID-19": 451, "pneumonia": pneumonias, "normal": 19}
    # views=None keeps the laterals (README: L 54 among the 648 files, 'todo' ones included).
    assert 0 < (manifest["view"] == "L").sum() <= 54


def test_cohen_default_frontal_set_decodes_and_splits(shared_data, tmp_path):
    dm = DATAMODULES["cohen_covid"](shared_data / "cohen-covid-chestxray", **_dirs(tmp_path))
    dm.prepare_data()
    dm.setup()
    used = sum(len(f) for f in dm.frames.values())
    # README: PA 305 + AP Supine 135 + AP 115 = 555 frontal files; minus the 28 frontal 'todo' rows and the 4
    # frontal ARDS-only images (outside the three classes) = 523.
    assert used == 523 and dm.manifest_excluded["unlabelled"] == 28 and dm.manifest_excluded["label_outside_task"] == 4
    assert len(dm._cache.problems) == 0  # every present image decodes (some .jpg are PNGs inside)
    assert set(dm.missing["path"].map(lambda p: p.rsplit("/", 1)[-1])) <= COHEN_ABSENT and dm.excluded["missing_file"] == 11
    where = {}
    for split, frame in dm.frames.items():
        for patient in frame["patient_id"]:
            assert where.setdefault(patient, split) == split


def test_kermany_counts_match_the_readme(shared_data, tmp_path):
    root = KermanyPneumoniaReader.locate(shared_data / "kermany-chest-xray-pneumonia")
    manifest = DATAMODULES["kermany_pneumonia"](root, task="three_class", **_dirs(tmp_path)).build_manifest()
    counts = manifest.groupby(["official_split", "label"]).size().to_dict()
    assert counts == {("train", "normal"): 1341, ("train", "bacterial_pneumonia"): 2530, ("train", "viral_pneumonia"): 1345,
                      ("test", "normal"): 234, ("test", "bacterial_pneumonia"): 242, ("test", "viral_pneumonia"): 148}
    assert manifest.groupby("patient_id")["official_split"].nunique().max() == 1  # the published split is patient-wise


def test_radiography_subset_counts_match_the_readme(shared_data, tmp_path):
    dm = DATAMODULES["covid19_radiography"](Covid19RadiographyReader.locate(shared_data / "covid19-radiography-database"), **_dirs(tmp_path))
    manifest = dm.build_manifest()
    assert manifest["label"].value_counts().to_dict() == {"COVID-19": 3616, "normal": 650}
    kept = set((shared_data / "covid19-radiography-database" / "SUBSAMPLE_Normal_kept.txt").read_text().split())
    assert _names(manifest.loc[manifest["label"] == "normal", "path"]) == kept


def test_nih1000_manifest_matches_the_readme(shared_data, tmp_path):
    dm = DATAMODULES["chestxray14"](ChestXray14Reader.locate(shared_data / "nih-chestxray14-nih1000"), **_dirs(tmp_path))
    manifest = dm.build_manifest()
    # README: 112,120 rows; all 1000 images found in it; the other 111,120 are counted, not logged one by one.
    assert len(manifest) == 1000 and len(dm.missing) == 112120 - 1000
    findings = Counter(f for label in manifest["label"] for f in label.split("|"))
    assert findings == {"No Finding": 499, "Effusion": 170, "Infiltration": 162, "Atelectasis": 95, "Cardiomegaly": 83,
                        "Consolidation": 42, "Pneumothorax": 40, "Nodule": 39, "Emphysema": 37, "Mass": 35, "Fibrosis": 32,
                        "Edema": 31, "Pleural_Thickening": 29, "Pneumonia": 11, "Hernia": 9}
    assert manifest["view"].value_counts().to_dict() == {"PA": 637, "AP": 363}
    dm.prepare_data()  # 1000 images of 64x64 (979 RGB, 21 RGBA): cheap to decode
    dm.setup()
    assert len(dm._cache.problems) == 0 and sum(len(f) for f in dm.frames.values()) == 1000
    targets = np.concatenate([dm.datasets[s].targets for s in ("train", "val", "test")])
    assert targets.shape == (1000, 14) and int(targets[:, FINDINGS.index("Effusion")].sum()) == 170
    assert all(len(dm.frames[s]) for s in ("train", "val", "test"))


def test_covidx_split_files_parse_to_the_readme_counts(shared_data):
    labels = shared_data / "covidx-splits" / "labels"
    parsed = {name: [parse_split_line(line) for line in (labels / name).read_text().splitlines() if line.strip()]
              for name in ("train_COVIDx5.txt", "test_COVIDx5.txt", "test_COVIDx9A.txt")}
    count = lambda name, i: Counter(row[i] for row in parsed[name])  # noqa: E731
    assert count("test_COVIDx5.txt", 2) == {"COVID-19": 100, "normal": 100, "pneumonia": 100}
    assert count("test_COVIDx5.txt", 3) == {"cohen": 42, "actmed": 33, "sirm": 17, "fig1": 11, "": 197}
    assert count("train_COVIDx5.txt", 2) == {"normal": 7966, "pneumonia": 5475, "COVID-19": 517}
    assert count("train_COVIDx5.txt", 3) == {"rsna": 13389, "cohen": 491, "sirm": 29, "actmed": 25, "fig1": 24}
    assert count("test_COVIDx9A.txt", 2) == {"COVID-19": 200, "normal": 100, "pneumonia": 100}
    assert count("test_COVIDx9A.txt", 3) == {"ricord": 200, "rsna": 200}  # 'rnsa' lines are read as rsna


def test_covidx_with_the_cohen_images_folder(shared_data, tmp_path):
    dm = DATAMODULES["covidx"](shared_data / "covidx-splits", images_dir=shared_data / "cohen-covid-chestxray" / "images", **_dirs(tmp_path))
    manifest = dm.build_manifest()
    cohen = manifest[manifest["source"] == "cohen"]
    # README: all 42 test and 447 of the 491 train cohen entries resolve to files in the cohen images folder.
    assert cohen["official_split"].value_counts().to_dict() == {"train": 447, "test": 42}
    # One more test line resolves there: a cohen SARS image listed without a source field.
    assert _names(manifest.loc[manifest["source"] == "", "path"]) == {"SARS-10.1148rg.242035193-g04mr34g05x-Fig5-day9.jpeg"}
    assert len(dm.missing) == 13958 + 300 - len(manifest)  # every other listed image is counted as absent


@pytest.mark.parametrize(
    "name, folder, options, expected",
    [
        # README counts, per class, over all splits (train + val + test)
        ("covid19_radiography", "covid19-radiography-database", {}, {"COVID-19": 3616, "normal": 650}),
        ("kermany_pneumonia", "kermany-chest-xray-pneumonia", {"task": "three_class"},
         {"normal": 1341 + 234, "bacterial_pneumonia": 2530 + 242, "viral_pneumonia": 1345 + 148}),
        ("cohen_covid", "cohen-covid-chestxray", {"task": "binary", "views": None}, {"COVID-19": 451, "non-COVID": 119}),
    ],
)
def test_data_report_command_counts_match_the_readmes(shared_data, tmp_path, capsys, name, folder, options, expected):
    import json

    from benchmark.cli import main

    args = ["data-report", name, "--root", str(shared_data / folder), "--image-size", "32", "--json", "--duplicates", "off",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "runs")]
    if options:
        args += ["--options", json.dumps(options)]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    totals = Counter()
    for split in report["splits"].values():
        for label, counts in split["per_class"].items():
            totals[label] += counts["images"]
    kept_out = report["excluded"]["duplicate_or_patient_of_fixed_split"]  # train copies of official test images
    if name == "kermany_pneumonia":  # official test folder: near-duplicates chain a few train patients to it
        assert 0 < kept_out < 100
    else:
        assert kept_out == 0
    assert sum(totals.values()) + kept_out == sum(expected.values())
    assert all(expected[label] - kept_out <= totals[label] <= expected[label] for label in expected)
    # the 14 listed X-ray files absent from the compact Cohen copy are reported and counted, not lost
    absent = 14 if name == "cohen_covid" else 0
    assert report["problem_count"] == absent and report["excluded"].get("missing_file", 0) == absent


def test_data_report_command_on_the_nih_subset(shared_data, tmp_path, capsys):
    import json

    from benchmark.cli import main

    assert main(["data-report", "chestxray14", "--root", str(shared_data / "nih-chestxray14-nih1000"), "--image-size", "32",
                 "--json", "--duplicates", "off", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "runs")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sum(split["images"] for split in report["splits"].values()) == 1000  # README: all 1000 images are in the csv
    assert report["views"] == {"AP": 363, "PA": 637}
    assert report["excluded"]["missing_file"] == 112120 - 1000


def test_data_report_command_on_the_covidx_split_files(shared_data, tmp_path, capsys):
    import json

    from benchmark.cli import main

    options = {"images_dir": str(shared_data / "cohen-covid-chestxray" / "images")}
    assert main(["data-report", "covidx", "--root", str(shared_data / "covidx-splits"), "--image-size", "32", "--json",
                 "--duplicates", "off", "--options", json.dumps(options), "--cache-dir", str(tmp_path / "cache"),
                 "--out", str(tmp_path / "runs")]) == 0
    report = json.loads(capsys.readouterr().out)
    used = sum(split["images"] for split in report["splits"].values())
    kept_out = report["excluded"]["duplicate_or_patient_of_fixed_split"]
    # README: 447 train + 42 test cohen entries resolve to the cohen images (plus one unsourced cohen SARS line);
    # every other line of train_COVIDx5 (13,958) and test_COVIDx5 (300) is counted as absent, none is lost.
    assert used + kept_out == 447 + 42 + 1
    assert report["excluded"]["missing_file"] == 13958 + 300 - (447 + 42 + 1)
    assert report["splits"]["test"]["images"] == 42 + 1  # the official test list, as listed
