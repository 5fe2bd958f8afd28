"""Weighted cross-entropy (eq. (4)), PPCR and the Gain column (section VI.C), and the ResNet-50 classifier."""

import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from benchmark.evaluate import evaluate
from benchmark.leaderboard import gain, gain_score, one_vs_rest_accuracy
from datamodules import DATAMODULES
from conftest import HalvesDataset, train_losses
from lightning_modules import get_task_class
from lightning_modules.losses import build_loss




CLASSES = ["COVID-19", "non-COVID"]


def test_wce_at_beta_one_is_cross_entropy():
    logits, target = torch.randn(16, 2), torch.randint(0, 2, (16,))
    wce = build_loss({"name": "weighted_cross_entropy", "beta": 1.0}, num_classes=2, multilabel=False, class_names=CLASSES)
    assert torch.allclose(wce(logits, target), F.cross_entropy(logits, target))


def test_wce_weights_the_positive_term_by_beta_by_hand():
    # two samples: a COVID-19 one (positive) with p(COVID) = 0.8, a non-COVID one with p(COVID) = 0.3
    p = torch.tensor([0.8, 0.3])
    logits = torch.stack([torch.log(p), torch.log(1 - p)], dim=1)  # softmax gives back (p, 1 - p)
    target = torch.tensor([0, 1])  # class 0 = COVID-19
    beta = 0.75
    by_hand = -(beta * math.log(0.8) + math.log(1 - 0.3)) / 2  # eq. (4): -(beta y log p + (1 - y) log(1 - p)), mean
    wce = build_loss({"name": "weighted_cross_entropy", "beta": beta}, num_classes=2, multilabel=False, class_names=CLASSES)
    assert wce(logits, target).item() == pytest.approx(by_hand, rel=1e-6)
    # the positive class is found by name whatever its index
    swapped = build_loss({"name": "weighted_cross_entropy", "beta": beta, "positive": "COVID-19"}, num_classes=2, multilabel=False, class_names=CLASSES[::-1])
    assert swapped(logits.flip(1), 1 - target).item() == pytest.approx(by_hand, rel=1e-6)


def test_wce_vector_form_and_errors():
    logits, target = torch.randn(12, 3), torch.arange(12) % 3
    names = ["COVID-19", "normal", "pneumonia"]
    beta = [0.5, 1.0, 2.0]
    wce = build_loss({"name": "weighted_cross_entropy", "beta": beta}, num_classes=3, multilabel=False, class_names=names)
    by_hand = -(torch.tensor(beta)[target] * F.log_softmax(logits, 1)[torch.arange(12), target]).mean()
    assert torch.allclose(wce(logits, target), by_hand)
    mapping = build_loss({"name": "weighted_cross_entropy", "beta": {"COVID-19": 0.5, "pneumonia": 2.0}}, num_classes=3, multilabel=False, class_names=names)
    assert torch.allclose(mapping(logits, target), by_hand)
    with pytest.raises(ValueError, match="2 entries for 3 classes"):
        build_loss({"name": "weighted_cross_entropy", "beta": [1, 2]}, num_classes=3, multilabel=False, class_names=names)
    with pytest.raises(ValueError, match="not a class of this task"):
        build_loss({"name": "weighted_cross_entropy", "beta": 0.75, "positive": "COVID"}, num_classes=2, multilabel=False, class_names=CLASSES)
    with pytest.raises(ValueError, match="single-label"):
        build_loss({"name": "weighted_cross_entropy", "beta": 0.75}, num_classes=2, multilabel=True, class_names=CLASSES)


def test_wce_is_a_loss_option_of_every_classifier():
    task = get_task_class("single_net")(class_names=CLASSES, image_size=32, model={"nf": 8, "fc_units": 16}, loss={"name": "weighted_cross_entropy", "beta": 0.75})
    assert task.criterion.class_weights.tolist() == [0.75, 1.0]


def test_ppcr_and_gain_by_hand():
    # confusion (rows truth, COVID-19 first): TP=3, FN=1, FP=2, TN=14 -> 20 images
    labels = torch.tensor([0] * 4 + [1] * 16)
    predicted = torch.tensor([0, 0, 0, 1] + [0, 0] + [1] * 14)
    scores = F.one_hot(predicted, 2).float() * 0.8 + 0.1
    metrics = evaluate(scores, labels, CLASSES)["metrics"]
    assert metrics["ppcr/COVID-19"] == pytest.approx((3 + 2) / 20)  # (TP + FP) / all
    assert metrics["ppcr/non-COVID"] == pytest.approx(15 / 20)
    row = gain_score(metrics, "COVID-19")
    sensitivity, specificity = 3 / 4, 14 / 16
    assert row["bacc"] == pytest.approx((sensitivity + specificity) / 2)
    assert row["score"] == pytest.approx(((sensitivity + specificity) / 2 + 5 / 20) / 2)
    # Table II's "PPCR" values are accuracies, (TP + TN) / N: the as_tabulated score uses that
    confusion = evaluate(scores, labels, CLASSES)["confusion_matrix"]
    assert confusion == [[3, 1], [2, 14]]
    accuracy = one_vs_rest_accuracy(confusion, 0)
    assert accuracy == pytest.approx((3 + 14) / 20)
    tabulated = gain_score(metrics, "COVID-19", accuracy=accuracy, ppcr="as_tabulated")
    assert tabulated["score"] == pytest.approx(((sensitivity + specificity) / 2 + 17 / 20) / 2) and tabulated["ppcr"] == row["ppcr"]
    assert one_vs_rest_accuracy([[3, 1, 0], [2, 10, 1], [0, 1, 2]], 0) == pytest.approx((20 - 3) / 20)  # FN 1 + FP 2 wrong
    # Table II's sensitivity/specificity (40 + 3000 test images) give its PPCR column as accuracy, not (TP + FP) / N
    assert (0.9 * 40 + 0.9993 * 3000) / 3040 == pytest.approx(0.9980, abs=5e-5)
    # Table II: ResNet50 + ImageNet + beta 0.75 (bACC 0.9987, PPCR 0.9974) against SqueezeNet (0.9762, 0.9773): +2.18%
    assert gain((0.9987 + 0.9974) / 2, (0.9762 + 0.9773) / 2) == pytest.approx(2.18, abs=0.005)
    assert gain((0.9497 + 0.9980) / 2, (0.9762 + 0.9773) / 2) == pytest.approx(-0.30, abs=0.005)


def _resnet(**kwargs):
    options = {"class_names": CLASSES, "image_size": 32, "model": {"backbone": "resnet50", "head": "fcn"}, "optimizer": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
               "loss": {"name": "weighted_cross_entropy", "beta": 0.75}}
    options.update(kwargs)
    return get_task_class("classifier")(**options)


def test_resnet50_shapes_and_parameter_count():
    task = _resnet(image_size=256)
    assert task(torch.randn(2, 1, 256, 256)).shape == (2, 2)
    assert task.parameter_count() == pytest.approx(23.5e6, rel=0.01)  # 23.50M backbone (1-channel stem) + 12.8k head
    linear = _resnet(model={"backbone": "resnet50", "head": "linear"})
    assert linear.parameter_count() == pytest.approx(23.5e6, rel=0.01)
    assert linear.model.backbone.conv1.in_channels == 1


def test_resnet50_loss_falls_on_a_separable_toy_set():
    pl.seed_everything(0)
    task = _resnet()
    batch = next(iter(DataLoader(HalvesDataset(), batch_size=32)))
    losses = train_losses(task, batch, 12)
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])


def test_resnet50_trains_two_steps_with_a_lightning_trainer(tmp_path):
    task = _resnet()
    loader = DataLoader(HalvesDataset(16), batch_size=8)
    trainer = pl.Trainer(max_steps=2, limit_val_batches=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.fit(task, loader, loader)
    assert trainer.global_step == 2 and "val/ppcr/COVID-19" in trainer.callback_metrics


def test_start_weights_from_a_torchvision_file_fold_the_rgb_stem(tmp_path):
    import torchvision

    reference = torchvision.models.resnet50()
    torch.save(reference.state_dict(), tmp_path / "resnet50-local.pth")
    task = _resnet(start_weights=str(tmp_path / "resnet50-local.pth"))
    assert task.start_weights.startswith("resnet50-local.pth")
    assert torch.allclose(task.model.backbone.conv1.weight, reference.conv1.weight.sum(1, keepdim=True))  # RGB filters summed
    assert torch.equal(task.model.backbone.layer4[2].conv3.weight, reference.layer4[2].conv3.weight)
    with pytest.raises(FileNotFoundError, match="only read from local files"):
        _resnet(start_weights=str(tmp_path / "absent.pth"))


def test_class_map_makes_a_binary_task_on_the_same_split(radiography_root, tmp_path):
    def module(**kwargs):
        dm = DATAMODULES["covid19_radiography"](radiography_root, image_size=32, cache_dir=tmp_path / "cache", split_dir=tmp_path / "splits", val_fraction=0.25, test_fraction=0.25, **kwargs)
        dm.setup("fit")
        return dm

    three = module()
    binary = module(class_map={"COVID-19": "COVID-19", "*": "non-COVID"})
    assert binary.class_names == CLASSES and binary.split_sha256 == three.split_sha256
    for split in ("train", "val", "test"):
        native = three.frames[split]["label"]
        assert binary.frames[split]["label"].tolist() == ["COVID-19" if label == "COVID-19" else "non-COVID" for label in native]
        assert binary.datasets[split].targets.tolist() == [0 if label == "COVID-19" else 1 for label in native]
    assert binary.describe()["class_map"] == {"COVID-19": "COVID-19", "*": "non-COVID"}
    dropped = module(class_map={"COVID-19": "COVID-19", "normal": "non-COVID"})  # pneumonia unmapped: left out, counted
    assert "pneumonia" not in set(dropped.frames["train"]["label"]) and dropped.excluded["label_outside_task"] == (three.frames["train"]["label"] == "pneumonia").sum() + \
        (three.frames["val"]["label"] == "pneumonia").sum() + (three.frames["test"]["label"] == "pneumonia").sum()
