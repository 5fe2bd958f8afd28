"""Classification heads that turn a backbone's feature map into class logits (softmax is in the loss).

``FCNHead`` is the weighted-CE authors' head (section VI.B describes "a fully connected network ... softmax of 2
neurons"; its layers follow their code): 1x1 conv to one map + sigmoid, flatten, Dense(128), dropout 0.2, batch
norm, ReLU, Dense(16), dropout 0.2, batch norm, ReLU, Dense(classes). ``LinearHead`` is global average pooling
and one linear layer, the usual ImageNet-style head.
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules.registries import HEADS


class FCNHead(nn.Module):
    def __init__(self, in_channels: int, spatial: tuple[int, int], num_classes: int, hidden: tuple[int, ...] = (128, 16), dropout: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, 1, 1), nn.Sigmoid(), nn.Flatten()]
        width = spatial[0] * spatial[1]
        for units in hidden:
            layers += [nn.Linear(width, units), nn.Dropout(dropout), nn.BatchNorm1d(units), nn.ReLU(inplace=True)]
            width = units
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)
        for layer in self.layers:  # Keras defaults, as the authors trained with: Glorot-uniform, zero bias
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


class LinearHead(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.layers = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(in_channels, num_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


@HEADS.register("fcn")
def _fcn(*, in_channels: int, spatial: tuple[int, int], num_classes: int, hidden=(128, 16), dropout: float = 0.2) -> nn.Module:
    return FCNHead(in_channels, spatial, num_classes, hidden=tuple(hidden), dropout=dropout)


@HEADS.register("linear")
def _linear(*, in_channels: int, spatial: tuple[int, int], num_classes: int, dropout: float = 0.0) -> nn.Module:
    return LinearHead(in_channels, num_classes, dropout=dropout)


def build_head(kind: str, *, in_channels: int, spatial: tuple[int, int], num_classes: int, **options) -> nn.Module:
    """Head ``kind`` (``fcn``: the weighted-CE authors'; ``linear``) over a feature map of ``in_channels`` x ``spatial``."""
    return HEADS[kind](in_channels=in_channels, spatial=spatial, num_classes=num_classes, **options)
