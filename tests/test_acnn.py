"""The weighted-CE paper's atrous CNN (section IV.C) and the authors' FCN head."""

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from conftest import HalvesDataset, train_losses
from lightning_modules import get_task_class
from lightning_modules.backbones.acnn import ACNN, AtrousBlock

CLASSES = ["COVID-19", "non-COVID"]




def _acnn(image_size=32, depth=16, **kwargs):
    options = {"class_names": CLASSES, "image_size": image_size, "optimizer": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
               "model": {"backbone": "acnn", "backbone_options": {"depth": depth}, "head": "fcn"}}
    options.update(kwargs)
    return get_task_class("classifier")(**options)


def test_atrous_block_follows_the_paper_and_the_authors_code():
    block = AtrousBlock()
    convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(3, 3), (3, 3)]
    assert [c.dilation for c in convs] == [(1, 1), (3, 3)]  # rates 1 and 3 (section IV.C)
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 9), (9, 3)]
    assert all(c.bias is None for c in convs)
    x = torch.randn(2, 3, 17, 17)
    assert block(x).shape == x.shape  # full resolution, residual


def test_sixteen_blocks_and_gray_input_repeated():
    backbone = ACNN(in_chans=1)
    assert len(backbone.blocks) == 16
    assert backbone(torch.randn(2, 1, 40, 40)).shape == (2, 3, 40, 40)
    with pytest.raises(ValueError, match="in_chans"):
        ACNN(in_chans=2)


def test_paper_width_has_about_8m_parameters():
    task = _acnn(image_size=256)
    assert task.parameter_count() == pytest.approx(8.40e6, rel=0.01)  # the paper: "ACNN model has only 8M parameters"
    assert task(torch.randn(2, 1, 256, 256)).shape == (2, 2)


def test_loss_falls_on_a_separable_toy_set():
    pl.seed_everything(0)
    task = _acnn(depth=4, optimizer={"name": "adam", "lr": 1e-3, "betas": [0.5, 0.999]})
    batch = next(iter(DataLoader(HalvesDataset(), batch_size=32)))
    losses = train_losses(task, batch, 15)
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])


def test_trains_two_steps_with_a_lightning_trainer(tmp_path):
    task = _acnn(depth=2, loss={"name": "weighted_cross_entropy", "beta": 0.75})
    loader = DataLoader(HalvesDataset(16), batch_size=8)
    trainer = pl.Trainer(max_steps=2, limit_val_batches=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.fit(task, loader, loader)
    assert trainer.global_step == 2 and "val/balanced_accuracy" in trainer.callback_metrics
    assert task.gradcam_target_layer() is task.model.backbone.blocks[-1]
