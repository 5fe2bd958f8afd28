"""Images that occur twice: byte-identical files and near-identical images (perceptual hash), across sources.

Public chest X-ray collections copy from each other (the Kermany normals are inside the COVID-19 Radiography
Database, the Cohen images inside COVIDx and Radiography COVID), so a combined task must know which images are
the same X-ray before it splits, or one image lands in train and in test.

Hashes come from the preprocessing cache (every image is decoded once, there): a 64-bit DCT perceptual hash
(pHash, as ``imagehash.phash``: the image reduced to 32x32 by area averaging, its 2-D DCT-II, the 8x8
lowest frequencies compared with their median, bit 63 = coefficient (0, 0)), a digest of the cached pixels and
the file size. They are stored beside the cache (``hashes-v<HASH_VERSION>.npz`` in the cache's folder), so they
are computed once per cache and vanish with it when a source file changes.

Two images are
  ``identical``  when their files have the same bytes (sha256). Only files that share size and cached pixels can
                 be byte-identical, so sha256 is read for those few candidates only, never for the whole set;
  ``near``       when their pHashes differ in at most ``max_distance`` of 64 bits (default 8; a pHash has 32
                 bits set, so distances are even) AND the two cached images, reduced to 64x64, have a Pearson
                 correlation of at least ``min_correlation`` (default 0.95): the same X-ray resized, recompressed,
                 re-saved in another format or re-windowed. Chest X-rays all look alike, so the hash alone is not
                 enough: on the shared real subsets, X-rays of different people came within 4-8 bits, but never
                 reached a correlation of 0.95, while the known copies (Kermany normals inside Radiography)
                 correlate at 0.99 or more. Crops, padding, flips and added text usually move an image further;
                 those copies are missed. With a cache under 64 px the correlation is taken at the cache size and
                 separates less well.

Pairs are found by multi-index hashing (pigeonhole): the 64 bits are cut into ``max_distance + 1`` bands; two
hashes within ``max_distance`` bits agree exactly on at least one band, so only images sharing a band value are
compared (a sort and binary searches per band, O(n log n)), and every candidate is checked with a vectorised
popcount, in chunks (O(candidates) time, bounded memory). Chest X-rays hash alike, so the candidates grow faster
than n: for 11,767 real images at distance 8 the whole search takes about a second on 2 CPU cores. Only the
pairs within the distance get the correlation check. ``scope="cross_source"`` compares each source with the
others only (never a large source with itself). ``max_distance`` must stay below 16 (bands of 4 bits or more).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from datamodules.atomic import file_sha256

log = logging.getLogger(__name__)

HASH_VERSION = 1
HASH_SIZE = 8  # 8x8 DCT coefficients -> 64 bits
DCT_SIZE = 32  # images are reduced to 32x32 before the DCT (imagehash's highfreq_factor 4)
DEFAULT_MAX_DISTANCE = 8  # pHash bits of 64 (always even: every hash has 32 bits set)
DEFAULT_MIN_CORRELATION = 0.95  # Pearson correlation of the two images at 64x64 px
CORRELATION_SIZE = 64
MAX_SUPPORTED_DISTANCE = 15
PAIR_COLUMNS = ["path_a", "path_b", "source_a", "source_b", "kind", "distance", "correlation", "row_a", "row_b"]


# ----- hashing -----
def _dct_matrix(size: int, keep: int) -> np.ndarray:
    """The first ``keep`` rows of the unnormalised DCT-II matrix (scipy.fftpack.dct's type 2 convention)."""
    k = np.arange(keep)[:, None]
    n = np.arange(size)[None, :]
    return (2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * size))).astype(np.float64)


def _reduce(pixels: np.ndarray) -> np.ndarray:
    """[N, H, W] uint8 -> [N, 32, 32] float64 by area averaging (exact block means when H, W are multiples of 32)."""
    n, height, width = pixels.shape
    if height % DCT_SIZE == 0 and width % DCT_SIZE == 0:
        fy, fx = height // DCT_SIZE, width // DCT_SIZE
        return pixels.reshape(n, DCT_SIZE, fy, DCT_SIZE, fx).mean(axis=(2, 4), dtype=np.float64)
    interpolation = cv2.INTER_AREA if min(height, width) >= DCT_SIZE else cv2.INTER_LINEAR
    return np.stack([cv2.resize(np.ascontiguousarray(p), (DCT_SIZE, DCT_SIZE), interpolation=interpolation) for p in pixels]).astype(np.float64)


def phash(pixels: np.ndarray, *, block: int = 2048) -> np.ndarray:
    """64-bit DCT perceptual hashes of a stack of grayscale images ([N, H, W] or one [H, W]) as uint64."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        return phash(pixels[None], block=block)
    basis = _dct_matrix(DCT_SIZE, HASH_SIZE)
    out = np.empty(len(pixels), dtype=np.uint64)
    for start in range(0, len(pixels), block):
        small = _reduce(np.asarray(pixels[start : start + block]))
        low = basis @ small @ basis.T  # [n, 8, 8]: the lowest 8x8 frequencies
        flat = low.reshape(len(low), -1)
        bits = flat > np.median(flat, axis=1, keepdims=True)
        out[start : start + len(low)] = np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)
    return out


_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount64(values: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (numpy >= 2 has it built in; older numpy uses a byte table)."""
    values = np.ascontiguousarray(values, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values).astype(np.int64)
    return _POPCOUNT8[values.view(np.uint8).reshape(*values.shape, 8)].sum(axis=-1, dtype=np.int64)


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    return popcount64(np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64)))


# ----- hashes of a cache, stored beside it -----
def cache_hashes(cache) -> pd.DataFrame:
    """Per cache row: path, row, phash (uint64), pixel digest, file size, ok (decoded). Computed once per cache."""
    store = Path(cache.directory) / f"hashes-v{HASH_VERSION}.npz"
    index = cache.index.sort_values("row").reset_index(drop=True)
    if store.exists():
        with np.load(store) as saved:
            if len(saved["phash"]) == len(index):
                return _hash_frame(index, saved["phash"], saved["digest"], saved["size"])
    images = cache.open()
    hashes = phash(images)
    digests = np.empty(len(index), dtype="S16")
    for row in range(len(index)):  # blake2b of each cached image: cheap, and exact equality of cached pixels
        digests[row] = hashlib.blake2b(np.ascontiguousarray(images[row]).tobytes(), digest_size=16).digest()
    sizes = np.array([_file_size(p) for p in index["path"]], dtype=np.int64)
    tmp = store.with_name(f"{store.stem}.tmp{os.getpid()}.npz")
    np.savez(tmp, phash=hashes, digest=digests, size=sizes)
    tmp.replace(store)
    log.info("perceptual hashes of %d images stored in %s", len(index), store)
    return _hash_frame(index, hashes, digests, sizes)


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def _hash_frame(index: pd.DataFrame, hashes, digests, sizes) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "path": index["path"].to_numpy(),
            "row": index["row"].to_numpy(),
            "phash": np.asarray(hashes, dtype=np.uint64),
            "digest": np.asarray(digests),
            "size": np.asarray(sizes),
            "ok": (index["problem"].fillna("") == "").to_numpy(),
        }
    )



# ----- pair search -----
def _bands(max_distance: int) -> list[tuple[int, int]]:
    """Cut 64 bits into max_distance + 1 contiguous bands as equal as possible: (shift, width) each."""
    count = max_distance + 1
    widths = [64 // count + (1 if i < 64 % count else 0) for i in range(count)]
    bands, shift = [], 64
    for width in widths:
        shift -= width
        bands.append((shift, width))
    return bands


def _ramp(counts: np.ndarray) -> np.ndarray:
    """[0..c0-1, 0..c1-1, ...] for counts [c0, c1, ...]."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)


def _equal_band_pairs(band_a: np.ndarray, band_b: np.ndarray, chunk: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """All (i, j) with band_a[i] == band_b[j], in chunks of about ``chunk`` pairs (a sort and two binary searches)."""
    order = np.argsort(band_b, kind="stable")
    ordered = band_b[order]
    left = np.searchsorted(ordered, band_a, "left")
    counts = np.searchsorted(ordered, band_a, "right") - left
    ends = np.cumsum(counts)
    start = 0
    while start < len(band_a):
        done = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, done + chunk, "right")), start + 1)
        c = counts[start:stop]
        yield np.repeat(np.arange(start, stop), c), order[np.repeat(left[start:stop], c) + _ramp(c)]
        start = stop


def near_pairs(
    hashes: np.ndarray, max_distance: int = DEFAULT_MAX_DISTANCE, *, groups: np.ndarray | None = None, chunk: int = 4_000_000
) -> pd.DataFrame:
    """Index pairs (a < b) whose 64-bit hashes differ in at most ``max_distance`` bits, with that distance.

    With ``groups`` (one label per hash, e.g. the source) only pairs from different groups are searched, each
    group against every larger one, so a big source is never compared with itself.
    """
    if not 0 <= max_distance <= MAX_SUPPORTED_DISTANCE:
        raise ValueError(f"max_distance must be between 0 and {MAX_SUPPORTED_DISTANCE} bits, not {max_distance}")
    hashes = np.asarray(hashes, dtype=np.uint64)
    if groups is None:
        joins = [(np.arange(len(hashes)), np.arange(len(hashes)))]
    else:
        groups = np.asarray(groups)
        members = [np.flatnonzero(groups == g) for g in pd.unique(groups)]
        joins = [(x, y) for i, x in enumerate(members) for y in members[i + 1 :]]
    found = []
    for index_a, index_b in joins:
        for shift, width in _bands(max_distance):
            mask = np.uint64((1 << width) - 1)
            band_a = (hashes[index_a] >> np.uint64(shift)) & mask
            band_b = (hashes[index_b] >> np.uint64(shift)) & mask
            for i, j in _equal_band_pairs(band_a, band_b, chunk):
                a, b = index_a[i], index_b[j]
                keep = (a != b) & (hamming(hashes[a], hashes[b]) <= max_distance)
                a, b = a[keep], b[keep]
                found.append(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1))
    pairs = np.unique(np.concatenate(found), axis=0) if found else np.empty((0, 2), np.int64)
    pairs = pairs.astype(np.int64).reshape(-1, 2)
    return pd.DataFrame({"a": pairs[:, 0], "b": pairs[:, 1], "distance": hamming(hashes[pairs[:, 0]], hashes[pairs[:, 1]])})


# ----- duplicates of a cache -----
def _standardised(images: np.ndarray) -> np.ndarray:
    """Images reduced to at most 64x64 (area), each made zero-mean and unit-variance, flattened (float32)."""
    images = np.asarray(images)
    side = min(CORRELATION_SIZE, images.shape[-1])
    if images.shape[-1] != side:
        images = np.stack([cv2.resize(np.ascontiguousarray(x), (side, side), interpolation=cv2.INTER_AREA) for x in images])
    flat = images.reshape(len(images), -1).astype(np.float32)
    flat -= flat.mean(axis=1, keepdims=True)
    flat /= np.maximum(flat.std(axis=1, keepdims=True), 1e-6)
    return flat


def pixel_correlation(images: np.ndarray, a: np.ndarray, b: np.ndarray, block: int = 2048) -> np.ndarray:
    """Pearson correlation of cache images a[i] and b[i] at (at most) 64x64 px, in blocks (bounded memory)."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    out = np.empty(len(a), dtype=np.float64)
    for start in range(0, len(a), block):
        rows_a, rows_b = a[start : start + block], b[start : start + block]
        standard_a, standard_b = _standardised(images[rows_a]), _standardised(images[rows_b])
        out[start : start + len(rows_a)] = np.einsum("ij,ij->i", standard_a, standard_b) / standard_a.shape[1]
    return out


def find_duplicates(
    cache,
    *,
    sources: pd.Series | None = None,
    scope: str = "all",
    max_distance: int = DEFAULT_MAX_DISTANCE,
    min_correlation: float = DEFAULT_MIN_CORRELATION,
) -> pd.DataFrame:
    """Duplicate pairs among the decodable images of a built cache (``CachedImages``).

    ``sources`` maps image path to source; with ``scope="cross_source"`` only pairs from different sources are
    searched (``"all"``: every pair). Columns: ``PAIR_COLUMNS`` (source_a/source_b are "" without ``sources``).
    """
    if scope not in ("all", "cross_source"):
        raise ValueError(f"duplicate scope must be 'all' or 'cross_source', not {scope!r}")
    hashes = cache_hashes(cache)
    usable = hashes[hashes["ok"].to_numpy()].reset_index(drop=True)
    source = usable["path"].map(sources).fillna("").to_numpy() if sources is not None else np.full(len(usable), "", dtype=object)
    pairs = near_pairs(usable["phash"].to_numpy(), max_distance, groups=source if scope == "cross_source" else None)
    a, b = pairs["a"].to_numpy(), pairs["b"].to_numpy()
    rows_a, rows_b = usable["row"].to_numpy()[a], usable["row"].to_numpy()[b]
    correlation = pixel_correlation(cache.open(), rows_a, rows_b)
    same_pixels = (usable["digest"].to_numpy()[a] == usable["digest"].to_numpy()[b]) & (usable["size"].to_numpy()[a] == usable["size"].to_numpy()[b])
    keep = (correlation >= min_correlation) | same_pixels
    frame = pd.DataFrame(
        {
            "row_a": rows_a[keep],
            "row_b": rows_b[keep],
            "path_a": usable["path"].to_numpy()[a][keep],
            "path_b": usable["path"].to_numpy()[b][keep],
            "source_a": source[a][keep],
            "source_b": source[b][keep],
            "distance": pairs["distance"].to_numpy()[keep],
            "correlation": np.round(correlation[keep], 4),
        }
    )
    identical = np.zeros(len(frame), dtype=bool)
    digests: dict[str, str] = {}
    for i in np.flatnonzero(same_pixels[keep]):  # only these can be byte-identical files
        pa, pb = frame.at[i, "path_a"], frame.at[i, "path_b"]
        for path in (pa, pb):
            if path not in digests:
                digests[path] = file_sha256(path)
        identical[i] = digests[pa] == digests[pb]
    frame["kind"] = np.where(identical, "identical", "near")
    return frame[PAIR_COLUMNS].sort_values(["path_a", "path_b"]).reset_index(drop=True)


def cluster_labels(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of n nodes joined by edges (a[i], b[i]): one integer label per node."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def duplicate_groups(manifest: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
    """A group id per manifest row: a patient joined with every image that duplicates one of its images
    (connected components), named after the group's smallest patient id so it is stable across runs. Drawing
    the split over these groups keeps every copy of an image, and all of its patient's images, in one split."""
    position = pd.Series(np.arange(len(manifest)), index=manifest["path"].to_numpy())
    known = pairs["path_a"].isin(position.index) & pairs["path_b"].isin(position.index)
    a, b = position[pairs.loc[known, "path_a"]].to_numpy(), position[pairs.loc[known, "path_b"]].to_numpy()
    patient_codes = pd.factorize(manifest["patient_id"])[0]
    first_of_patient = pd.Series(np.arange(len(manifest))).groupby(patient_codes).transform("first").to_numpy()
    labels = cluster_labels(len(manifest), np.r_[a, np.arange(len(manifest))], np.r_[b, first_of_patient])
    return pd.Series(manifest["patient_id"].to_numpy()).groupby(labels).transform("min").to_numpy()

