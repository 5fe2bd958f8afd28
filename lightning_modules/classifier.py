"""A backbone and a head trained as an image classifier: the weighted-CE paper's ResNet-50 and ACNN (Özdemir &
Sönmez, sections IV and VI.B), and any timm architecture for later methods.

``model: {backbone: resnet50 | acnn | cae_encoder | <timm name>, head: fcn | linear | sequence, backbone_options: {...},
head_options: {...}}``. The loss is any of ``lightning_modules.losses`` (``weighted_cross_entropy`` with
``beta`` for the paper's WCE runs). Start weights come from a local file only: a whole classifier, or a bare
backbone (timm/torchvision keys; a 3-channel stem is folded to the 1-channel input).
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules.backbones import timm_models  # noqa: F401 (registers the timm fallback)
from lightning_modules.backbones.acnn import ACNN
from lightning_modules.backbones.cae import CAEEncoder
from lightning_modules.backbones.heads import build_head
from lightning_modules.base import ClassificationTask
from lightning_modules.registries import BACKBONES, METHODS


class BackboneClassifier(nn.Module):
    """backbone (image -> feature map) then head (feature map -> class logits)."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(x) if hasattr(self.backbone, "forward_features") else self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_backbone(name: str, *, in_chans: int, **options) -> tuple[nn.Module, int]:
    """(backbone, feature channels) for a registered backbone (``acnn``) or any timm model name."""
    return BACKBONES[name](in_chans=in_chans, **options)


@METHODS.register()
class ImageClassifier(ClassificationTask):
    name = "classifier"

    def configure_models(self) -> None:
        options = dict(self.hparams.model or {})
        backbone, channels = build_backbone(options.get("backbone", "resnet50"), in_chans=self.hparams.in_chans, **dict(options.get("backbone_options") or {}))
        size = self.hparams.image_size
        with torch.no_grad():  # the head's input size (the FCN head flattens the whole map)
            backbone.eval()
            probe = BackboneClassifier(backbone, nn.Identity()).features(torch.zeros(1, self.hparams.in_chans, size, size))
            backbone.train()
        head = build_head(options.get("head", "linear"), in_channels=channels, spatial=tuple(probe.shape[2:]), num_classes=self.num_classes, **dict(options.get("head_options") or {}))
        self.model = BackboneClassifier(backbone, head)

    def gradcam_target_layer(self) -> nn.Module:
        """The backbone's last block: the last atrous block, the CAE encoder's conv6, or timm's last feature stage."""
        backbone = self.model.backbone
        if isinstance(backbone, ACNN):
            return backbone.blocks[-1]
        if isinstance(backbone, CAEEncoder):
            return backbone.conv6
        return backbone.get_submodule(backbone.feature_info[-1]["module"])
