"""Duplicates between one dataset's images and the images of some splits of a run's split (another dataset).

Public chest X-ray sets copy from each other (the Kermany normals are inside the Radiography Normal folder, the
Cohen images inside Radiography COVID), so an "external" score can hide training images
(benchmark/external) and an autoencoder's pretraining pool can hide test images (datamodules/pretraining.py). The pairs are found as
the data report finds them (datamodules/duplicates.py): the pHashes stored beside each cache, multi-index search
between the two sets only, then a pixel correlation at (at most) 64x64 px for the candidates; equal cached pixels
and equal file bytes make a pair ``identical``, the same file read by both datasets ``same_file``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from datamodules.atomic import file_sha256
from datamodules.duplicates import DEFAULT_MAX_DISTANCE, DEFAULT_MIN_CORRELATION, cache_hashes, near_pairs, pixel_correlation
from datamodules.split_read import resolved

PAIR_KEYS = ["external_path", "run_path", "run_split", "kind", "distance", "correlation"]


def _usable(cache, paths: pd.Series | None = None) -> pd.DataFrame:
    """The cache's decodable rows with their hashes (only ``paths`` when given, matched on resolved paths)."""
    hashes = cache_hashes(cache)
    hashes = hashes[hashes["ok"].to_numpy()]
    if paths is not None:
        hashes = hashes[hashes["path"].map(resolved).isin(set(paths))]
    return hashes.reset_index(drop=True)


def split_duplicates(external_cache, run_cache, run_frames: dict[str, pd.DataFrame], *, splits: tuple[str, ...] = ("train", "val"),
                     max_distance: int = DEFAULT_MAX_DISTANCE, min_correlation: float = DEFAULT_MIN_CORRELATION) -> pd.DataFrame:
    """Pairs (external image, run image of one of ``splits``) that are the same X-ray; columns ``PAIR_KEYS``."""
    split_of = {resolved(p): split for split in splits for p in run_frames[split]["path"]}
    run = _usable(run_cache, pd.Series(list(split_of)))
    ext = _usable(external_cache)
    if run.empty or ext.empty:
        return pd.DataFrame(columns=PAIR_KEYS)
    hashes = np.concatenate([ext["phash"].to_numpy(), run["phash"].to_numpy()])
    groups = np.r_[np.zeros(len(ext), np.int8), np.ones(len(run), np.int8)]
    pairs = near_pairs(hashes, max_distance, groups=groups)
    a, b = pairs["a"].to_numpy(), pairs["b"].to_numpy() - len(ext)  # a: external (group 0 comes first), b: run
    ext_rows, run_rows = ext["row"].to_numpy()[a], run["row"].to_numpy()[b]
    correlation = np.empty(0)
    if len(a):  # the candidates' images side by side in one stack: rows i and len(a) + i are compared
        stack = np.concatenate([external_cache.open()[ext_rows], run_cache.open()[run_rows]])
        correlation = pixel_correlation(stack, np.arange(len(a)), np.arange(len(a)) + len(a))
    same_pixels = (ext["digest"].to_numpy()[a] == run["digest"].to_numpy()[b]) & (ext["size"].to_numpy()[a] == run["size"].to_numpy()[b])
    keep = (correlation >= min_correlation) | same_pixels
    ext_paths, run_paths = ext["path"].to_numpy()[a][keep], run["path"].to_numpy()[b][keep]
    kinds = [_kind(e, r, same) for e, r, same in zip(ext_paths, run_paths, same_pixels[keep])]
    frame = pd.DataFrame({"external_path": ext_paths, "run_path": run_paths, "run_split": [split_of[resolved(p)] for p in run_paths],
                          "kind": kinds, "distance": pairs["distance"].to_numpy()[keep], "correlation": np.round(correlation[keep], 4)})
    return frame.sort_values(["external_path", "run_path"]).reset_index(drop=True)


def _kind(external_path: str, run_path: str, same_pixels: bool) -> str:
    if resolved(external_path) == resolved(run_path):
        return "same_file"
    if same_pixels and file_sha256(external_path) == file_sha256(run_path):
        return "identical"
    return "near"
