"""The CAE paper's unsupervised stage (section 3.1): the convolutional autoencoder of Tables 1-2 trained to
reconstruct [0, 1] images with MSE (eq. 4) and Adam at lr 0.01. Its ``model.backbone`` weights start the
classifier (``backbone: cae_encoder``). Not a registered method: the benchmark's methods are classifiers, built
with class names and scored on labels (``python -m benchmark list`` and the config schema list only those).
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MeanSquaredError, MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure
from torchvision.utils import make_grid, save_image

from lightning_modules.backbones.cae import ConvAutoencoder
from lightning_modules.optim import PhasedOptimization


class ReconstructionTask(PhasedOptimization, pl.LightningModule):
    """Images (batch ``"image"``, (B, C, H, W) in [0, 1]; labels ignored) in, reconstructions out; logs the MSE
    loss and MSE / PSNR / SSIM of the reconstructions clamped to [0, 1]."""

    name = "cae_autoencoder"
    default_optimizer = {"name": "adam", "lr": 0.01}  # section 3.1

    def __init__(self, *, image_size: int = 224, in_chans: int = 3, model: dict | None = None, optimizer: dict | None = None, scheduler: dict | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.class_names: list[str] = []
        self.head_activation = None
        self.configure_models()
        self.configure_losses()
        self.configure_metrics()

    def configure_models(self) -> None:
        options = dict(self.hparams.model or {})
        self.model = ConvAutoencoder(in_chans=self.hparams.in_chans, output_activation=options.get("output_activation", "relu"))

    def configure_losses(self) -> None:
        self.criterion = nn.MSELoss()  # eq. (4)

    def configure_metrics(self) -> None:
        make = lambda stage: MetricCollection({"mse": MeanSquaredError(), "psnr": PeakSignalNoiseRatio(data_range=1.0),  # noqa: E731
                                               "ssim": StructuralSimilarityIndexMeasure(data_range=1.0)}, prefix=f"{stage}/")
        self.val_metrics, self.test_metrics = make("val"), make("test")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        images = batch["image"]
        reconstruction = self(images)
        loss = self.criterion(reconstruction, images)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=stage != "test", batch_size=len(images), sync_dist=stage != "train")
        if stage != "train":
            getattr(self, f"{stage}_metrics").update(reconstruction.detach().clamp(0, 1), images)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def _log_epoch_metrics(self, stage: str) -> None:
        metrics = getattr(self, f"{stage}_metrics")
        self.log_dict({k: v.float() for k, v in metrics.compute().items()})
        metrics.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics("test")


def save_reconstruction_grid(model: nn.Module, images: torch.Tensor, path, *, columns: int = 8) -> Path:
    """One PNG of up to ``columns`` images (B, C, H, W in [0, 1]): inputs on top, reconstructions (clamped) below."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = images[:columns]
    parameter = next(model.parameters(), None)
    if parameter is not None:
        images = images.to(parameter.device, parameter.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            reconstructions = model(images).clamp(0, 1)
    finally:
        model.train(was_training)
    grid = make_grid(torch.cat([images.clamp(0, 1), reconstructions]).float().cpu(), nrow=len(images), padding=2)
    save_image(grid, path)
    return path


def log_image_to_wandb(loggers, key: str, path) -> None:
    """The image at ``path`` to every W&B logger among ``loggers`` (one logger, a list, or None); else nothing."""
    try:
        from pytorch_lightning.loggers import WandbLogger
    except ImportError:  # pragma: no cover
        return
    if loggers is None:
        return
    for logger in loggers if isinstance(loggers, (list, tuple)) else [loggers]:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)])
