"""Head transfer between stages: the backbone carried over bit for bit, the head new, and output-neuron keeping.

Output-neuron keeping (Bassi & Attux, section 3.2; networks C and E): ``keep`` maps this stage's classes onto the
source's (``{normal: No Finding, viral_pneumonia: Pneumonia}``); those rows of the output layer's weight and bias
are copied exactly from the source's output layer, the others keep their fresh random initialisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from lightning_modules.weights import StartWeightsError


class TransferError(StartWeightsError):
    """A transfer that cannot be done as configured; the message names the classes or tensors on each side."""


@dataclass
class OutputLayer:
    """A source's output neurons: weight (classes x features), bias (or None) and the class of every row."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    classes: list[str]


def output_layer(head: nn.Module) -> tuple[str, nn.Linear]:
    """(name, layer) of the head's last linear layer: the one whose rows are the class outputs."""
    linears = [(name, module) for name, module in head.named_modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise TransferError(f"the head {type(head).__name__} has no linear output layer to keep neurons of")
    return linears[-1]


def source_output_layer(state: Mapping[str, torch.Tensor], head: nn.Module, classes: list[str]) -> OutputLayer:
    """The output layer of a source model's state dict (``head.*`` keys), found where this model's head has its own."""
    name, _ = output_layer(head)
    key = f"head.{name}" if name else "head"
    if f"{key}.weight" not in state:
        raise TransferError(f"the source has no output layer {key}.weight (its head keys: {', '.join(k for k in state if k.startswith('head.'))})")
    return OutputLayer(state[f"{key}.weight"], state.get(f"{key}.bias"), list(classes))


def carry_backbone(model: nn.Module, state: Mapping[str, torch.Tensor]) -> int:
    """Copy every ``backbone.*`` tensor of ``state`` into ``model.backbone`` exactly; any missing, extra or
    differently shaped tensor is a TransferError naming the first ones. Returns the number of tensors copied."""
    source = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    target = model.backbone.state_dict()
    missing, extra = sorted(set(target) - set(source)), sorted(set(source) - set(target))
    shapes = [f"{k}: {tuple(source[k].shape)} vs {tuple(v.shape)}" for k, v in target.items() if k in source and source[k].shape != v.shape]
    if missing or extra or shapes:
        raise TransferError(f"the source backbone does not fit this one: missing {missing[:5]}, unexpected {extra[:5]}, shapes {shapes[:5]}")
    model.backbone.load_state_dict(source, strict=True)
    return len(source)


def check_kept_classes(keep: Mapping[str, str], classes: list[str], source_classes: list[str], *, where: str = "") -> None:
    """Every class ``keep`` names exists on its side; else a TransferError listing the classes of both sides."""
    unknown = [t for t in keep if t not in classes] + [s for s in keep.values() if s not in source_classes]
    if unknown:
        raise TransferError(f"{where}keep_outputs names unknown classes {unknown}: this stage's classes are {list(classes)}, "
                            f"the source's {list(source_classes)}")


def keep_outputs(model: nn.Module, source: OutputLayer, classes: list[str], keep: Mapping[str, str]) -> list[str]:
    """Copy the source rows named by ``keep`` ({this model's class: source class}) into the model's output layer.
    Returns one line per kept neuron; an unknown class on either side is a TransferError listing both class lists."""
    _, layer = output_layer(model.head)
    check_kept_classes(keep, classes, source.classes)
    if source.weight.shape[1] != layer.weight.shape[1]:
        raise TransferError(f"keep_outputs: source rows have {source.weight.shape[1]} inputs, this output layer {layer.weight.shape[1]}")
    kept = []
    with torch.no_grad():
        for target_class, source_class in keep.items():
            t, s = classes.index(target_class), source.classes.index(source_class)
            layer.weight[t].copy_(source.weight[s])
            if layer.bias is not None:
                layer.bias[t].copy_(source.bias[s] if source.bias is not None else torch.zeros(()))
            kept.append(f"{target_class} <- {source_class}")
    return kept
