"""Any timm architecture by name (resnet50, densenet121, densenet201, ...) as a feature-map backbone.

Never downloads: models are built with ``pretrained=False``; pretrained weights come only from a local file
(``load_weights``): a plain state dict, a Lightning checkpoint or ``{"model": ...}``, timm or torchvision key
names (ResNet and DenseNet share them). Chest X-rays here are 1-channel: the model is built with ``in_chans=1``
(timm creates a 1-channel stem), and a 3-channel stem in a weights file is folded to 1 channel by summing its RGB
filters (``timm.models.adapt_input_conv``, timm's own rule for ``in_chans=1``), so a gray image gives the
response an RGB copy of it would.
"""

from __future__ import annotations

import logging
from pathlib import Path

import timm
import torch
from timm.models import adapt_input_conv
from torch import nn

log = logging.getLogger(__name__)

PREFIXES = ("module.", "model.", "backbone.")  # DDP, Lightning task, our classifier wrapper


def create_backbone(name: str, *, in_chans: int = 1, weights_file: str | Path | None = None, **kwargs) -> nn.Module:
    """timm model ``name`` without its classifier and pooling: ``forward_features`` gives (B, C, h, w), and
    ``num_features`` is C."""
    model = timm.create_model(name, pretrained=False, in_chans=in_chans, num_classes=0, global_pool="", **kwargs)
    if weights_file:
        load_weights(model, weights_file)
    return model


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"weights file {file} does not exist (pretrained weights are only read from local files)")
    state = torch.load(file, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{file}: not a state dict (found {type(state).__name__})")
    return state


def load_weights(model: nn.Module, source: str | Path | dict) -> str:
    """Load matching tensors into ``model`` (or into ``model.backbone`` when the file holds a bare backbone);
    returns a one-line summary for the result file.

    Known prefixes are stripped until the keys match the model's; a 3-channel stem is adapted to the model's
    input channels; tensors whose shape still differs (another task's classifier) are left out and counted.
    """
    state = read_state_dict(source) if not isinstance(source, dict) else source
    if isinstance(getattr(model, "backbone", None), nn.Module):  # a bare backbone file into a classifier
        whole, part = _strip_prefixes(state, model.state_dict()), _strip_prefixes(state, model.backbone.state_dict())
        if len(set(part) & set(model.backbone.state_dict())) > len(set(whole) & set(model.state_dict())):
            model = model.backbone
    target = model.state_dict()
    state = _strip_prefixes(state, target)
    loadable, skipped = {}, []
    for key, tensor in state.items():
        if key not in target:
            continue
        want = target[key]
        if tensor.shape != want.shape and tensor.ndim == 4 and tensor.shape[0] == want.shape[0] and tensor.shape[2:] == want.shape[2:]:
            tensor = adapt_input_conv(want.shape[1], tensor)
        if tensor.shape != want.shape:
            skipped.append(key)
            continue
        loadable[key] = tensor
    if not loadable:
        raise ValueError(f"{source}: no tensor of the weights file matches the model ({type(model).__name__})")
    result = model.load_state_dict(loadable, strict=False)
    missing, unexpected = len(result.missing_keys), len(set(state) - set(target))
    name = Path(source).name if not isinstance(source, dict) else "state dict"
    log.info("loaded %s: %d tensors (missing %d, unexpected %d, shape-mismatched %d)", name, len(loadable), missing, unexpected, len(skipped))
    return f"{name} (missing {missing}, unexpected {unexpected}, shape-mismatched {len(skipped)} keys)"


def _strip_prefixes(state: dict, target: dict) -> dict:
    def overlap(candidate: dict) -> int:
        return len(set(candidate) & set(target))

    while True:
        best = state
        for prefix in PREFIXES:
            stripped = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}
            if overlap(stripped) > overlap(best):
                best = stripped
        if best is state:
            return state
        state = best
