"""Gradual unfreezing (ULMFiT, Howard & Ruder; the CAE paper's section 3.2 reference [2]): a phase starts with
only some modules trained (``train``, as ``PhaseParameters``) and unfreezes more at scheduled epochs, each step's
parameters joining the optimiser as a new param group with its own learning rate."""

from __future__ import annotations

from lightning_modules.phases import PhaseParameters, check_prefixes


class GradualUnfreezing(PhaseParameters):
    """A Lightning callback: ``schedule`` is ``[{"epoch": n >= 1, "modules": "all" | [dotted prefixes of
    pl_module.model], "lr": float | None}]``; at the start of the phase's epoch ``n`` (after ``n`` epochs trained)
    those frozen modules train, in a new param group at ``lr`` (default: the first group's current lr, not
    Lightning's lr / 10). ``history`` lists what each step unfroze, for the result file."""

    def __init__(self, train: str | list[str] = "head", schedule=()):
        super().__init__(train)
        self.schedule = [_step(step) for step in schedule]
        self.history: list[dict] = []

    def freeze_before_training(self, pl_module) -> None:
        super().freeze_before_training(pl_module)
        for step in self.schedule:
            if step["modules"] != "all":
                check_prefixes(pl_module.model, step["modules"], what="gradual unfreezing")

    def finetune_function(self, pl_module, epoch: int, optimizer) -> None:
        """Unfreeze this epoch's steps; a parameter already trainable or already in the optimiser is skipped."""
        for step in self.schedule:
            if step["epoch"] != epoch:
                continue
            prefixes = None if step["modules"] == "all" else step["modules"]
            under = lambda name: prefixes is None or any(name == p or name.startswith(p + ".") for p in prefixes)  # noqa: E731
            modules = [m for name, m in pl_module.model.named_modules() if under(name) and any(True for _ in m.parameters(recurse=False))]
            # Identity, not BaseFinetuning.filter_on_optimizer's torch.equal: equal values (say, two zero-initialised
            # biases) are not the same parameter.
            held = {id(p) for group in optimizer.param_groups for p in group["params"]}
            params = [p for m in modules for p in m.parameters(recurse=False) if not p.requires_grad and id(p) not in held]
            self.make_trainable(modules)  # train_bn=True: batch norm layers under the prefixes train as well
            lr = optimizer.param_groups[0]["lr"] if step["lr"] is None else float(step["lr"])
            if params:
                optimizer.add_param_group({"params": params, "lr": lr})
            self.history.append({"epoch": epoch, "modules": step["modules"], "parameters": sum(p.numel() for p in params), "lr": lr})

    def on_fit_start(self, trainer, pl_module) -> None:
        """On resume, Lightning restores the added param groups; their parameters must train again too."""
        restarting = self._restarting
        super().on_fit_start(trainer, pl_module)
        if restarting:
            for optimizer in trainer.optimizers:
                for group in optimizer.param_groups:
                    for p in group["params"]:
                        p.requires_grad_(True)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "history": self.history}

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        self.history = list(state_dict.pop("history", []))
        super().load_state_dict(state_dict)


def _step(step: dict) -> dict:
    """One schedule entry, checked: epoch >= 1, modules "all" or a list of prefixes, lr a float or None."""
    unknown = set(step) - {"epoch", "modules", "lr"}
    epoch, modules, lr = step.get("epoch"), step.get("modules", "all"), step.get("lr")
    if unknown or not isinstance(epoch, int) or epoch < 1:
        raise ValueError(f"gradual unfreezing step {step!r}: keys epoch (an int >= 1), modules, lr")
    if isinstance(modules, str) and modules != "all":
        modules = [modules]
    if modules != "all" and (not modules or not all(isinstance(m, str) for m in modules)):
        raise ValueError(f"gradual unfreezing step {step!r}: modules is 'all' or a list of dotted prefixes")
    return {"epoch": epoch, "modules": modules if modules == "all" else list(modules), "lr": None if lr is None else float(lr)}


def top_down_schedule(prefixes, *, start_epoch: int, every: int = 1, lr: float | None = None) -> list[dict]:
    """One unfreezing step per ``every`` epochs from ``start_epoch``, prefixes in the given order (top first, e.g.
    ``[f"backbone.{n}" for n in CAEEncoder.top_down]``)."""
    if start_epoch < 1 or every < 1:
        raise ValueError(f"top_down_schedule: start_epoch and every are >= 1, got {start_epoch}, {every}")
    return [{"epoch": start_epoch + i * every, "modules": [prefix], "lr": lr} for i, prefix in enumerate(prefixes)]
