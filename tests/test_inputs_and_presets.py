"""Input channels and normalisation kinds, the papers' augmentation presets and class-dependent expansion (issue 10):
values checked on tiny images, fake datasets and one tiny run scored on an external set."""

import json
from pathlib import Path
from types import SimpleNamespace

import albumentations as A
import numpy as np
import pytest
import torch
import yaml
from albumentations.pytorch import ToTensorV2

from benchmark.config import ConfigError
from benchmark.schema import DataConfig, validate
from datamodules import DATAMODULES
from datamodules.sampling import ExpansionSampler, expansion_factors, image_repeats
from datamodules.transforms import IMAGENET_MEAN, IMAGENET_STD, PRESETS, _to_float32, build_transform
from tests.conftest import load_maker

REPO = Path(__file__).resolve().parent.parent


def _dm(root, tmp_path, **kwargs):
    kwargs.setdefault("image_size", 32)
    kwargs.setdefault("batch_size", 4)
    return DATAMODULES["covid19_radiography"](root, cache_dir=tmp_path / "cache", split_dir=tmp_path / "splits", **kwargs)


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, (64, 64, 1), dtype=np.uint8)


# ----- channels and normalisation -----
def test_three_channel_batches_repeat_the_gray_image(radiography_root, tmp_path):
    dm = _dm(radiography_root, tmp_path, channels=3, augmentation="twice_transfer")
    dm.setup()
    for batch in (next(iter(dm.train_dataloader())), next(iter(dm.val_dataloader()))):
        image = batch["image"]
        assert dm.channels == 3 and image.shape[1:] == (3, 32, 32)
        assert torch.equal(image[:, 0], image[:, 1]) and torch.equal(image[:, 0], image[:, 2])
    assert dm.describe()["normalization"] == {"kind": "train_stats", "channels": 3, "mean": dm.mean, "std": dm.std}


def test_imagenet_normalisation_of_a_constant_image():
    out = build_transform(None, mean=0.5, std=0.25, normalization="imagenet", channels=3)(image=np.full((8, 8, 1), 128, np.uint8))["image"]
    expected = [(128 / 255 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
    assert out.shape == (3, 8, 8) and out.dtype == torch.float32
    assert torch.allclose(out[:, 0, 0], torch.tensor(expected, dtype=torch.float32), atol=1e-5)
    assert torch.allclose(out, out[:, :1, :1].expand_as(out))  # the same value everywhere in a channel


def test_unit_scaling_is_pixels_over_255(image):
    out = build_transform(None, mean=0.5, std=0.25, normalization="unit")(image=image)["image"]
    assert out.shape == (1, 64, 64) and 0 <= float(out.min()) and float(out.max()) <= 1
    assert torch.allclose(out[0], torch.tensor(image[:, :, 0] / 255.0, dtype=torch.float32), atol=1e-6)


def test_imagenet_with_one_channel_is_a_config_error(radiography_root, tmp_path):
    with pytest.raises(ConfigError, match="imagenet .*needs channels: 3"):
        validate(DataConfig, {"normalization": "imagenet"}, where="suite.yaml", section="data")
    with pytest.raises(ValueError, match="needs channels: 3"):
        _dm(radiography_root, tmp_path, normalization="imagenet")
    with pytest.raises(ValueError, match="needs channels: 3"):
        build_transform(None, mean=0, std=1, normalization="imagenet")
    assert validate(DataConfig, {"normalization": "imagenet", "channels": 3}, where="s", section="data")["channels"] == 3


@pytest.mark.parametrize("preset", ["none", "light"])
@pytest.mark.parametrize("normalization", ["train_stats", "per_image"])
def test_existing_pipelines_are_bit_identical(image, preset, normalization):
    """The pipelines as they were before channels and the new kinds: same steps, same seed, same tensors."""
    norm = (A.Normalize(mean=(0.4,), std=(0.2,), max_pixel_value=255.0) if normalization == "train_stats"
            else A.Compose([A.Normalize(normalization="image"), A.Lambda(image=_to_float32)]))
    import copy

    old = A.Compose(copy.deepcopy(PRESETS[preset]) + [norm, ToTensorV2()], seed=3)
    new = build_transform(preset, mean=0.4, std=0.2, normalization=normalization, seed=3)
    assert all(torch.equal(old(image=image)["image"], new(image=image)["image"]) for _ in range(4))


# ----- the papers' presets -----
@pytest.mark.parametrize("preset", ["transfer_cxr14", "twice_transfer"])
@pytest.mark.parametrize("channels", [1, 3])
def test_paper_presets_change_a_64px_image(image, preset, channels):
    plain = build_transform(None, mean=0.5, std=0.25, normalization="unit", channels=channels)(image=image)["image"]
    outputs = [build_transform(preset, mean=0.5, std=0.25, normalization="unit", channels=channels, seed=seed)(image=image)["image"] for seed in (0, 0, 1)]
    assert outputs[0].shape == plain.shape == (channels, 64, 64)
    assert not torch.equal(outputs[0], plain) and not torch.equal(outputs[0], outputs[2])
    assert torch.equal(outputs[0], outputs[1])  # the seed fixes the draw
    assert torch.equal(outputs[0][0], outputs[0][-1])


def test_twice_transfer_translations_scale_with_the_image():
    translate = PRESETS["twice_transfer"][1]
    assert translate.translate_percent["x"] == pytest.approx((-40 / 224, 40 / 224))
    assert translate.translate_percent["y"] == pytest.approx((-28 / 224, 28 / 224))
    assert {"transfer_cxr14", "twice_transfer"} <= set(DataConfig.model_fields["augmentation"].annotation.__args__[0].__args__)


# ----- class-dependent expansion -----
def test_expansion_sampler_repeats_each_image_its_factor_times():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    factors = expansion_factors({"COVID-19": 3, "normal": 2}, ["normal", "pneumonia", "COVID-19"])
    assert factors.tolist() == [2, 1, 3]
    sampler = ExpansionSampler(image_repeats(labels, factors), seed=5)
    first, second = list(sampler), list(sampler)
    assert len(sampler) == len(first) == 3 * 2 + 2 * 1 + 4 * 3 and sampler.epoch == 2
    assert np.bincount(first).tolist() == [2, 2, 2, 1, 1, 3, 3, 3, 3] == np.bincount(second).tolist()
    assert first != second  # a fresh order each epoch
    assert list(ExpansionSampler(image_repeats(labels, factors), seed=5)) == first  # reproducible from the seed
    resumed = ExpansionSampler(image_repeats(labels, factors), seed=5)
    resumed.epoch = 1
    assert list(resumed) == second  # what a checkpoint's sampler_epoch restores
    assert list(ExpansionSampler(image_repeats(labels, factors), seed=6)) != first


def test_expansion_of_multilabel_images_takes_their_largest_factor():
    targets = np.array([[1, 0], [1, 1], [0, 0]], dtype=np.float32)
    assert image_repeats(targets, np.array([2, 5])).tolist() == [2, 5, 1]


def test_unknown_expansion_class_is_named(radiography_root, tmp_path):
    with pytest.raises(ValueError, match=r"'COVID'.*classes: normal, COVID-19"):
        expansion_factors({"COVID": 4}, ["normal", "COVID-19"])
    with pytest.raises(ValueError, match=r"'COVID'.*classes: COVID-19, normal, pneumonia"):
        _dm(radiography_root, tmp_path, expansion={"COVID": 4}).setup()


def test_datamodule_expansion_draws_every_train_image_its_factor_times(radiography_root, tmp_path):
    dm = _dm(radiography_root, tmp_path, expansion={"COVID-19": 3}, augmentation="twice_transfer")
    dm.setup()
    labels = np.asarray(dm.datasets["train"].targets)
    loader = dm.train_dataloader()
    drawn = torch.cat([batch["index"] for batch in loader]).numpy()
    covid = dm.class_names.index("COVID-19")
    assert np.bincount(drawn, minlength=len(labels)).tolist() == [3 if label == covid else 1 for label in labels]
    assert dm.state_dict()["sampler_epoch"] == 1


def test_schema_checks_expansion():
    with pytest.raises(ConfigError, match=r"data.expansion.COVID-19: Input should be greater than or equal to 1 \(got -2\)"):
        validate(DataConfig, {"expansion": {"COVID-19": -2}}, where="suite.yaml", section="data")
    with pytest.raises(ConfigError, match="expansion cannot be combined with balanced_sampling"):
        validate(DataConfig, {"expansion": {"COVID-19": 8}, "balanced_sampling": "oversample"}, where="suite.yaml", section="data")
    with pytest.raises(ConfigError, match="expansion cannot be combined"):
        validate(DataConfig, {"expansion": {"COVID-19": 8}, "pair_sampling": {"pairs_per_epoch": 8}}, where="suite.yaml", section="data")
    assert validate(DataConfig, {"expansion": {"COVID-19": 72, "normal": 8}}, where="s", section="data")["expansion"] == {"COVID-19": 72, "normal": 8}


# ----- the model gets the channels; a run records them and its external evaluation repeats them -----
def test_build_task_passes_the_channels(radiography_root, tmp_path):
    from benchmark.runner import build_task

    dm = _dm(radiography_root, tmp_path, channels=3, normalization="imagenet")
    dm.setup()
    spec = SimpleNamespace(method={"method": "single_net", "model": {"nf": 8, "fc_units": 16}})
    task = build_task(spec, dm)
    batch = next(iter(dm.val_dataloader()))
    assert task.hparams.in_chans == 3 and task(batch["image"]).shape == (len(batch["image"]), 3)


def test_three_channel_imagenet_run_is_scored_externally_the_same_way(tmp_path, capsys):
    from benchmark.cli import main

    kermany = load_maker("kermany_pneumonia").create(tmp_path / "data")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({
        "extends": str(REPO / "configs/methods/single_net.yaml"), "model": {"nf": 8, "fc_units": 16}, "trainer": {"max_epochs": 1},
        "data": {"batch_size": 8, "channels": 3, "normalization": "imagenet", "augmentation": "twice_transfer", "expansion": {"COVID-19": 2},
                 "balanced_sampling": None}}))  # single_net.yaml balances its epochs
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump({
        "name": "tiny", "datasets": [{"name": "covid19_radiography", "options": {"patients_per_class": 8}}], "synthetic_without_data_root": True,
        "methods": ["tiny.yaml"], "seeds": [0], "logging": {"wandb": False},
        "data": {"image_size": 32, "val_fraction": 0.25, "test_fraction": 0.25},
        "trainer": {"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False, "limit_train_batches": 2, "num_sanity_val_steps": 0}}))
    out, cache = tmp_path / "runs", tmp_path / "cache"
    assert main(["run", str(tmp_path / "suite.yaml"), "--out", str(out), "--leaderboard", str(tmp_path / "board.md"), "--cache-dir", str(cache)]) == 0
    result = json.loads((out / "results/synthetic/tiny/seed0.json").read_text())
    recorded = {"kind": "imagenet", "channels": 3, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    assert result["normalization"] == recorded == result["dataset"]["normalization"]
    assert torch.load(result["checkpoint"]["path"], weights_only=False)["hyper_parameters"]["in_chans"] == 3
    capsys.readouterr()
    assert main(["evaluate", str(out), "--dataset", "kermany_pneumonia", "--root", str(kermany), "--cache-dir", str(cache), "--json"]) == 0
    external = json.loads(capsys.readouterr().out)
    assert external["run"]["normalization"] == recorded and external["counts"]["scored"] > 0
