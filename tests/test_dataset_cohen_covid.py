import pytest

from conftest import dataset_header
from datamodules import DATAMODULES
from datamodules.readers.cohen_covid import CohenCovidReader, finding_category
from datamodules.manifest import ManifestError

maker, cohen, _dm = dataset_header("cohen_covid", "cohen")


def _names(manifest):
    return dict(zip(manifest["path"].str.rsplit("/", n=1).str[-1], manifest["label"]))


@pytest.mark.parametrize("finding, category", [
    ("COVID-19", "covid"), ("COVID-19, ARDS", "covid"), ("Pneumonia/Viral/COVID-19", "covid"), ("No Finding", "normal"),
    ("SARS", "pneumonia"), ("Pneumonia/Fungal/Pneumocystis", "pneumonia"), ("Pneumonia", "pneumonia"), ("Lipoid", "pneumonia"),
    ("ARDS", "other"), ("todo", None), ("Tuberculosis", "other"), ("Sarcoidosis", "unknown"),
])
def test_findings_map_to_categories(finding, category):
    assert finding_category(finding) == category


def test_default_reads_frontal_xrays_with_three_classes(cohen, tmp_path):
    dm = _dm(cohen, tmp_path)
    manifest = dm.build_manifest()
    labels = _names(manifest)
    assert manifest["label"].value_counts().to_dict() == {"pneumonia": 7, "COVID-19": 6, "normal": 3}
    assert labels["c2.png"] == "COVID-19" and labels["c3.png"] == "COVID-19" and labels["kleb9.png"] == "pneumonia"
    assert not {"c1-l.jpg", "c5-noview.png", "todo14.jpg", "ards15.png", "c6.nii.gz"} & set(labels)  # lateral, blank view, todo, ARDS, CT
    assert set(manifest["view"]) == {"PA", "AP", "AP Supine", "AP erect"}
    assert dm.manifest_excluded == {"not_xray": 1, "view": 2, "unlabelled": 1, "label_outside_task": 1, "listed_twice": 1}
    assert list(dm.missing["path"]) == [str(cohen / "images" / maker.ABSENT)]
    assert manifest.loc[manifest["path"].str.endswith("c2.png"), ["sex", "age"]].values.tolist() == [["F", 52.0]]


def test_source_is_the_domain_of_each_images_url(cohen, tmp_path):
    """The publication or site an image came from (leave-one-source-out splits hold one out); blank url: unknown."""
    manifest = _dm(cohen, tmp_path, views=None).build_manifest()
    source = dict(zip(manifest["path"].str.rsplit("/", n=1).str[-1], manifest["source"]))
    assert source["c1-pa.jpg"] == source["nf11.png"] == "radiopaedia.org"  # with and without a scheme
    assert source["c2.png"] == source["strep8.jpg"] == "eurorad.org"  # www. dropped, lower case
    assert source["c3.png"] == source["c18.png"] == "sirm.org" and source["sars7.jpg"] == "github.com"
    assert source["kleb9.png"] == "unknown"


def test_a_file_listed_under_two_patients_is_kept_once_and_the_patients_merged(cohen, tmp_path):
    manifest = _dm(cohen, tmp_path).build_manifest()
    patients = dict(zip(manifest["path"].str.rsplit("/", n=1).str[-1], manifest["patient_id"]))
    assert manifest["path"].is_unique
    assert patients["leg16-pa.jpg"] == patients["leg20-ap.jpg"] == "16"


def test_all_views_and_binary_task(cohen, tmp_path):
    every = _dm(cohen, tmp_path, views=None).build_manifest()
    assert {"c1-l.jpg", "c5-noview.png"} <= set(_names(every)) and len(every) == 18
    binary = _dm(cohen, tmp_path, task="binary").build_manifest()
    assert binary["label"].value_counts().to_dict() == {"non-COVID": 11, "COVID-19": 6}
    assert _names(binary)["ards15.png"] == "non-COVID"
    pa_only = _dm(cohen, tmp_path, views=["pa"]).build_manifest()
    assert set(pa_only["view"]) == {"PA"}
    names = {_dm(cohen, tmp_path, **kw).split_path.name for kw in ({}, {"views": None}, {"task": "binary"}, {"views": ["PA"]})}
    assert len(names) == 4  # option sets never share a split file


def test_setup_gives_patient_disjoint_splits_and_counts_exclusions(cohen, tmp_path):
    dm = _dm(cohen, tmp_path, val_fraction=0.2, test_fraction=0.2)
    dm.prepare_data()
    dm.setup()
    assert sum(len(f) for f in dm.frames.values()) == 16
    seen = {}
    for split, frame in dm.frames.items():
        for patient in frame["patient_id"]:
            assert seen.setdefault(patient, split) == split
    excluded = dm.describe()["excluded"]
    assert excluded["missing_file"] == 1 and excluded["unlabelled"] == 1 and excluded["view"] == 2
    assert dm.class_names == ["COVID-19", "normal", "pneumonia"]


def test_malformed_metadata_names_file_line_and_column(cohen, tmp_path):
    metadata = cohen / "metadata.csv"
    text = metadata.read_text()
    metadata.write_text(text.replace("Streptococcus", "Sarcoidosis"))
    with pytest.raises(ManifestError, match=r"metadata.csv, line 10, column 'finding': unknown finding 'Sarcoidosis'"):
        _dm(cohen, tmp_path).build_manifest()
    metadata.write_text(text.replace("patientid,", "patient,", 1))
    with pytest.raises(ManifestError, match=r"metadata.csv: missing column 'patientid'"):
        _dm(cohen, tmp_path).build_manifest()
    metadata.write_text(text.replace("Streptococcus", ""))
    with pytest.raises(ManifestError, match=r"line 10, column 'finding': empty finding"):
        _dm(cohen, tmp_path).build_manifest()


def test_missing_policy_error_and_keep(cohen, tmp_path):
    with pytest.raises(ManifestError, match="1 listed images are not on disk"):
        _dm(cohen, tmp_path, missing="error").build_manifest()
    kept = _dm(cohen, tmp_path, missing="keep")
    kept.prepare_data()
    assert list(kept._cache.problems["problem"]) == ["file not found"]  # the cache reports it instead


def test_registered_and_located(cohen):
    assert DATAMODULES["cohen_covid"].reader is CohenCovidReader
    assert CohenCovidReader.locate(cohen.parent) == cohen
