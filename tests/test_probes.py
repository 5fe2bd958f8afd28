import cv2
import numpy as np
import pytest

from benchmark.explain.probes import (burn_text, energy_inside, mask_images, probe_metric, shortcut_verdict,
                                      source_probe, text_shift)
from datamodules.lung_regions import CENTRAL_FIELD, region_mask


def test_mask_images_keeps_lungs_or_the_rest_and_copies():
    pixels = np.full((2, 20, 20), 7, np.uint8)
    masks = np.zeros((2, 20, 20), bool)
    masks[:, 5:15, 4:10] = True
    lungs, rest = mask_images(pixels, masks, keep="lungs"), mask_images(pixels, masks, keep="outside_lungs")
    assert (lungs > 0).sum() == 2 * 60 and (lungs[masks] == 7).all()
    assert (rest > 0).sum() == 2 * (400 - 60) and (rest[masks] == 0).all()
    assert (pixels == 7).all() and lungs.dtype == np.uint8
    with pytest.raises(ValueError):
        mask_images(pixels, masks, keep="heart")


@pytest.mark.parametrize("size", [64, 224])
@pytest.mark.parametrize("corner", ["top_left", "bottom_right"])
def test_burn_text_stays_in_its_corner_outside_the_central_field(size, corner):
    pixels = np.full((2, size, size), 40, np.uint8)
    burnt = burn_text(pixels, corner=corner)
    assert (pixels == 40).all()
    changed = (burnt != pixels).any(0)
    field = region_mask([CENTRAL_FIELD], size)
    assert changed.sum() > 0.003 * size * size and not (changed & field).any()
    rows, cols = np.nonzero(changed)
    height = rows.max() - rows.min() + 1
    assert 0.05 * size <= height <= 0.10 * size
    if corner == "top_left":
        assert rows.max() < 0.1 * size and cols.max() < 0.55 * size
    else:
        assert rows.min() >= 0.85 * size and cols.min() > 0.45 * size
    assert set(np.unique(burnt[:, changed])) == {255}


def test_text_shift_on_hand_made_scores():
    before = np.array([[0.9, 0.1], [0.6, 0.4]])
    after = np.array([[0.8, 0.2], [0.4, 0.6]])
    shift = text_shift(before, after, 0)
    assert shift["images"] == 2 and shift["moved_fraction"] == 0.5
    assert shift["mean_drop"] == pytest.approx(0.15) and shift["max_drop"] == pytest.approx(0.2)
    assert shift["mean_total_shift"] == pytest.approx(0.15)
    empty = text_shift(np.zeros((0, 2)), np.zeros((0, 2)), 0)
    assert empty["images"] == 0 and empty["mean_drop"] is None


def test_probe_metric_cis_contain_the_point():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 20)
    scores = rng.random((60, 3)) + 0.8 * np.eye(3)[labels]
    out = probe_metric(scores, labels, np.arange(60) // 2, ["a", "b", "c"])
    low, high = out["ci"]
    assert out["metric"] == "balanced_accuracy" and low <= out["value"] <= high
    assert out["resamples"] == 200 and out["chance"] == pytest.approx(1 / 3) and out["patients"] == 30
    findings = (rng.random((60, 3)) < 0.4).astype(int)
    two_present = probe_metric(scores[:40], labels[:40], np.arange(40), ["a", "b", "c"])  # no image of class c
    assert two_present["chance"] == 0.5
    multi = probe_metric(findings + 0.5 * rng.random((60, 3)), findings, np.arange(60), ["x", "y", "z"], multilabel=True)
    assert multi["metric"] == "auroc" and multi["chance"] == 0.5 and multi["value"] > 0.9


def test_source_probe_finds_encoded_sources_not_random_ones():
    rng = np.random.default_rng(0)
    sources = np.repeat(["a", "b", "c"], 40)
    groups = np.arange(120) // 3  # three images per patient
    encoded = rng.normal(size=(120, 8)) + 3 * np.eye(8)[np.searchsorted(["a", "b", "c"], sources)]
    assert source_probe(encoded, sources, groups)["auroc"] > 0.9
    binary = source_probe(rng.normal(size=(120, 8)), sources == "a", groups)
    assert binary["auroc"] < 0.7 and binary["folds"] == 5 and binary["images"] == 120
    assert source_probe(encoded, np.repeat("a", 120), groups)["reason"] == "one source"
    few = source_probe(encoded[:43], np.array(["a"] * 40 + ["b"] * 3), groups[:43])
    assert few["folds"] == 3 and few["auroc"] is not None
    assert source_probe(encoded[:41], np.array(["a"] * 40 + ["b"]), groups[:41])["auroc"] is None


def test_source_probe_keeps_a_patient_in_one_fold(monkeypatch):
    from sklearn.model_selection import StratifiedGroupKFold

    seen = []
    split = StratifiedGroupKFold.split

    def recording(self, X, y=None, groups=None):
        for train, test in split(self, X, y, groups):
            seen.append(set(groups[train]) & set(groups[test]))
            yield train, test

    monkeypatch.setattr(StratifiedGroupKFold, "split", recording)
    rng = np.random.default_rng(1)
    groups = np.array([p for p in range(30) for _ in range(1 + p % 3)])
    source_probe(rng.normal(size=(len(groups), 4)), groups % 2, groups)
    assert len(seen) == 5 and all(not shared for shared in seen)


def test_energy_inside_on_hand_made_maps():
    masks = np.zeros((2, 4, 4), bool)
    masks[:, :2] = True
    heat = np.zeros((2, 4, 4))
    heat[0, 0, 0], heat[0, 3, 3] = 3, 1
    heat[1, 3, 3], heat[1, 0, 0] = 2, -5  # negative heat does not count
    out = energy_inside(heat, masks)
    assert out["per_image"] == [0.75, 0.0] and out["mean"] == pytest.approx(0.375) and out["uniform"] == 0.5
    assert energy_inside(np.zeros((1, 4, 4)), masks[:1])["mean"] is None


def test_shortcut_verdict_both_ways():
    out = lambda low, high: {"metric": "balanced_accuracy", "ci": [low, high], "chance": 1 / 3}
    clean = shortcut_verdict(lungs_out=out(0.30, 0.45), source_auroc=0.7)
    assert not clean["flagged"] and clean["reasons"] == [] and "chance" in clean["rule"]
    text = shortcut_verdict(lungs_out=out(0.60, 0.80))
    source = shortcut_verdict(lungs_out=out(0.30, 0.45), source_auroc=0.95)
    assert text["flagged"] and source["flagged"] and len(text["reasons"]) == len(source["reasons"]) == 1


def test_marked_phantoms_carry_the_corner_square_in_their_own_folder(tmp_path):
    from datamodules import DATAMODULES
    clean = DATAMODULES["synthetic"](cache_dir=tmp_path, patients_per_class=4)
    marked = DATAMODULES["synthetic"](cache_dir=tmp_path, patients_per_class=4, marker_class="COVID-19")
    assert marked.root != clean.root and marked.split_path != clean.split_path and "marker_COVID-19" in marked.root.name
    for dm in (clean, marked):
        manifest = dm.reader.build_manifest()
        base = dm.reader.dataset_dir()
        for path, label in zip(manifest["path"] if "path" in manifest else manifest["image"], manifest["label"]):
            image = cv2.imread(str(base / path), cv2.IMREAD_GRAYSCALE)
            side = int(0.11 * image.shape[0])
            corner = image[:side, :side].mean()
            assert (corner == 255) == (dm is marked and label == "COVID-19"), (path, corner)
    # outside the central field, also once the cache resizes it: lungs-only masking removes it, lungs-out keeps it
    for size in (64, 224):
        square = cv2.resize(np.pad(np.full((28, 28), 255, np.uint8), ((0, 228), (0, 228))), (size, size), interpolation=cv2.INTER_AREA)
        assert not (square > 0)[region_mask([CENTRAL_FIELD], size)].any()
    assert "white square" in (marked.reader.dataset_dir() / "README.txt").read_text()
    with pytest.raises(ValueError, match="normal"):
        DATAMODULES["synthetic"](cache_dir=tmp_path, marker_class="covid")
