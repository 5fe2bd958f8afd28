import numpy as np
import pytest
import torch

from datamodules.sampling import BalancedEpochSampler
from datamodules.transforms import build_transform


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, (32, 32, 1), dtype=np.uint8)


def test_eval_transform_is_deterministic_and_normalises(image):
    transform = build_transform(None, mean=0.5, std=0.25)
    a, b = transform(image=image)["image"], transform(image=image)["image"]
    assert a.shape == (1, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b)
    expected = (image[:, :, 0] / 255.0 - 0.5) / 0.25
    assert torch.allclose(a[0], torch.tensor(expected, dtype=torch.float32), atol=1e-5)


def test_train_preset_augments(image):
    transform = build_transform("light", mean=0.5, std=0.25)
    outputs = [transform(image=image)["image"] for _ in range(8)]
    assert any(not torch.equal(outputs[0], o) for o in outputs[1:])


def test_per_image_normalisation(image):
    out = build_transform(None, mean=0, std=1, normalization="per_image")(image=image)["image"]
    assert abs(float(out.mean())) < 1e-4 and abs(float(out.std()) - 1) < 0.05


def test_unknown_preset_is_named():
    with pytest.raises(ValueError, match="unknown augmentation preset 'fancy'"):
        build_transform("fancy", mean=0, std=1)


def test_balanced_undersampling_takes_all_of_the_smallest_class():
    labels = [0] * 5 + [1] * 50 + [2] * 20
    sampler = BalancedEpochSampler(labels, mode="undersample", seed=0)
    first, second = list(sampler), list(sampler)
    assert len(first) == 15
    counts = np.bincount(np.asarray(labels)[first], minlength=3)
    assert counts.tolist() == [5, 5, 5]
    assert set(i for i in first if labels[i] == 0) == set(range(5))
    assert first != second  # a fresh draw each epoch
    assert list(BalancedEpochSampler(labels, seed=0)) == first  # reproducible from the seed


def test_balanced_oversampling_reaches_the_largest_class():
    labels = [0] * 5 + [1] * 50
    picks = list(BalancedEpochSampler(labels, mode="oversample", seed=1))
    assert np.bincount(np.asarray(labels)[picks]).tolist() == [50, 50]


def test_seeded_train_pipeline_repeats_its_augmentations(image):
    a = build_transform("light", mean=0.5, std=0.25, seed=3)
    b = build_transform("light", mean=0.5, std=0.25, seed=3)
    assert all(torch.equal(a(image=image)["image"], b(image=image)["image"]) for _ in range(5))
