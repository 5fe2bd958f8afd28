"""Start weights from a local file (never downloaded): read a state dict, match it to a model, load it.

A file is a plain state dict, a Lightning checkpoint (``state_dict``) or ``{"model": ...}``, read with
``torch.load(weights_only=True)``, or a ``.safetensors`` file. Matching strips the DDP, Lightning and classifier prefixes (``module.``,
``model.``, ``backbone.``) until the keys fit; a bare backbone file goes into ``model.backbone`` when that fits
better; a 3-channel stem is folded to the model's input channels (``timm.models.adapt_input_conv``: summed RGB
filters for 1 channel); a tensor whose shape still differs (another task's head) is left out and counted.

Strict rule (the default): the file must supply at least half of the target's tensors (``MIN_LOADED``), the target
being the model or, for a bare backbone file, its backbone. Every supported case loads nearly all of them (a
whole classifier of another task only misses its head, a backbone file none of the backbone's, a single-net
file into the siamese net only the similarity weights), while a file of another architecture matches few or none
(a ResNet-18 into the COVID-Net: 0 of 176). ``strict: false`` loads whatever matches and logs the counts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from timm.models import adapt_input_conv
from torch import nn

log = logging.getLogger(__name__)

PREFIXES = ("module.", "model.", "backbone.")  # DDP, Lightning task, our classifier wrapper
MIN_LOADED = 0.5  # strict: the least fraction of the target's tensors the file must supply
SHOWN = 5  # mismatched keys named per kind in an error


class StartWeightsError(ValueError):
    """Start weights that cannot be used; the message names the file and the problem (the CLI prints it, exit 2)."""


class StartWeightsNotFound(StartWeightsError, FileNotFoundError):
    """The start weights file does not exist (also a FileNotFoundError, for callers that catch that)."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a local state dict or checkpoint file; StartWeightsError when it is not one."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise StartWeightsNotFound(f"{file}: start weights file not found (pretrained weights are only read from local files)")
    try:
        state = load_file(file) if file.suffix == ".safetensors" else torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises anything from KeyError to RuntimeError on a foreign file
        raise StartWeightsError(f"{file}: not a PyTorch state dict or checkpoint ({_unreadable(file, error)})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    tensors = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, torch.Tensor)} if isinstance(state, Mapping) else {}
    if not tensors:
        raise StartWeightsError(f"{file}: not a PyTorch state dict or checkpoint (it holds a {type(state).__name__} without named tensors)")
    return tensors


def _unreadable(file: Path, error: Exception) -> str:
    """A short reason why torch.load refused ``file``."""
    with open(file, "rb") as handle:
        head = handle.read(256)
    if not head:
        return "empty file"
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch files are zip archives, or pickles (legacy format)
        try:
            head.decode("utf-8")
            return "a text file"
        except UnicodeDecodeError:
            return f"unknown format, starts with {head[:8]!r}"
    message = str(error)
    if "WeightsUnpickler error: " in message:
        return "holds objects that safe loading refuses: " + message.split("WeightsUnpickler error: ")[1].split(". ")[0]
    return f"truncated or corrupt: {type(error).__name__}: {message.split('. ')[0][:200]}"


@dataclass
class Match:
    """How a state dict fits a module: what loads, and what does not, by kind."""

    module: nn.Module
    loadable: dict[str, torch.Tensor] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # the module's tensors the file does not have
    unexpected: list[str] = field(default_factory=list)  # the file's tensors the module does not have
    mismatched: list[str] = field(default_factory=list)  # "key: file (..) vs model (..)"

    @property
    def total(self) -> int:
        return len(self.module.state_dict())


def match(model: nn.Module, state: Mapping[str, torch.Tensor]) -> Match:
    """Fit ``state`` to ``model`` or, when it holds a bare backbone, to ``model.backbone`` (see the module doc)."""
    if isinstance(getattr(model, "backbone", None), nn.Module):
        whole, part = _strip_prefixes(state, model.state_dict()), _strip_prefixes(state, model.backbone.state_dict())
        if len(set(part) & set(model.backbone.state_dict())) > len(set(whole) & set(model.state_dict())):
            model = model.backbone
    target = model.state_dict()
    state = _strip_prefixes(state, target)
    result = Match(model, unexpected=[k for k in state if k not in target])
    for key, want in target.items():
        tensor = state.get(key)
        if tensor is None:
            result.missing.append(key)
            continue
        if _rgb_stem_for(tensor, want):
            tensor = adapt_input_conv(want.shape[1], tensor)  # folded to the model's input channels
        if tensor.shape != want.shape:
            result.mismatched.append(f"{key}: file {tuple(tensor.shape)} vs model {tuple(want.shape)}")
        else:
            result.loadable[key] = tensor
    return result


def _rgb_stem_for(tensor: torch.Tensor, want: torch.Tensor) -> bool:
    """``tensor`` is a 3-channel convolution that differs from ``want`` only in its input channels."""
    return tensor.ndim == 4 and want.ndim == 4 and tensor.shape[1] == 3 and want.shape[1] != 3 and \
        tensor.shape[0] == want.shape[0] and tensor.shape[2:] == want.shape[2:]


def load_weights(model: nn.Module, source: str | Path | Mapping, *, strict: bool = True) -> str:
    """Load a weights file (or an in-memory state dict) into ``model``; returns a one-line summary for the result file.

    ``strict`` refuses, with a StartWeightsError naming the file and the first mismatched keys, a file that supplies
    fewer than ``MIN_LOADED`` of the target's tensors; otherwise whatever matches is loaded and the rest counted.
    """
    state = source if isinstance(source, Mapping) else read_state_dict(source)
    name = "state dict" if isinstance(source, Mapping) else Path(source).expanduser()
    fit = match(model, state)
    what = "backbone tensors" if fit.module is not model else "tensors"
    loaded = f"{len(fit.loadable)} of {fit.total} {what}"
    if strict and len(fit.loadable) < MIN_LOADED * fit.total:
        raise StartWeightsError(
            f"{name}: does not fit the model ({type(fit.module).__name__}): only {loaded} would load, strict start weights need "
            f"at least {MIN_LOADED:.0%}; missing in the file: {_first(fit.missing)}; unexpected in the file: {_first(fit.unexpected)}; "
            f"shape mismatches: {_first(fit.mismatched)}. Use `start_weights: {{file: ..., strict: false}}` to load what matches")
    fit.module.load_state_dict(fit.loadable, strict=False)
    counts = f"missing {len(fit.missing)}, unexpected {len(fit.unexpected)}, shape-mismatched {len(fit.mismatched)}"
    level = logging.WARNING if len(fit.loadable) < MIN_LOADED * fit.total else logging.INFO
    log.log(level, "start weights %s: loaded %s (%s)", name, loaded, counts)
    label = name if isinstance(name, str) else name.name
    return f"{label} ({'strict' if strict else 'strict: false'}; loaded {loaded}; {counts})"


def load_start_weights(model: nn.Module, spec: str | Path | Mapping | None) -> str:
    """A method's ``start_weights`` (``PATH``, or ``{file: PATH, strict: bool}``; strict by default) into ``model``."""
    if hasattr(spec, "model_dump"):  # the typed config section, should it arrive unconverted
        spec = spec.model_dump()
    if not spec:
        return "random init"
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"file", "strict"}
        if unknown or not spec.get("file") or not isinstance(spec.get("strict", True), bool):
            raise StartWeightsError(f"start_weights must be a file or {{file: PATH, strict: true|false}}, not {dict(spec)!r}")
        return load_weights(model, spec["file"], strict=spec.get("strict", True))
    return load_weights(model, spec)


def _first(items: list[str]) -> str:
    """The first few of ``items`` and how many more, for an error message."""
    if not items:
        return "none"
    more = f" (+{len(items) - SHOWN} more)" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


def _strip_prefixes(state: Mapping, target: Mapping) -> dict:
    """``state`` with known prefixes removed for as long as that makes more of its keys match ``target``'s."""
    def overlap(candidate: Mapping) -> int:
        return len(set(candidate) & set(target))

    state = dict(state)
    while True:
        best = state
        for prefix in PREFIXES:
            stripped = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}
            if overlap(stripped) > overlap(best):
                best = stripped
        if best is state:
            return state
        state = best
