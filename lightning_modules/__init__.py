"""Methods as LightningModules, found by name (``method: single_net`` in a config)."""

from __future__ import annotations

from lightning_modules.base import ClassificationTask
from lightning_modules.classifier import ImageClassifier
from lightning_modules.siamese import SiameseCOVIDNet
from lightning_modules.single_net import SingleNetCOVIDNet

TASKS: dict[str, type[ClassificationTask]] = {cls.name: cls for cls in (SingleNetCOVIDNet, SiameseCOVIDNet, ImageClassifier)}


def get_task_class(name: str) -> type[ClassificationTask]:
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(sorted(TASKS))}") from None


__all__ = ["ClassificationTask", "TASKS", "get_task_class"]
