"""Albumentations pipelines: named train-augmentation presets per method, and deterministic eval transforms.

Every pipeline ends in normalisation and a (channels, H, W) float tensor. ``train_stats`` normalisation uses the
train split's global mean and std (siamese paper, section 3.1, step 4); ``per_image`` standardises each image on its
own (weighted-CE paper, section V); ``imagenet`` uses ImageNet's per-channel statistics on 3-channel copies of the
gray image, as the ImageNet-pretrained stems expect (twice-transfer paper, section 5.1); ``unit`` only scales to [0, 1].
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
    # Transfer paper, sections 3.3 and 5.1: horizontal flip, colour jitter, rotations of -20..20 degrees and an affine
    # transformation. The paper gives no jitter or affine magnitudes: brightness/contrast 0.2 (torchvision's usual
    # ColorJitter values) and translation 10%, scale 0.9-1.1, shear 5 degrees are ours.
    "transfer_cxr14": [
        A.HorizontalFlip(p=0.5),
        A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0, hue=0, p=1.0),
        A.Affine(rotate=(-20, 20), border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0),
        A.Affine(translate_percent=(-0.1, 0.1), scale=(0.9, 1.1), shear=(-5, 5), border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0),
    ],
    # Twice-transfer paper, section 5.2: rotations of -40..40 degrees, translations up to 40 px left/right and 28 px
    # up/down of a 224 px image (as fractions, so they scale with the image size), horizontal flip (p = 0.5 is ours).
    "twice_transfer": [
        A.Affine(rotate=(-40, 40), border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0),
        A.Affine(translate_percent={"x": (-40 / 224, 40 / 224), "y": (-28 / 224, 28 / 224)}, border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0),
        A.HorizontalFlip(p=0.5),
    ],
}
NORMALIZATIONS = ("train_stats", "per_image", "imagenet", "unit")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _to_float32(image, **kwargs):
    return image.astype("float32", copy=False)


def check_inputs(normalization: str, channels: int) -> None:
    """A ValueError for an unknown normalisation or channel count, or ImageNet statistics on 1-channel images."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}; use one of {', '.join(NORMALIZATIONS)}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    if normalization == "imagenet" and channels != 3:
        raise ValueError("normalization 'imagenet' has per-channel RGB statistics and needs channels: 3")


def normalization_values(normalization: str, mean: float, std: float) -> tuple:
    """(mean, std) a normalisation applies, in [0, 1] units: the train split's (``train_stats``; also recorded for
    ``per_image``, which uses each image's own), ImageNet's per channel, or (0, 1) for ``unit``."""
    if normalization == "imagenet":
        return list(IMAGENET_MEAN), list(IMAGENET_STD)
    if normalization == "unit":
        return 0.0, 1.0
    return mean, std


def _normalize(normalization: str, mean: float, std: float, channels: int = 1) -> A.BasicTransform:
    check_inputs(normalization, channels)
    if normalization == "per_image":  # albumentations computes it in float64: back to float32 for the models
        return A.Compose([A.Normalize(normalization="image"), A.Lambda(image=_to_float32)])
    mean, std = normalization_values(normalization, mean, std)
    per_channel = lambda v: tuple(v) if isinstance(v, (list, tuple)) else (v,) * channels
    return A.Normalize(mean=per_channel(mean), std=per_channel(std), max_pixel_value=255.0)


def build_transform(preset: str | None, *, mean: float, std: float, normalization: str = "train_stats", seed: int = 0,
                    channels: int = 1) -> A.Compose:
    """Train pipeline for a preset name, or the eval pipeline when ``preset`` is None or 'none'; ``channels`` 3 repeats
    the gray image into 3 identical channels (after augmenting, before normalising).

    Albumentations draws from its own generators, seeded from OS entropy unless given a seed: the seed makes a
    rerun augment exactly as before (the dataset re-seeds it per DataLoader worker)."""
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown augmentation preset {preset!r}; known: {sorted(PRESETS)}")
    steps = copy.deepcopy(PRESETS.get(preset or "none", []))  # own instances: transforms carry their RNG state
    to_rgb = [A.ToRGB(num_output_channels=3)] if channels == 3 else []
    return A.Compose(steps + to_rgb + [_normalize(normalization, mean, std, channels), ToTensorV2()], seed=seed)


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
