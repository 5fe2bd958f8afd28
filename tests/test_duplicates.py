import time

import cv2
import numpy as np
import pandas as pd
import pytest

from datamodules import duplicates
from datamodules.cache import ImageCache
from datamodules.duplicates import cache_hashes, find_duplicates, hamming, near_pairs, phash


def _brute_force(hashes, max_distance, groups=None):
    d = hamming(hashes[:, None], hashes[None, :])
    a, b = np.nonzero(np.triu(d <= max_distance, k=1))
    if groups is not None:
        keep = groups[a] != groups[b]
        a, b = a[keep], b[keep]
    return set(zip(a.tolist(), b.tolist()))


def test_phash_is_the_imagehash_definition():
    """imagehash.phash: 32x32, DCT-II along both axes, 8x8 lowest frequencies above their median, row-major bits."""
    from scipy.fftpack import dct

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 32, 32)).astype(np.uint8)
    for image, value in zip(images, phash(images)):
        low = dct(dct(image.astype(float), axis=0), axis=1)[:8, :8]
        bits = (low > np.median(low)).ravel()
        assert int(value) == int("".join("1" if b else "0" for b in bits), 2)
    assert phash(images[0]).shape == (1,)


@pytest.mark.parametrize("max_distance", [0, 4, 8, 12])
def test_band_search_finds_exactly_the_pairs_within_the_distance(max_distance):
    """Multi-index hashing must be exhaustive: compare with all-pairs brute force on clustered hashes."""
    rng = np.random.default_rng(max_distance)
    prototypes = rng.integers(0, 2**63, 40, dtype=np.uint64)
    flips = [sum(np.uint64(1) << np.uint64(int(bit)) for bit in rng.choice(64, rng.integers(0, 14), replace=False)) for _ in range(600)]
    hashes = prototypes[rng.integers(0, 40, 600)] ^ np.array(flips, dtype=np.uint64)
    found = near_pairs(hashes, max_distance)
    assert set(zip(found["a"], found["b"])) == _brute_force(hashes, max_distance)
    assert (found["distance"] <= max_distance).all()
    groups = rng.integers(0, 3, len(hashes))
    across = near_pairs(hashes, max_distance, groups=groups)
    assert set(zip(across["a"], across["b"])) == _brute_force(hashes, max_distance, groups)


def test_pair_search_is_fast_enough_for_10k_images():
    rng = np.random.default_rng(1)
    prototypes = rng.integers(0, 2**63, 2000, dtype=np.uint64)  # chest X-rays hash alike: clustered, not uniform
    hashes = prototypes[rng.integers(0, 2000, 10000)] ^ rng.integers(0, 2**63, 10000, dtype=np.uint64) & np.uint64(0x0F0F)
    started = time.perf_counter()
    found = near_pairs(hashes, 8)
    assert time.perf_counter() - started < 20  # about 1 s on 2 CPU cores
    assert len(found) > 0


def test_bad_threshold_is_rejected():
    with pytest.raises(ValueError, match="max_distance"):
        near_pairs(np.zeros(3, np.uint64), 20)


def _smooth(seed, size=96):
    """A distinct smooth random grey image (different seeds give unrelated images)."""
    rng = np.random.default_rng(seed)
    field = cv2.resize(rng.random((6, 6)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip((field - field.min()) / (field.max() - field.min()) * 220 + 20, 0, 255).astype(np.uint8)


def _resized_recompressed(path, target, scale=0.7, quality=75):
    pixels = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    small = cv2.resize(pixels, (int(pixels.shape[1] * scale), int(pixels.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(target), small, [cv2.IMWRITE_JPEG_QUALITY, quality])


def _cache(tmp_path, paths, size=64):
    return ImageCache(tmp_path / "cache", "dups", size, workers=1).build(pd.DataFrame({"path": [str(p) for p in paths]}))


def test_identical_and_near_copies_are_found_and_different_images_are_not(tmp_path):
    originals = []
    for i in range(12):
        originals.append(tmp_path / f"img{i}.png")
        cv2.imwrite(str(originals[-1]), _smooth(i))
    identical = tmp_path / "copy0.png"
    identical.write_bytes(originals[0].read_bytes())
    near = tmp_path / "small1.jpg"
    _resized_recompressed(originals[1], near)
    cache = _cache(tmp_path, [*originals, identical, near])
    pairs = find_duplicates(cache)
    found = {(p.split("/")[-1], q.split("/")[-1], kind) for p, q, kind in zip(pairs["path_a"], pairs["path_b"], pairs["kind"])}
    assert found == {("copy0.png", "img0.png", "identical"), ("img1.png", "small1.jpg", "near")}
    assert set(pairs.columns) >= {"path_a", "path_b", "kind", "distance", "correlation", "source_a", "source_b"}


def test_hashes_are_stored_beside_the_cache_and_reused(tmp_path, monkeypatch):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"img{i}.png")
        cv2.imwrite(str(paths[-1]), _smooth(i))
    cache = _cache(tmp_path, paths)
    first = cache_hashes(cache)
    assert (cache.directory / f"hashes-v{duplicates.HASH_VERSION}.npz").is_file()
    monkeypatch.setattr(duplicates, "phash", lambda *a, **k: pytest.fail("hashes recomputed"))
    assert (cache_hashes(cache)["phash"] == first["phash"]).all()


def test_cross_source_scope_leaves_pairs_within_a_source_out(tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    cv2.imwrite(str(a), _smooth(1))
    b.write_bytes(a.read_bytes())
    c.write_bytes(a.read_bytes())
    cache = _cache(tmp_path, [a, b, c])
    sources = pd.Series({str(a): "x", str(b): "x", str(c): "y"})
    assert len(find_duplicates(cache, sources=sources, scope="all")) == 3
    across = find_duplicates(cache, sources=sources, scope="cross_source")
    assert len(across) == 2 and (across["source_a"] != across["source_b"]).all()


def test_unreadable_images_are_skipped(tmp_path):
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    cv2.imwrite(str(good), _smooth(3))
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    assert find_duplicates(_cache(tmp_path, [good, bad])).empty


@pytest.mark.integration
def test_real_xrays_resized_and_recompressed_are_found_and_other_xrays_are_not(shared_data, tmp_path):
    """One image per Kermany patient (different children: different X-rays), plus resized/recompressed copies."""
    from datamodules.readers.kermany_pneumonia import patient_of

    folder = shared_data / "kermany-chest-xray-pneumonia" / "dataset" / "test" / "NORMAL"
    by_patient = {}
    for path in sorted(folder.glob("*.jpeg")):
        by_patient.setdefault(patient_of(path.name), path)
    originals = list(by_patient.values())[:60]
    copies = []
    for i, path in enumerate(originals[:20]):
        copies.append(tmp_path / f"copy{i}.jpg")
        _resized_recompressed(path, copies[-1], scale=0.6 + 0.02 * i, quality=60 + i)
    pairs = find_duplicates(_cache(tmp_path, originals + copies))
    found = {(p, q) for p, q in zip(pairs["path_a"], pairs["path_b"])}
    expected = {tuple(sorted((str(o), str(c)))) for o, c in zip(originals, copies)}
    assert found == expected
    assert (pairs["kind"] == "near").all() and (pairs["correlation"] >= duplicates.DEFAULT_MIN_CORRELATION).all()
