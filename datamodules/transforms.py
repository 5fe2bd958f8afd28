"""Albumentations pipelines: named train-augmentation presets per method, and deterministic eval transforms.

Every pipeline ends in normalisation and a (1, H, W) float tensor. ``train_stats`` normalisation uses the train
split's global mean and std (siamese paper, section 3.1, step 4); ``per_image`` standardises each image on its
own (weighted-CE paper, section V).
"""

from __future__ import annotations

import albumentations as A
import cv2
from albumentations.pytorch import ToTensorV2

PRESETS: dict[str, list] = {
    # The siamese and single-net COVID-Net papers describe no augmentation.
    "none": [],
    "hflip": [A.HorizontalFlip(p=0.5)],
    # Flips, small rotations and translations, brightness/contrast: the common CXR recipe.
    "light": [
        A.HorizontalFlip(p=0.5),
        A.Affine(rotate=(-10, 10), translate_percent=(-0.06, 0.06), scale=(0.95, 1.05), border_mode=cv2.BORDER_CONSTANT, fill=0, p=0.8),
        A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, p=0.5),
    ],
    # Weighted-CE paper (section V): flips and small rotations.
    "flip_rotate": [
        A.HorizontalFlip(p=0.5),
        A.Affine(rotate=(-10, 10), border_mode=cv2.BORDER_CONSTANT, fill=0, p=0.5),
    ],
}


def _normalize(normalization: str, mean: float, std: float) -> A.BasicTransform:
    if normalization == "train_stats":
        return A.Normalize(mean=(mean,), std=(std,), max_pixel_value=255.0)
    if normalization == "per_image":
        return A.Normalize(normalization="image")
    raise ValueError(f"unknown normalization {normalization!r}; use 'train_stats' or 'per_image'")


def build_transform(preset: str | None, *, mean: float, std: float, normalization: str = "train_stats") -> A.Compose:
    """Train pipeline for a preset name, or the eval pipeline when ``preset`` is None or 'none'."""
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown augmentation preset {preset!r}; known: {sorted(PRESETS)}")
    steps = list(PRESETS.get(preset or "none", []))
    return A.Compose(steps + [_normalize(normalization, mean, std), ToTensorV2()])
