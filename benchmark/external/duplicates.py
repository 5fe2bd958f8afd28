"""Duplicates between an external test set and the images a run was trained and validated on
(datamodules/cross_duplicates.py finds them)."""

from __future__ import annotations

from datamodules.cross_duplicates import PAIR_KEYS, split_duplicates


def train_val_duplicates(external_cache, run_cache, run_frames, **kwargs):
    """Pairs (external image, run train/val image) that are the same X-ray; columns ``PAIR_KEYS``."""
    return split_duplicates(external_cache, run_cache, run_frames, splits=("train", "val"), **kwargs)


__all__ = ["PAIR_KEYS", "train_val_duplicates"]
