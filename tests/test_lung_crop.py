"""The lung-crop data option (siamese paper 3.3.1: images cropped to the lungs to remove border artefacts)."""

import numpy as np

from conftest import dataset_header
from benchmark.external.evaluate_set import _images
from benchmark.schema import DataConfig
from datamodules import DATAMODULES
from datamodules.cache import ImageCache
from datamodules.imageio import read_grayscale, resize_square
from datamodules.lung_regions import LUNG_BOXES_COLUMN, crop_to_box, lung_region, union_box

maker, cohen, _dm = dataset_header("cohen_covid", "cohen")


def test_the_cropped_cache_holds_crop_then_resize_of_each_source(cohen, tmp_path):
    manifest = _dm(cohen, tmp_path).build_manifest()
    manifest = manifest[manifest["path"].map(lambda p: not p.endswith(maker.ABSENT))]
    plain = ImageCache(tmp_path / "cache", "cohen_covid", 32).build(manifest)
    cropped = ImageCache(tmp_path / "cache", "cohen_covid", 32, lung_crop=True).build(manifest)
    assert cropped.directory != plain.directory and "lungcrop" in cropped.directory.name
    images, boxes = cropped.open(), dict(zip(manifest["path"], manifest[LUNG_BOXES_COLUMN]))
    for path, row in zip(cropped.index["path"], cropped.index["row"]):
        expected = resize_square(crop_to_box(read_grayscale(path), union_box(lung_region(boxes[path])[0])), 32)
        assert np.array_equal(images[row], expected)
    assert not np.array_equal(images, plain.open())
    assert ImageCache(tmp_path / "cache", "cohen_covid", 32, lung_crop=True).build(manifest).rebuilt is False  # reused


def test_a_lung_crop_datamodule_keeps_the_split_and_counts_its_regions(cohen, tmp_path):
    runs = {}
    for crop in (False, True):
        dm = DATAMODULES["cohen_covid"](cohen, image_size=32, cache_dir=tmp_path / "cache", split_dir=tmp_path / f"splits-{crop}",
                                        lung_crop=crop, batch_size=4, group_duplicates=True)  # duplicates found uncropped
        dm.prepare_data()
        dm.setup()
        runs[crop] = dm
    plain, cropped = runs[False], runs[True]
    assert cropped.split_path.read_bytes() == plain.split_path.read_bytes()  # same patients, same split
    assert cropped._cache.directory != plain._cache.directory
    batch = next(iter(cropped.train_dataloader()))
    assert tuple(batch["image"].shape[1:]) == (1, 32, 32)
    used = sum(len(f) for f in cropped.frames.values())
    regions = cropped.describe()["lung_crop"]
    assert regions["annotation"] == 2 and regions["annotation"] + regions["central_field"] == used  # c1-pa.jpg, nf11.png
    assert plain.describe()["lung_crop"] is None


def test_the_option_is_declared_and_an_external_set_is_cropped_alike(cohen, tmp_path):
    assert DataConfig.model_validate({"lung_crop": True}).lung_crop is True and DataConfig().lung_crop is False
    _, _, cache = _images("cohen_covid", cohen, {}, image_size=32, cache_dir=tmp_path / "cache", lung_crop=True)
    assert "lungcrop" in cache.directory.name
