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
