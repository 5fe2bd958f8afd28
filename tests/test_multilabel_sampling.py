import numpy as np
import pytest

from benchmark.config import ConfigError
from benchmark.runner import DATA_KEYS
from benchmark.schema import DataConfig, validate
from datamodules import DATAMODULES
from datamodules.sampling import MultilabelBalancedSampler, train_sampler


def _targets(n=400, seed=0):
    rng = np.random.default_rng(seed)
    hot = (rng.random((n, 4)) < [0.5, 0.2, 0.05, 0.0]).astype(np.float32)
    hot[:3, 3] = 1  # three images only: drawn with replacement
    return hot


def test_every_class_gets_per_class_positives_each_epoch_redrawn_and_reproducible():
    targets = _targets()
    sampler = MultilabelBalancedSampler(targets, per_class=10, seed=4)
    first, second = list(sampler), list(sampler)
    assert len(first) == len(second) == len(sampler) == 40  # per_class x classes, fixed
    for epoch in (first, second):
        assert (targets[epoch].sum(axis=0) >= 10).all()
    assert first != second and sampler.epoch == 2
    assert list(MultilabelBalancedSampler(targets, per_class=10, seed=4)) == first
    resumed = MultilabelBalancedSampler(targets, per_class=10, seed=4)
    resumed.epoch = 1
    assert list(resumed) == second
    assert set(first) >= {0, 1, 2}  # the rare class's every image, then repeats


def test_uncertain_labels_are_not_positives_and_empty_classes_are_skipped():
    targets = np.zeros((30, 3), dtype=np.float32)
    targets[:10, 0] = 1
    targets[10:, 1] = -1  # CheXpert's uncertain
    targets[10:15, 2] = 1
    picks = list(MultilabelBalancedSampler(targets, per_class=6, seed=0))
    assert len(picks) == 12 and all(targets[i, 0] == 1 or targets[i, 2] == 1 for i in picks)


def test_single_and_multi_label_modes_refuse_the_other_kind():
    with pytest.raises(ValueError, match="single-label dataset takes"):
        train_sampler(np.array([0, 1, 1, 0]), "multilabel")
    with pytest.raises(ValueError, match="for single-label datasets"):
        train_sampler(_targets(), "oversample")
    assert isinstance(train_sampler(_targets(), "multilabel", per_class=3), MultilabelBalancedSampler)


def test_the_data_options_reach_the_sampler_and_the_checkpoint(tmp_path):
    assert "balanced_per_class" in DATA_KEYS
    assert validate(DataConfig, {"balanced_sampling": "multilabel", "balanced_per_class": 5}, where="t")["balanced_per_class"] == 5
    with pytest.raises(ConfigError, match="balanced_per_class"):
        validate(DataConfig, {"balanced_per_class": 0}, where="t")
    dm = DATAMODULES["synthetic_chestxray14"](cache_dir=tmp_path / "cache", split_dir=tmp_path / "splits", image_size=16, patients=45,
                                              balanced_sampling="multilabel", balanced_per_class=4, batch_size=8)
    dm.prepare_data()
    dm.setup()
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, MultilabelBalancedSampler) and len(loader.sampler) == 4 * 14
    labels = np.concatenate([batch["label"].numpy() for batch in loader])
    assert (labels.sum(axis=0) >= 4).all()
    assert dm.state_dict()["sampler_epoch"] == 1
    dm.load_state_dict({"sampler_epoch": 7})
    assert dm.train_dataloader().sampler.epoch == 7
