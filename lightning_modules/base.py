"""The base classification task every method builds on (torchgeo's BaseTask shape).

A method overrides ``configure_models`` (and, where it differs, ``configure_losses`` or the steps); metrics,
optimiser, scheduler, start weights and test-set predictions are shared, so every method is measured alike.
"""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from lightning_modules.losses import build_loss
from lightning_modules.metrics import classification_metrics
from lightning_modules.optim import PhasedOptimization
from lightning_modules.weights import load_start_weights

log = logging.getLogger(__name__)


class ClassificationTask(PhasedOptimization, pl.LightningModule):
    """Images in, class scores out; metrics for train/val/test from ``lightning_modules.metrics``."""

    name = "base"

    def __init__(
        self,
        *,
        class_names: list[str],
        multilabel: bool = False,
        image_size: int = 224,
        in_chans: int = 1,
        model: dict | None = None,
        loss: dict | None = None,
        optimizer: dict | None = None,
        scheduler: dict | None = None,
        start_weights: str | dict | None = None,
        head_activation: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.class_names = list(class_names)
        self.num_classes = len(class_names)
        self.multilabel = multilabel
        # softmax, or sigmoid outputs (one per class): multi-label tasks, and single-label ones trained with BCE on
        # one-hot targets (twice transfer, section 6.2: "three neurons and sigmoid activation")
        self.head_activation = head_activation or ("sigmoid" if multilabel else "softmax")
        if self.head_activation not in ("softmax", "sigmoid") or (multilabel and self.head_activation != "sigmoid"):
            raise ValueError(f"head_activation {head_activation!r}: softmax or sigmoid (sigmoid for a multi-label task)")
        self.configure_models()
        self.configure_losses()
        self.configure_metrics()
        self.start_weights = self.load_start_weights(start_weights)
        self.test_predictions: dict[str, torch.Tensor] | None = None
        self.predictions_path: str | None = None  # where rank 0 saves the gathered test predictions (set by the runner)

    # ----- the parts a method defines -----
    def configure_models(self) -> None:
        raise NotImplementedError

    def configure_losses(self) -> None:
        loss = self.hparams.loss or ({"name": "bce"} if self.head_activation == "sigmoid" else None)
        self.criterion = build_loss(loss, num_classes=self.num_classes, multilabel=self.multilabel, class_names=self.class_names)

    def configure_metrics(self) -> None:
        make = lambda stage: classification_metrics(self.class_names, multilabel=self.multilabel, prefix=f"{stage}/")
        self.train_metrics, self.val_metrics, self.test_metrics = make("train"), make("val"), make("test")

    # ----- start weights -----
    def load_start_weights(self, spec: str | dict | None) -> str:
        """``start_weights`` (a local file, or ``{file, strict}``) into ``self.model``; never downloads. Returns how
        the run started; a file that is no state dict or does not fit the model is a StartWeightsError."""
        return load_start_weights(self.model, spec)

    # ----- steps -----
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """Class scores: softmax; sigmoid for multi-label; a single-label sigmoid head's outputs divided by their sum
        (same arg-max, and scores that sum to one like every other method's, for AUROC and calibration alike)."""
        if self.multilabel:
            return torch.sigmoid(logits)
        if self.head_activation == "sigmoid":
            probabilities = torch.sigmoid(logits)
            return probabilities / probabilities.sum(dim=1, keepdim=True).clamp(min=1e-12)
        return torch.softmax(logits, dim=1)

    def _step(self, batch: dict[str, Any], stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch["image"])
        loss = self.criterion(logits, batch["label"])
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=stage != "test", batch_size=len(logits), sync_dist=stage != "train")
        scores = self.scores(logits.detach())
        target = batch["label"].long() if self.multilabel else batch["label"]
        getattr(self, f"{stage}_metrics").update(scores, target)
        return loss, scores

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")[0]

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        _, scores = self._step(batch, "test")
        self._test_outputs.append((batch["index"], scores, batch["label"]))

    def _log_epoch_metrics(self, stage: str) -> None:
        metrics = getattr(self, f"{stage}_metrics")
        self.log_dict({k: v.float() for k, v in metrics.compute().items()}, prog_bar=False)
        metrics.reset()

    def on_train_epoch_end(self) -> None:
        self._log_epoch_metrics("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")

    def on_test_epoch_start(self) -> None:
        self._test_outputs = []

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics("test")
        index, scores, labels = (torch.cat([o[i] for o in self._test_outputs]) for i in range(3))
        gathered = [self.all_gather(t) for t in (index, scores, labels)]
        if self.trainer.world_size > 1:  # (world, n, ...) -> (world * n, ...); the sampler may repeat items
            gathered = [t.flatten(0, 1) for t in gathered]
        self.test_predictions = {"index": gathered[0].cpu(), "scores": gathered[1].cpu(), "labels": gathered[2].cpu()}
        if self.predictions_path is not None and self.trainer.is_global_zero:
            # A file, not only an attribute: with spawn-based strategies rank 0 is not the process that asked.
            torch.save(self.test_predictions, self.predictions_path)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
