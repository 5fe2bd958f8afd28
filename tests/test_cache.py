import json
import os
import time

import cv2
import numpy as np
import pandas as pd
import pytest

from datamodules.cache import ImageCache


def _manifest(paths):
    return pd.DataFrame({"path": [str(p) for p in paths]})


def _write(path, value, size=50):
    cv2.imwrite(str(path), np.full((size, size), value, np.uint8))


def test_build_hit_and_invalidation(tmp_path):
    images = [tmp_path / f"{i}.png" for i in range(3)]
    for i, path in enumerate(images):
        _write(path, 10 * i)
    cache = ImageCache(tmp_path / "cache", "fake", 32)
    first = cache.build(_manifest(images))
    assert first.rebuilt and first.open().shape == (3, 32, 32)
    assert first.open()[1].mean() == 10

    second = cache.build(_manifest(images))
    assert not second.rebuilt and second.directory == first.directory

    time.sleep(0.01)
    _write(images[1], 200)  # a source file changes: the cache must not serve the old pixels
    os.utime(images[1], ns=(time.time_ns(), time.time_ns()))
    third = cache.build(_manifest(images))
    assert third.rebuilt and third.open()[1].mean() == 200


def test_other_size_or_image_set_is_another_cache(tmp_path):
    images = [tmp_path / f"{i}.png" for i in range(2)]
    for path in images:
        _write(path, 5)
    a = ImageCache(tmp_path / "cache", "fake", 32).build(_manifest(images))
    b = ImageCache(tmp_path / "cache", "fake", 16).build(_manifest(images))
    c = ImageCache(tmp_path / "cache", "fake", 32).build(_manifest(images[:1]))
    assert len({a.directory, b.directory, c.directory}) == 3
    assert b.open().shape == (2, 16, 16)


def test_unreadable_images_are_recorded_not_fatal(tmp_path):
    good, corrupt, missing = tmp_path / "good.png", tmp_path / "bad.png", tmp_path / "gone.png"
    _write(good, 100)
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    cached = ImageCache(tmp_path / "cache", "fake", 32).build(_manifest([good, corrupt, missing]))
    problems = dict(zip(cached.problems["path"], cached.problems["problem"]))
    assert set(problems) == {str(corrupt), str(missing)}
    assert problems[str(missing)] == "file not found"
    assert "truncated" in problems[str(corrupt)] or "corrupt" in problems[str(corrupt)]
    # and the problems survive a cache hit
    again = ImageCache(tmp_path / "cache", "fake", 32).build(_manifest([good, corrupt, missing]))
    assert not again.rebuilt and len(again.problems) == 2


def test_resize_uses_area_interpolation(tmp_path):
    path = tmp_path / "checker.png"
    checker = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
    cv2.imwrite(str(path), checker)
    pixels = ImageCache(tmp_path / "cache", "fake", 32).build(_manifest([path])).open()[0]
    assert np.abs(pixels.astype(int) - 128).max() <= 1  # area averaging of a 2x2 checker is mid-grey


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-100])


def _zero_pixels(path):
    data = bytearray(path.read_bytes())
    data[128:] = bytes(len(data) - 128)  # header intact (np.load works), pixels zeroed: same size
    path.write_bytes(bytes(data))


def _zero_all(path):
    path.write_bytes(bytes(path.stat().st_size))


@pytest.mark.parametrize("damage", [_truncate, _zero_pixels, _zero_all])
def test_a_damaged_cache_is_reported_and_rebuilt(tmp_path, caplog, damage):
    images = [tmp_path / f"{i}.png" for i in range(3)]
    for i, path in enumerate(images):
        _write(path, 40 + 10 * i)
    first = ImageCache(tmp_path / "cache", "fake", 32).build(_manifest(images))
    meta = json.loads((first.directory / "meta.json").read_text())
    assert set(meta["sha256"]) == {"images.npy", "index.csv"}
    damage(first.array_path)
    caplog.clear()
    again = ImageCache(tmp_path / "cache", "fake", 32).build(_manifest(images))
    assert again.rebuilt and again.open()[2].mean() == 60  # the right pixels again, never the damaged ones
    assert "cache damaged" in caplog.text and str(first.array_path) in caplog.text and "rebuilding" in caplog.text
    assert not ImageCache(tmp_path / "cache", "fake", 32).build(_manifest(images)).rebuilt  # and verified on reuse


def test_a_cache_without_checksums_is_rebuilt(tmp_path, caplog):
    path = tmp_path / "a.png"
    _write(path, 7)
    first = ImageCache(tmp_path / "cache", "fake", 32).build(_manifest([path]))
    meta_path = first.directory / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["sha256"]  # as an older version wrote it
    meta_path.write_text(json.dumps(meta))
    assert ImageCache(tmp_path / "cache", "fake", 32).build(_manifest([path])).rebuilt
    assert "holds no checksums" in caplog.text
    meta_path.write_text("{not json")
    assert ImageCache(tmp_path / "cache", "fake", 32).build(_manifest([path])).rebuilt
