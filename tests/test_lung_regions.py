"""Lung regions (datamodules/lung_regions.py): annotated boxes or the fixed central field, as masks and crops."""

import numpy as np
import pytest

from datamodules.lung_regions import CENTRAL_FIELD, crop_to_box, format_boxes, lung_region, normalised_box, parse_boxes, region_mask, union_box


def test_boxes_round_trip_through_the_manifest_text_and_bad_ones_are_refused():
    boxes = [(0.1, 0.2, 0.45, 0.9), (0.55, 0.2, 0.9, 0.85)]
    assert parse_boxes(format_boxes(boxes)) == boxes
    assert parse_boxes("") == [] and parse_boxes(None) == [] and parse_boxes(float("nan")) == []
    for bad in ("0.1 0.2 0.3", "0.5 0.2 0.4 0.9", "0.1 0.2 0.4 1.2"):
        with pytest.raises(ValueError, match="lung box"):
            parse_boxes(bad)


def test_a_region_is_the_annotation_else_the_central_field():
    assert lung_region("") == ([CENTRAL_FIELD], "central_field")
    assert lung_region("0.1 0.2 0.4 0.9") == ([(0.1, 0.2, 0.4, 0.9)], "annotation")
    assert normalised_box(100, 50, 200, 400, 1000, 400) == (0.1, 0.125, 0.3, 1.0)  # clipped to the image


def test_masks_and_crops_cover_exactly_the_boxes():
    mask = region_mask([(0.0, 0.0, 0.5, 0.25), (0.75, 0.5, 1.0, 1.0)], (8, 8))
    assert mask.sum() == 4 * 2 + 2 * 4 and mask[0, :4].all() and not mask[0, 4:].any() and mask[7, 6:].all()
    central = region_mask([CENTRAL_FIELD], 64)
    assert not central[:6].any() and not central[:, :7].any() and central[32, 32]  # corners and borders stay outside
    assert union_box([(0.1, 0.2, 0.4, 0.9), (0.5, 0.1, 0.9, 0.8)]) == (0.1, 0.1, 0.9, 0.9)
    pixels = np.arange(100).reshape(10, 10)
    assert crop_to_box(pixels, (0.2, 0.1, 0.5, 0.4)).tolist() == pixels[1:4, 2:5].tolist()
