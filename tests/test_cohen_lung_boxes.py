"""The Cohen collection's lung bounding boxes in its manifest (issue 12; siamese paper 3.3.1 crops to the lungs)."""

import json

import pytest

from conftest import dataset_header, load_maker
from datamodules import get_datamodule_class
from datamodules.lung_regions import LUNG_BOXES_COLUMN, parse_boxes
from datamodules.manifest import ManifestError
from datamodules.readers.cohen_covid import LUNG_BOXES_FILE, CohenCovidReader

maker, cohen, _dm = dataset_header("cohen_covid", "cohen")


def _boxes(manifest):
    return {path.rsplit("/", 1)[-1]: text for path, text in zip(manifest["path"], manifest[LUNG_BOXES_COLUMN])}


def test_boxes_are_normalised_by_the_annotations_own_size(cohen, tmp_path):
    boxes = _boxes(_dm(cohen, tmp_path).build_manifest())
    assert parse_boxes(boxes["c1-pa.jpg"]) == [(0.1, 0.1, 0.45, 0.85), (0.55, 0.1, 0.9, 0.85)]  # 1000x800 original
    assert parse_boxes(boxes["nf11.png"]) == [(0.1, 0.1, 0.45, 0.9), (0.55, 0.1, 0.9, 0.9)]  # right lung first
    assert {name for name, text in boxes.items() if text} == {"c1-pa.jpg", "nf11.png"}  # others (and the CT) get ""


def test_no_annotation_file_gives_empty_boxes(cohen, tmp_path):
    (cohen / LUNG_BOXES_FILE).unlink()
    assert set(_dm(cohen, tmp_path).build_manifest()[LUNG_BOXES_COLUMN]) == {""}


@pytest.mark.parametrize("content", ["{not json", json.dumps({"images": [{"id": 1}], "annotations": []}),
                                     json.dumps({"images": [], "annotations": [{"image_id": 7, "bbox": [0, 0, 1, 1]}]})])
def test_a_malformed_annotation_file_is_an_error_naming_it(cohen, tmp_path, content):
    (cohen / LUNG_BOXES_FILE).write_text(content)
    with pytest.raises(ManifestError, match="imageannotation_ai_lung_bounding_boxes.json"):
        _dm(cohen, tmp_path).build_manifest()


def test_combined_tasks_carry_the_column_and_the_split_file_has_no_boxes(tmp_path):
    root = load_maker("combined").create(tmp_path / "combined")
    dm = get_datamodule_class("wce_covidxray5k_cohen")(root, image_size=32, cache_dir=tmp_path / "cache", split_dir=tmp_path / "splits")
    manifest = dm.build_manifest()
    boxes = manifest.groupby("component")[LUNG_BOXES_COLUMN].apply(lambda s: set(s.map(bool)))
    assert boxes["cohen"] == {True, False} and boxes["covidx5k"] == {False}
    dm.prepare_data()
    assert "lung" not in dm.split_path.read_text()


def test_the_real_collection_has_lung_boxes_for_over_a_hundred_images(shared_data, tmp_path):
    manifest = CohenCovidReader(CohenCovidReader.locate(shared_data / "cohen-covid-chestxray"), views=None).build_manifest()
    annotated = manifest[manifest[LUNG_BOXES_COLUMN] != ""]
    assert len(annotated) >= 100  # 167 images annotated upstream (334 boxes), most of them frontal X-rays in the manifest
    assert all(1 <= len(parse_boxes(text)) <= 2 for text in annotated[LUNG_BOXES_COLUMN])
