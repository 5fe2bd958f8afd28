"""Methods as LightningModules, found by name (``method: single_net`` in a config) in ``registries.METHODS``."""

from __future__ import annotations

from lightning_modules import classifier, siamese, single_net  # noqa: F401 (they register their methods)
from lightning_modules.base import ClassificationTask
from lightning_modules.registries import METHODS

TASKS = METHODS  # the older name: `name in TASKS`, `TASKS[name]`, `sorted(TASKS)` work as before


def get_task_class(name: str) -> type[ClassificationTask]:
    """The LightningModule of method ``name``; an unknown name is a KeyError listing the known ones."""
    return METHODS[name]


__all__ = ["ClassificationTask", "METHODS", "TASKS", "get_task_class"]
