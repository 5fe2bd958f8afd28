"""Atrous CNN (ACNN) of the weighted-CE paper (Özdemir & Sönmez, section IV.C; after Zhou et al.'s AACNN).

16 atrous blocks (as many as ResNet-50's residual blocks, section VI.B), each two 3x3 atrous convolutions with
dilation rates 1 and 3 (section IV.C). The paper gives no widths; they follow the authors' code: conv 3->9
channels (rate 1), batch norm, ReLU, conv 9->3 (rate 3), batch norm, identity added, no final ReLU, no conv
bias, no down-sampling (full resolution throughout). Filters start from a truncated normal of std 0.5, as there.

The blocks hold about 8k weights; the paper's "about 8M parameters" come from the authors' classification head
(``heads.FCNHead``: a 1x1 conv to one sigmoid map, flattened at full resolution into a 128-unit dense layer),
8.39M at 256 px. The gray input is repeated to the blocks' 3 channels, which is what the authors' model sees
(gray images stored as identical RGB channels).
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules.registries import BACKBONES

DEPTH = 16
WIDTH = 3
EXPANSION = 3
RATES = (1, 3)


class AtrousBlock(nn.Module):
    """x + BN(conv_rate3(ReLU(BN(conv_rate1(x))))), widths width -> expansion * width -> width."""

    def __init__(self, width: int = WIDTH, expansion: int = EXPANSION, rates: tuple[int, int] = RATES):
        super().__init__()
        hidden = width * expansion
        self.layers = nn.Sequential(
            nn.Conv2d(width, hidden, 3, padding=rates[0], dilation=rates[0], bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, width, 3, padding=rates[1], dilation=rates[1], bias=False),
            nn.BatchNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class ACNN(nn.Module):
    """Image (B, in_chans, S, S) -> feature map (B, width, S, S); ``out_channels`` for the head."""

    def __init__(self, in_chans: int = 1, depth: int = DEPTH, width: int = WIDTH, expansion: int = EXPANSION, rates: tuple[int, int] = RATES, init_std: float = 0.5):
        super().__init__()
        if in_chans not in (1, width):
            raise ValueError(f"ACNN takes 1-channel images (repeated to {width}) or {width}-channel ones, got in_chans={in_chans}")
        self.in_chans = in_chans
        self.width = width
        self.blocks = nn.Sequential(*(AtrousBlock(width, expansion, tuple(rates)) for _ in range(depth)))
        self.out_channels = width
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.trunc_normal_(module.weight, std=init_std, a=-2 * init_std, b=2 * init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.width:
            x = x.expand(-1, self.width, -1, -1)
        return self.blocks(x)


@BACKBONES.register("acnn")
def acnn_backbone(*, in_chans: int = 1, **options) -> tuple[nn.Module, int]:
    """(ACNN, its feature channels) for the classifier's ``backbone: acnn``."""
    backbone = ACNN(in_chans=in_chans, **options)
    return backbone, backbone.out_channels
