import json
import re
import shutil

import pytest

from benchmark.cli import main
from benchmark.data_report import DUPLICATE_KEYS, PAIR_KEYS, REPORT_KEYS, data_report, format_report
from conftest import load_maker

COMBINED_OPTIONS = {"components": [
    {"dataset": "covid19_radiography", "prefix": "radiography"},
    {"dataset": "cohen_covid", "prefix": "cohen", "options": {"views": None}},
]}


def _report(name, root, tmp_path, **kwargs):
    return data_report(name, root=root, image_size=32, cache_dir=tmp_path / "cache", split_dir=tmp_path / "splits", **kwargs)


def test_json_keys_are_stable(tmp_path):
    """Scripts read these keys: renaming one is a breaking change (update README "Data report" too)."""
    assert REPORT_KEYS == (
        "dataset", "root", "synthetic", "classes", "multilabel", "image_size", "split_file", "split_sha256", "splits",
        "sources", "components", "views", "problems", "problem_count", "problem_reasons", "excluded", "duplicates",
    )
    assert DUPLICATE_KEYS == (
        "scope", "max_distance", "min_correlation", "pair_count", "identical", "near", "cross_source", "by_sources",
        "label_conflicts", "pairs_across_splits", "pairs",
    )
    assert PAIR_KEYS == ("path_a", "path_b", "source_a", "source_b", "label_a", "label_b", "split_a", "split_b", "kind", "distance", "correlation")
    root = load_maker("combined").create(tmp_path / "data", components=("covid19_radiography", "cohen_covid"))
    report = _report("combined", root, tmp_path, options=COMBINED_OPTIONS)
    assert tuple(report) == REPORT_KEYS
    assert tuple(report["duplicates"]) == DUPLICATE_KEYS
    assert report["duplicates"]["pairs"] and all(tuple(p) == PAIR_KEYS for p in report["duplicates"]["pairs"])
    assert set(report["splits"]) == {"train", "val", "test"}
    assert set(report["splits"]["train"]) == {"images", "patients", "per_class"}
    assert all(set(c) == {"images", "patients"} for c in report["splits"]["train"]["per_class"].values())
    json.dumps(report)  # plain JSON types only


def test_combined_report_counts_sources_components_and_duplicates(tmp_path):
    root = load_maker("combined").create(tmp_path / "data", components=("covid19_radiography", "cohen_covid"))
    report = _report("combined", root, tmp_path, options=COMBINED_OPTIONS)
    assert report["components"]["radiography"] == 18
    # a Cohen image's source is the publication it came from (the domain of its url; "unknown" without one)
    cohen_sources = {k: v for k, v in report["sources"].items() if k != "covid19_radiography"}
    assert report["sources"]["covid19_radiography"] == 18 and sum(cohen_sources.values()) == report["components"]["cohen"]
    assert "radiopaedia.org" in cohen_sources and set(cohen_sources) <= {"radiopaedia.org", "eurorad.org", "sirm.org", "github.com", "unknown"}
    dup = report["duplicates"]
    assert dup["cross_source"] == 5 and dup["identical"] == 1 and dup["pairs_across_splits"] == 0
    assert dup["by_sources"] == {"radiography~cohen": 5}
    assert all(p["split_a"] == p["split_b"] for p in dup["pairs"])
    # cohen's metadata lists one absent image: a problem with its reason
    assert any(p["path"].endswith("c17-absent.png") and "not found" in p["problem"] for p in report["problems"])
    text = format_report(report)
    assert "duplicates (all pairs" in text and "radiography~cohen 5" in text


def test_single_dataset_duplicates_across_splits_are_reported(radiography_root, tmp_path):
    # the same X-ray filed under two classes: each image is its own patient, so the split may separate them
    shutil.copyfile(radiography_root / "COVID" / "COVID-1.png", radiography_root / "Normal" / "Normal-99.png")
    report = _report("covid19_radiography", radiography_root, tmp_path)
    pairs = report["duplicates"]["pairs"]
    assert len(pairs) == 1 and pairs[0]["kind"] == "identical"
    assert {pairs[0]["label_a"], pairs[0]["label_b"]} == {"COVID-19", "normal"} and report["duplicates"]["label_conflicts"] == 1
    assert report["duplicates"]["pairs_across_splits"] == int(pairs[0]["split_a"] != pairs[0]["split_b"])
    assert _report("covid19_radiography", radiography_root, tmp_path, duplicates="off")["duplicates"]["scope"] == "off"


def test_unreadable_files_are_listed_with_reasons_and_many_are_summarised(radiography_root, tmp_path):
    for i in range(25):
        (radiography_root / "COVID" / f"COVID-bad{i:02d}.png").write_bytes(b"\x89PNG\r\n\x1a\ngarbage")
    (radiography_root / "Normal" / "Normal-empty.png").write_bytes(b"")
    report = _report("covid19_radiography", radiography_root, tmp_path)
    assert report["problem_count"] == 26 and report["excluded"]["unreadable"] == 26  # excluded, and counted
    assert report["excluded"]["not_in_split_file"] == 0
    reasons = report["problem_reasons"]
    assert reasons["empty file"] == 1 and sum(reasons.values()) == 26
    text = format_report(report)
    assert "... and 6 more" in text and text.count("(no IEND chunk)") == 20
    assert any(p["path"].endswith("Normal-empty.png") and p["problem"] == "empty file" for p in report["problems"])
    assert report["splits"]["train"]["images"] + report["splits"]["val"]["images"] + report["splits"]["test"]["images"] == 18


def test_cli_prints_the_json_report(radiography_root, tmp_path, capsys):
    code = main(["data-report", "covid19_radiography", "--root", str(radiography_root.parent), "--image-size", "32",
                 "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "runs"), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert tuple(report) == REPORT_KEYS and report["dataset"] == "covid19_radiography"


def test_cli_names_a_missing_root(tmp_path, capsys):
    assert main(["data-report", "twice_transfer_radiography", "--root", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


# ----- the real subsets: the overlaps the READMEs warn about -----
@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("shared-cache")


@pytest.mark.integration
def test_kermany_train_normals_inside_radiography_normal(shared_data, shared_cache, tmp_path):
    """The README: Radiography's Normal class holds Kermany's 1341 train normals (numbered as one block) among 10192;
    the shared subset keeps 650 random normals, so about 650 * 1341 / 10192 = 85.5 (sd 8.2) of them are Kermany's."""
    options = {"components": [{"dataset": "covid19_radiography", "prefix": "radiography"}, {"dataset": "kermany_pneumonia", "prefix": "kermany"}],
               "duplicate_scope": "cross_source"}
    report = data_report("combined", root=shared_data, image_size=64, cache_dir=shared_cache, split_dir=tmp_path / "splits", options=options)
    pairs = [p for p in report["duplicates"]["pairs"] if p["source_a"] != p["source_b"]]
    radiography = {p["path_a"] if p["source_a"] == "radiography" else p["path_b"] for p in pairs}
    kermany = {p["path_b"] if p["source_a"] == "radiography" else p["path_a"] for p in pairs}
    assert 65 <= len(radiography) <= 106  # within 2.5 sd of the expectation
    assert all("/Normal/" in path for path in radiography)  # never a COVID image
    assert all("/train/NORMAL/" in path for path in kermany)  # never a Kermany test image or a pneumonia
    numbers = sorted(int(re.search(r"Normal-(\d+)", path)[1]) for path in radiography)
    assert numbers[-1] - numbers[0] < 1341  # one block of Kermany numbers ...
    kept = (shared_data / "covid19-radiography-database" / "SUBSAMPLE_Normal_kept.txt").read_text().split()
    in_block = {int(re.search(r"(\d+)", name)[1]) for name in kept} & set(range(numbers[0], numbers[-1] + 1))
    assert in_block == set(numbers)  # ... and every kept normal inside it was found
    assert report["duplicates"]["pairs_across_splits"] == 0


@pytest.mark.integration
def test_cohen_images_inside_radiography_covid(shared_data, shared_cache, tmp_path):
    report = data_report("twice_transfer_radiography", root=shared_data, image_size=64, cache_dir=shared_cache, split_dir=tmp_path / "splits")
    dup = report["duplicates"]
    assert dup["by_sources"]["cohen~radiography"] >= 300  # 475 at the default thresholds
    radiography_sides = [p["path_b"] if p["source_a"] == "cohen" else p["path_a"] for p in dup["pairs"] if p["source_a"] != p["source_b"]]
    assert all("/COVID/" in path for path in radiography_sides)
    assert dup["pairs_across_splits"] == 0
    assert report["excluded"]["reference"] > 500 and report["splits"]["test"]["per_class"]["COVID-19"]["images"] == 60
    assert "view" not in report["excluded"]  # no Radiography image of the subset is a copy of a Cohen lateral view


@pytest.mark.integration
def test_covidx5_training_copies_of_test_images_are_removed(shared_data, shared_cache, tmp_path):
    """COVIDx v5 lists Cohen patient 178's 16660_{2..5}_1.jpg for training; they are test patient 97's images."""
    options = {"component_options": {"covidx": {"images_dir": str(shared_data / "cohen-covid-chestxray" / "images")}}}
    report = data_report("siamese_covidx", root=shared_data, image_size=64, cache_dir=shared_cache, split_dir=tmp_path / "splits", options=options)
    straddling = [p for p in report["duplicates"]["pairs"] if {p["split_a"], p["split_b"]} == {"test", "excluded"}]
    assert sorted(p["path_a"].split("/")[-1] for p in straddling) == [f"16660_{i}_1.jpg" for i in (2, 3, 4, 5)]
    assert report["excluded"]["duplicate_or_patient_of_fixed_split"] == 5  # with the patient's first image
    assert report["duplicates"]["pairs_across_splits"] == 0
