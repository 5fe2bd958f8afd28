"""Albumentations pipelines: named train-augmentation presets per method, and deterministic eval transforms.

Every pipeline ends in normalisation and a (1, H, W) float tensor. ``train_stats`` normalisation uses the train
split's global mean and std (siamese paper, section 3.1, step 4); ``per_image`` standardises each image on its
own (weighted-CE paper, section V).
"""

from __future__ import annotations

import copy

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


def _to_float32(image, **kwargs):
    return image.astype("float32", copy=False)


def _normalize(normalization: str, mean: float, std: float) -> A.BasicTransform:
    if normalization == "train_stats":
        return A.Normalize(mean=(mean,), std=(std,), max_pixel_value=255.0)
    if normalization == "per_image":  # albumentations computes it in float64: back to float32 for the models
        return A.Compose([A.Normalize(normalization="image"), A.Lambda(image=_to_float32)])
    raise ValueError(f"unknown normalization {normalization!r}; use 'train_stats' or 'per_image'")


def build_transform(preset: str | None, *, mean: float, std: float, normalization: str = "train_stats", seed: int = 0) -> A.Compose:
    """Train pipeline for a preset name, or the eval pipeline when ``preset`` is None or 'none'.

    Albumentations draws from its own generators, seeded from OS entropy unless given a seed: the seed makes a
    rerun augment exactly as before (the dataset re-seeds it per DataLoader worker)."""
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown augmentation preset {preset!r}; known: {sorted(PRESETS)}")
    steps = copy.deepcopy(PRESETS.get(preset or "none", []))  # own instances: transforms carry their RNG state
    return A.Compose(steps + [_normalize(normalization, mean, std), ToTensorV2()], seed=seed)


def _steps(pipeline) -> list:
    """A pipeline and every transform in it, depth first."""
    return [pipeline] + [step for child in getattr(pipeline, "transforms", []) for step in _steps(child)]


def generator_states(pipeline) -> list[dict]:
    """The random generators' states of a pipeline (each transform draws from its own): a checkpoint holds them so a
    resumed run augments as an uninterrupted one would."""
    return [{"numpy": step.random_generator.bit_generator.state, "python": step.py_random.getstate()}
            for step in _steps(pipeline) if getattr(step, "random_generator", None) is not None]


def set_generator_states(pipeline, states: list[dict]) -> None:
    """Set the generators of ``pipeline`` (the same steps) to ``generator_states``' values, in place."""
    steps = [step for step in _steps(pipeline) if getattr(step, "random_generator", None) is not None]
    if len(steps) != len(states):
        raise ValueError(f"{len(states)} generator states for a pipeline of {len(steps)} random steps")
    for step, state in zip(steps, states):
        step.random_generator.bit_generator.state = state["numpy"]
        step.py_random.setstate(state["python"])
