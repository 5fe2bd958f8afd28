"""The CAE paper (Mahalingam & Pandraju, section 3, Tables 1-4): encoder, decoder, LSTM head, the reconstruction
stage and gradual unfreezing."""

import copy

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader

from lightning_modules import get_task_class
from lightning_modules.autoencoder import ReconstructionTask, log_image_to_wandb, save_reconstruction_grid
from lightning_modules.backbones.cae import TABLE4_HEADS, CAEDecoder, CAEEncoder, ConvAutoencoder, KerasLSTM, SequenceHead
from lightning_modules.phases import PhaseParameters, trainable_count
from lightning_modules.unfreezing import GradualUnfreezing, top_down_schedule

count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731


def _classifier(image_size=64, classes=("COVID-19", "normal", "pneumonia"), lr=1e-3, **head_options):
    return get_task_class("classifier")(class_names=list(classes), image_size=image_size, in_chans=3, optimizer={"name": "adam", "lr": lr},
                                        model={"backbone": "cae_encoder", "head": "sequence", "head_options": head_options})


def test_encoder_decoder_autoencoder_shapes_and_table_1_2_counts():
    encoder, decoder = CAEEncoder(), CAEDecoder()
    assert count(encoder) == 3_947_712 and count(decoder) == 3_910_275
    assert [n for n, m in encoder.named_children() if isinstance(m, torch.nn.Conv2d)] == [f"conv{i}" for i in range(1, 7)]
    assert encoder.top_down[0] == "conv6" and encoder.top_down[-1] == "conv1"
    with torch.no_grad():
        assert encoder(torch.rand(1, 3, 224, 224)).shape == (1, 512, 7, 7)
        assert decoder(torch.rand(1, 512, 7, 7)).shape == (1, 3, 224, 224)
        autoencoder = ConvAutoencoder(output_activation="sigmoid")
        out = autoencoder(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 3, 64, 64) and 0 <= out.min() and out.max() <= 1
    assert autoencoder.backbone(torch.rand(1, 3, 64, 64)).shape == (1, 512, 2, 2)


def test_keras_lstm_has_one_bias_and_matches_the_cell_formula():
    assert count(KerasLSTM(512, 512)) == 2_099_200
    torch.manual_seed(0)
    lstm = KerasLSTM(3, 2)
    assert torch.equal(lstm.bias, torch.tensor([0, 0, 1, 1, 0, 0, 0, 0.0]))  # forget gate starts at 1 (Keras)
    with torch.no_grad():
        lstm.lstm.weight_ih_l0[:, -1].normal_()
    x = torch.randn(1, 2, 3)
    w, u, b = lstm.lstm.weight_ih_l0[:, :3], lstm.lstm.weight_hh_l0, lstm.bias
    h, c, outs = torch.zeros(2), torch.zeros(2), []
    for t in range(2):
        i, f, g, o = (x[0, t] @ w.T + h @ u.T + b).chunk(4)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    assert torch.allclose(lstm(x)[0], torch.stack(outs), atol=1e-6)


def test_table_3_classifier_counts_and_gradcam_layer():
    task = _classifier(image_size=224)
    assert task.parameter_count() == 7_652_803
    PhaseParameters("head").freeze_before_training(task)
    assert trainable_count(task.model) == (3_705_091, 7_652_803)
    assert task.gradcam_target_layer() is task.model.backbone.conv6
    assert [m for m in task.model.head.modules() if isinstance(m, torch.nn.Linear)][-1].out_features == 3


def test_head_reads_the_map_in_row_major_channels_last_order():
    head = SequenceHead(2, (2, 3), 1, lstm_layers=0, dense=())
    with torch.no_grad():
        head.dense[-1].weight.copy_(torch.arange(12.0))
    features = torch.arange(12.0).reshape(1, 2, 2, 3)  # (B, C, H, W)
    channels_last = features.permute(0, 2, 3, 1).reshape(-1)  # Keras's Flatten of an (H, W, C) map
    assert head(features).item() == pytest.approx((channels_last * torch.arange(12.0)).sum().item())


@pytest.mark.parametrize("variant", sorted(TABLE4_HEADS))
def test_table_4_heads_train(variant):
    torch.manual_seed(0)
    task = _classifier(**TABLE4_HEADS[variant])
    lstms = sum(isinstance(m, KerasLSTM) for m in task.model.head.modules())
    assert lstms == TABLE4_HEADS[variant]["lstm_layers"]
    before = copy.deepcopy(task.model.head.state_dict())
    optimizer = task.configure_optimizers()
    batch = {"image": torch.rand(4, 3, 64, 64), "label": torch.tensor([0, 1, 2, 0])}
    for _ in range(3):
        loss = task.training_step(batch, 0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert torch.isfinite(loss)
    after = task.model.head.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)


def _smooth_images(n=16, size=32):
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(n, 3, 4, 4, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=False)


def test_reconstruction_mse_falls_and_metrics_are_logged(tmp_path):
    pl.seed_everything(0)
    task = ReconstructionTask(image_size=32, optimizer={"name": "adam", "lr": 1e-3})
    assert task.hparams.image_size == 32 and task.class_names == [] and task.head_activation is None
    assert ReconstructionTask().hparams.optimizer is None  # the paper's Adam(0.01) is configure_optimizers' default
    images = _smooth_images()
    batch = {"image": images, "label": torch.zeros(16, dtype=torch.long)}
    optimizer = task.configure_optimizers()
    losses = []
    for _ in range(30):
        loss = task.training_step(batch, 0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3])

    loader = DataLoader([{"image": image} for image in images[:8]], batch_size=4)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    val = trainer.validate(task, loader, verbose=False)[0]
    test = trainer.test(task, loader, verbose=False)[0]
    assert {"val/loss", "val/mse", "val/psnr", "val/ssim"} <= set(val) and {"test/loss", "test/mse", "test/psnr", "test/ssim"} <= set(test)
    assert val["val/psnr"] == pytest.approx(test["test/psnr"]) and np.isfinite(val["val/ssim"])
    assert val["val/psnr"] == pytest.approx(10 * np.log10(1 / val["val/mse"]), rel=1e-4) and val["val/mse"] <= val["val/loss"] + 1e-6

    path = save_reconstruction_grid(task.model, images, tmp_path / "grid" / "recon.png", columns=4)
    assert task.model.training  # mode restored
    with Image.open(path) as grid:
        assert grid.size == (4 * 34 + 2, 2 * 34 + 2)  # 4 columns, 2 rows of 32 px with make_grid's 2 px padding
    log_image_to_wandb(None, "recon", path)
    log_image_to_wandb([object()], "recon", path)  # no W&B logger: nothing, no error


class _Watch(pl.Callback):
    """What the encoder and the optimiser look like at the end of each epoch."""

    def __init__(self):
        self.weights, self.groups, self.encoder_grads = [], [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 0:
            self.encoder_grads += [p.grad for p in pl_module.model.backbone.parameters()]

    def on_train_epoch_end(self, trainer, pl_module):
        self.weights.append(copy.deepcopy(pl_module.model.backbone.state_dict()))
        self.groups.append([(len(g["params"]), g["lr"]) for g in trainer.optimizers[0].param_groups])


def test_gradual_unfreezing_follows_its_schedule(tmp_path):
    pl.seed_everything(0)
    task = _classifier(image_size=32, classes=("COVID-19", "normal"), lr=1e-3)
    start = copy.deepcopy(task.model.backbone.state_dict())
    data = [{"image": torch.rand(3, 32, 32), "label": i % 2, "index": i} for i in range(8)]
    unfreezing = GradualUnfreezing("head", [{"epoch": 1, "modules": ["backbone.conv6"]}, {"epoch": 2, "modules": "all", "lr": 1e-5}])
    watch = _Watch()
    trainer = pl.Trainer(max_epochs=3, limit_train_batches=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[unfreezing, watch], default_root_dir=tmp_path)
    trainer.fit(task, DataLoader(data, batch_size=4))

    assert all(g is None for g in watch.encoder_grads)
    assert all(torch.equal(start[k], watch.weights[0][k]) for k in start)  # epoch 0: encoder unchanged
    changed = lambda epoch: {k.split(".")[0] for k in start if not torch.equal(start[k], watch.weights[epoch][k])}  # noqa: E731
    assert changed(1) == {"conv6"} and changed(2) == {f"conv{i}" for i in range(1, 7)}
    head_params = len(list(task.model.head.parameters()))
    assert watch.groups == [[(head_params, 1e-3)], [(head_params, 1e-3), (2, 1e-3)], [(head_params, 1e-3), (2, 1e-3), (10, 1e-5)]]
    groups = trainer.optimizers[0].param_groups
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(task.parameters()))
    assert unfreezing.history == [{"epoch": 1, "modules": ["backbone.conv6"], "parameters": count(task.model.backbone.conv6), "lr": 1e-3},
                                  {"epoch": 2, "modules": "all", "parameters": count(task.model.backbone) - count(task.model.backbone.conv6), "lr": 1e-5}]
    assert "history" in unfreezing.state_dict()


def test_gradual_unfreezing_rejects_bad_schedules():
    task = _classifier(image_size=32, classes=("a", "b"))
    with pytest.raises(ValueError, match="backbone.conv9.*its modules: backbone, head"):
        GradualUnfreezing("head", [{"epoch": 1, "modules": ["backbone.conv9"]}]).freeze_before_training(task)
    with pytest.raises(ValueError, match="epoch"):
        GradualUnfreezing("head", [{"epoch": 0, "modules": "all"}])
    schedule = top_down_schedule([f"backbone.{n}" for n in CAEEncoder.top_down], start_epoch=2, every=2, lr=1e-5)
    assert [s["epoch"] for s in schedule] == [2, 4, 6, 8, 10, 12] and schedule[0] == {"epoch": 2, "modules": ["backbone.conv6"], "lr": 1e-5}


def test_config_schema_takes_the_cae_backbone_and_sequence_head():
    from benchmark.schema import ClassifierModel

    model = ClassifierModel.model_validate({"backbone": "cae_encoder", "head": "sequence", "head_options": TABLE4_HEADS["5 Dense"]})
    assert model.head_options == {"lstm_layers": 0, "dense": [256, 128, 64, 32], "dense_activation": "relu"}
    with pytest.raises(ValueError):
        ClassifierModel.model_validate({"backbone": "cae_encoder", "head": "sequence", "head_options": {"lstm_layers": -1}})


def test_one_channel_autoencoder_reconstructs_one_channel():
    """The paper's 3 channels are the default; 1 channel (`data: {channels: 1}`) is an option."""
    from lightning_modules.backbones.cae import ConvAutoencoder

    model = ConvAutoencoder(in_chans=1)
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 1, 32, 32)
    assert model.backbone.conv1.weight.shape[1] == 1
