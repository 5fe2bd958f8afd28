"""On-disk preprocessing cache: every image decoded once, made single-channel uint8, resized, stored in a memmap.

One cache per (dataset, image size, PREPROCESS_VERSION, image set, lung crop). With ``lung_crop`` (siamese paper,
section 3.3.1) each image is cropped to the union of its lung region (annotated boxes, else the central field:
datamodules/lung_regions.py) before the resize; that cache's key names the crop and the boxes, so it never mixes
with the uncropped one. A fingerprint of the source files' sizes
and modification times is kept beside it; when a source file changes the cache is rebuilt. The sha256 of
``images.npy`` and ``index.csv`` is stored in ``meta.json`` when the cache is built and checked whenever it is
reused: a truncated, zeroed or edited cache file is reported and rebuilt, never served. Files that cannot be
decoded are recorded with their reason (``problems``) instead of failing later in a DataLoader worker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from datamodules.atomic import atomic_path, atomic_write_text, file_sha256
from datamodules.imageio import ImageReadError, read_grayscale, resize_square
from datamodules.lung_regions import LUNG_BOXES_COLUMN, crop_to_box, lung_region, union_box

log = logging.getLogger(__name__)

# Bump whenever decoding or resizing changes, so old caches are never reused for new preprocessing.
PREPROCESS_VERSION = 1
CHECKED_FILES = ("images.npy", "index.csv")  # their sha256 is stored in meta.json and verified on every reuse


def _stat_fingerprint(paths: list[str]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        try:
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()


def _image_set_key(paths: list[str]) -> str:
    return hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]


@dataclass
class CachedImages:
    """A built cache: the memmap file, and per manifest path its row and decode problem (if any)."""

    directory: Path
    index: pd.DataFrame  # columns: path, row, problem ("" when the image decoded)
    size: int
    rebuilt: bool
    # images left out before caching (a file name that is not UTF-8, a symlink loop: manifest.path_problem), with
    # their reason, so they are reported with the decoding problems; columns path, problem
    rejected: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"path": [], "problem": []}, dtype=str))

    @property
    def array_path(self) -> Path:
        return self.directory / "images.npy"

    @property
    def problems(self) -> pd.DataFrame:
        decoded = self.index[self.index["problem"] != ""][["path", "problem"]]
        return pd.concat([decoded, self.rejected[["path", "problem"]]], ignore_index=True) if len(self.rejected) else decoded

    def open(self) -> np.ndarray:
        return np.load(self.array_path, mmap_mode="r")


class ImageCache:
    """Builds or reuses the cache of ``dataset`` at ``size`` px under ``cache_dir``."""

    def __init__(self, cache_dir: str | Path, dataset: str, size: int, workers: int | None = None, lung_crop: bool = False):
        self.cache_dir = Path(cache_dir)
        self.dataset = dataset
        self.size = int(size)
        self.workers = workers or max(1, min(8, os.cpu_count() or 1))
        self.lung_crop = bool(lung_crop)
        self._boxes: dict[str, str] = {}  # path -> lung_boxes text, for the crop

    def directory_for(self, paths: list[str]) -> Path:
        key = f"{self.size}px-v{PREPROCESS_VERSION}-{_image_set_key(paths)}"
        if self.lung_crop:  # the crop and the boxes it used are part of the key
            key += "-lungcrop-" + _image_set_key([self._boxes.get(p, "") for p in paths])
        return self.cache_dir / self.dataset / key

    def build(self, manifest: pd.DataFrame) -> CachedImages:
        paths = sorted(manifest["path"].astype(str))
        if self.lung_crop:
            boxes = manifest[LUNG_BOXES_COLUMN] if LUNG_BOXES_COLUMN in manifest.columns else pd.Series("", index=manifest.index)
            self._boxes = dict(zip(manifest["path"].astype(str), boxes.fillna("").astype(str)))
        directory = self.directory_for(paths)
        fingerprint = _stat_fingerprint(paths)
        meta_path = directory / "meta.json"
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError) as error:
                meta = {}
                log.warning("cache damaged: %s cannot be read (%s); rebuilding %s", meta_path, error, directory)
            if meta and (meta.get("fingerprint") != fingerprint or meta.get("version") != PREPROCESS_VERSION):
                log.info("cache stale (source files changed): rebuilding %s", directory)
            elif meta and (damage := self._damage(directory, meta, len(paths))):
                log.warning("cache damaged: %s; rebuilding %s", damage, directory)
            elif meta:
                index = pd.read_csv(directory / "index.csv", keep_default_na=False, dtype={"path": str, "problem": str})
                log.info("cache hit: %s (%d images, checksums verified)", directory, len(index))
                return CachedImages(directory, index, self.size, rebuilt=False)
        return self._write(paths, directory, fingerprint)

    def _damage(self, directory: Path, meta: dict, images: int) -> str:
        """What is wrong with a cache whose sources are unchanged ("" when nothing): a cache file that is missing,
        does not match the sha256 stored when it was built (truncated, zeroed, edited), or cannot be loaded."""
        checksums = meta.get("sha256") or {}
        if set(checksums) != set(CHECKED_FILES):
            return f"{directory / 'meta.json'} holds no checksums (built by an older version)"
        for name, expected in checksums.items():
            path = directory / name
            if not path.is_file():
                return f"{path} is missing"
            if file_sha256(path) != expected:
                return f"{path} does not match the sha256 stored when it was built (truncated or modified)"
        try:
            array = np.load(directory / "images.npy", mmap_mode="r")
        except (OSError, ValueError) as error:
            return f"{directory / 'images.npy'} cannot be loaded ({error})"
        if array.shape != (images, self.size, self.size) or array.dtype != np.uint8:
            return f"{directory / 'images.npy'} holds {array.dtype} {array.shape}, expected uint8 {(images, self.size, self.size)}"
        return ""

    def _decode(self, path: str) -> tuple[np.ndarray | None, str]:
        try:
            pixels = read_grayscale(path)
            if self.lung_crop:
                pixels = crop_to_box(pixels, union_box(lung_region(self._boxes.get(path, ""))[0]))
            return resize_square(pixels, self.size), ""
        except ImageReadError as error:
            return None, error.reason

    def _write(self, paths: list[str], directory: Path, fingerprint: str) -> CachedImages:
        started = time.perf_counter()
        tmp = directory.with_name(directory.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        array = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(len(paths), self.size, self.size))
        problems = [""] * len(paths)
        with ThreadPoolExecutor(self.workers) as pool:  # OpenCV releases the GIL while decoding
            for row, (pixels, problem) in enumerate(pool.map(self._decode, paths, chunksize=16)):
                if pixels is None:
                    problems[row] = problem
                    log.warning("unreadable image excluded: %s (%s)", paths[row], problem)
                else:
                    array[row] = pixels
        array.flush()
        del array
        index = pd.DataFrame({"path": paths, "row": np.arange(len(paths)), "problem": problems})
        with atomic_path(tmp / "index.csv") as part:
            index.to_csv(part, index=False)
        meta = {
            "dataset": self.dataset,
            "size": self.size,
            "version": PREPROCESS_VERSION,
            "lung_crop": self.lung_crop,
            "images": len(paths),
            "problems": int(sum(bool(p) for p in problems)),
            "fingerprint": fingerprint,
            "sha256": {name: file_sha256(tmp / name) for name in CHECKED_FILES},
            "built_seconds": round(time.perf_counter() - started, 2),
        }
        atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=2))
        shutil.rmtree(directory, ignore_errors=True)
        tmp.rename(directory)
        log.info("cache built: %s (%d images, %d problems, %.1fs)", directory, len(paths), meta["problems"], meta["built_seconds"])
        return CachedImages(directory, index, self.size, rebuilt=True)
