"""Which parameters a phase trains, through Lightning's finetuning machinery (``BaseFinetuning``).

A phase trains ``all`` parameters, only the ``head`` (the backbone frozen: twice transfer's first phase, section
6.2 "freezing all the network parameters except for the output layer's"), or the modules under named prefixes.
Frozen modules get ``requires_grad = False`` and their batch-norm layers stop updating their running statistics
(Lightning's ``freeze(train_bn=False)``), so neither their parameters nor their buffers change; the optimiser is
built after the freeze and holds only the trainable parameters (``ClassificationTask.trainable_parameters``).
"""

from __future__ import annotations

from pytorch_lightning.callbacks import BaseFinetuning
from torch import nn


class PhaseParameters(BaseFinetuning):
    """Freeze everything a phase does not train, before its optimiser is built (a phase is one ``Trainer.fit``)."""

    def __init__(self, train: str | list[str]):
        super().__init__()
        self.train = train

    def freeze_before_training(self, pl_module) -> None:
        model = pl_module.model
        self.make_trainable(model)  # undo the previous phase's freeze
        frozen = frozen_modules(model, self.train)
        if frozen:
            self.freeze(frozen, train_bn=False)

    def finetune_function(self, pl_module, epoch: int, optimizer) -> None:
        """Nothing changes within a phase; gradual unfreezing is a schedule of its own."""


def frozen_modules(model: nn.Module, train: str | list[str]) -> list[nn.Module]:
    """The leaf modules a phase freezes: none for ``all``; the backbone for ``head``; else every module holding
    parameters outside the named prefixes (an unknown prefix is a ValueError listing the model's top modules)."""
    if train == "all":
        return []
    prefixes = ["head"] if train == "head" else list(train)
    check_prefixes(model, prefixes)
    trained = lambda name: any(name == p or name.startswith(p + ".") for p in prefixes)  # noqa: E731
    return [module for name, module in model.named_modules()
            if any(True for _ in module.parameters(recurse=False)) and not trained(name)]


def check_prefixes(model: nn.Module, prefixes, *, what: str = "phase train") -> None:
    """A ValueError, listing the model's top modules, for a dotted prefix that names none of its parameters."""
    names = [name for name, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(name == prefix or name.startswith(prefix + ".") for name in names):
            top = sorted({name.split(".")[0] for name in names})
            raise ValueError(f"{what}: {prefix!r} names no parameters of the model (its modules: {', '.join(top)}; "
                             "use dotted prefixes such as backbone.features.denseblock4)")


def trainable_count(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad), sum(p.numel() for p in model.parameters())
