"""Any timm architecture by name (resnet50, densenet121, densenet201, ...) as a feature-map backbone.

Never downloads: models are built with ``pretrained=False``; pretrained weights come only from a local file
(``load_weights``, from ``lightning_modules.weights``): a plain state dict, a Lightning checkpoint or
``{"model": ...}``, timm or torchvision key names (ResNet and DenseNet share them). Chest X-rays here are
1-channel: the model is built with ``in_chans=1`` (timm creates a 1-channel stem), and a 3-channel stem in a
weights file is folded to 1 channel by summing its RGB filters (``timm.models.adapt_input_conv``, timm's own rule
for ``in_chans=1``), so a gray image gives the response an RGB copy of it would.
"""

from __future__ import annotations

from pathlib import Path

import timm
from torch import nn

from lightning_modules.registries import BACKBONES
from lightning_modules.weights import PREFIXES, load_weights, read_state_dict  # noqa: F401 (public names kept here)


def create_backbone(name: str, *, in_chans: int = 1, weights_file: str | Path | None = None, **kwargs) -> nn.Module:
    """timm model ``name`` without its classifier and pooling: ``forward_features`` gives (B, C, h, w), and
    ``num_features`` is C."""
    model = timm.create_model(name, pretrained=False, in_chans=in_chans, num_classes=0, global_pool="", **kwargs)
    if weights_file:
        load_weights(model, weights_file)
    return model


@BACKBONES.register_fallback
def timm_backbone(name: str, *, in_chans: int = 1, **options) -> tuple[nn.Module, int]:
    """(timm model ``name``, its feature channels): every backbone name not registered otherwise."""
    backbone = create_backbone(name, in_chans=in_chans, **options)
    return backbone, backbone.num_features
