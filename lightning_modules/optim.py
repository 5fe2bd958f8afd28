"""Optimisers and learning-rate schedulers by name, as a method's ``optimizer:`` and ``scheduler:`` sections say."""

from __future__ import annotations

import torch

from lightning_modules.registries import OPTIMIZERS, SCHEDULERS

for _name, _cls in {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}.items():
    OPTIMIZERS.add(_name, _cls)


def build_optimizer(parameters, config: dict | None) -> torch.optim.Optimizer:
    """The optimiser ``config`` names (default Adam, lr 1e-4) over ``parameters``."""
    config = dict(config or {"name": "adam", "lr": 1e-4})
    name = config.pop("name", "adam").lower()
    cls = OPTIMIZERS[name]
    if "betas" in config:
        config["betas"] = tuple(config["betas"])
    return cls(parameters, **config)


def build_scheduler(optimizer: torch.optim.Optimizer, config: dict | None, *, max_epochs) -> dict | None:
    """Lightning's ``lr_scheduler`` entry for the scheduler ``config`` names, or None; ``max_epochs()`` is asked only when needed."""
    config = dict(config or {})
    name = config.pop("name", None)
    return None if name is None else SCHEDULERS[name](optimizer, max_epochs=max_epochs, **config)


@SCHEDULERS.register("plateau")
def _plateau(optimizer, *, max_epochs, monitor: str = "val/loss", mode: str = "min", **config) -> dict:
    return {"scheduler": torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, **config), "monitor": monitor}


@SCHEDULERS.register("step")
def _step(optimizer, *, max_epochs, **config) -> dict:
    return {"scheduler": torch.optim.lr_scheduler.StepLR(optimizer, **config)}


@SCHEDULERS.register("cosine")
def _cosine(optimizer, *, max_epochs, t_max: int | None = None, **config) -> dict:
    """Cosine annealing over ``t_max`` epochs (default: the trainer's max_epochs)."""
    return {"scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs() if t_max is None else t_max, **config)}


@SCHEDULERS.register("exponential")
def _exponential(optimizer, *, max_epochs, **config) -> dict:
    return {"scheduler": torch.optim.lr_scheduler.ExponentialLR(optimizer, **config)}


class PhasedOptimization:
    """LightningModule mixin: the optimiser and scheduler its ``hparams`` name (``default_optimizer`` when none),
    over the trainable parameters only, and ``set_phase`` to change them between a chain's ``Trainer.fit`` calls
    (benchmark/chain.py). Shared by the classification task and the autoencoder."""

    default_optimizer: dict | None = None  # None: build_optimizer's default

    def configure_optimizers(self):
        optimizer = build_optimizer(self.trainable_parameters(), self.hparams.optimizer or self.default_optimizer)
        scheduler = build_scheduler(optimizer, self.hparams.scheduler, max_epochs=lambda: self.trainer.max_epochs)
        return optimizer if scheduler is None else {"optimizer": optimizer, "lr_scheduler": scheduler}

    def set_phase(self, *, optimizer: dict | None, scheduler: dict | None) -> None:
        """The optimiser and scheduler of the next ``Trainer.fit`` (a chain's phase)."""
        self.hparams.optimizer, self.hparams.scheduler = optimizer, scheduler

    def trainable_parameters(self):
        return (p for p in self.parameters() if p.requires_grad)
