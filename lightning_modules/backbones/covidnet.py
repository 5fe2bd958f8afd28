"""COVID-Net as re-implemented by the siamese paper (Castro Sundin et al., section 3.2, eq. (4), Figure 4).

A 7x7 stride-2 stem, then four stages of 3, 4, 6 and 3 PEPX modules with densely summed skip connections
and a parallel 1x1 "upper-layer" convolution per stage; down-sampling by 2x2 max-pooling; ReLU after every
convolution; no batch normalisation. Flatten -> dropout 0.5 -> FC(fc_units) -> dropout 0.2 -> FC(256) -> dropout
0.2 gives the 256-d feature vector that the single-net classifies and the siamese net compares.

At nf=128, fc_units=1024 and 224 px (the authors' settings) the single-net has about 59.6M parameters.
Weights start as in the authors' Keras code (Glorot-uniform, zero bias): with PyTorch's default or He
initialisation the densely summed stages either die (loss stuck at ln 3) or explode.
"""

from __future__ import annotations

import torch
from torch import nn

STAGE_DEPTHS = (3, 4, 6, 3)
STEM_CHANNELS = 64
EMBEDDING_DIM = 256
TOTAL_STRIDE = 32  # stem /2, then one 2x2 pool per stage


def keras_init(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases, the Keras defaults the authors trained with."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


def _conv1x1(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))


class PEPX(nn.Module):
    """Projection-expansion-projection-extension module with the channel plan of eq. (4):
    nf -> 0.5 nf (project) -> 0.75 nf (expand) -> 3x3 depth-wise -> 0.5 nf (project) -> nf_out (extend).
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        project, expand = in_channels // 2, 3 * in_channels // 4
        self.layers = nn.Sequential(
            _conv1x1(in_channels, project),
            _conv1x1(project, expand),
            nn.Conv2d(expand, expand, 3, padding=1, groups=expand),
            nn.ReLU(inplace=True),
            _conv1x1(expand, project),
            _conv1x1(project, out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class COVIDNetStage(nn.Module):
    """One stage: its first PEPX and the upper-layer 1x1 conv both halve the resolution; every later PEPX
    takes the sum of all earlier outputs of the stage (dense residual connections); the stage returns that sum.
    """

    def __init__(self, in_channels: int, width: int, depth: int):
        super().__init__()
        self.upper = nn.Sequential(_conv1x1(in_channels, width), nn.MaxPool2d(2))
        self.first = nn.Sequential(PEPX(in_channels, width), nn.MaxPool2d(2))
        self.rest = nn.ModuleList(PEPX(width, width) for _ in range(depth - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = self.upper(x) + self.first(x)
        for module in self.rest:
            total = total + module(total)
        return total


class COVIDNetEncoder(nn.Module):
    """Image (B, in_chans, S, S) -> 256-d feature vector; S must be a multiple of 32."""

    def __init__(self, in_chans: int = 1, nf: int = 128, fc_units: int = 1024, image_size: int = 224,
                 dropout: tuple[float, float, float] = (0.5, 0.2, 0.2)):
        super().__init__()
        if image_size % TOTAL_STRIDE:
            raise ValueError(f"COVID-Net needs an image size that is a multiple of {TOTAL_STRIDE}, got {image_size}")
        self.stem = nn.Sequential(nn.Conv2d(in_chans, STEM_CHANNELS, 7, stride=2, padding=3), nn.ReLU(inplace=True))
        stages, channels = [], STEM_CHANNELS
        for i, depth in enumerate(STAGE_DEPTHS):
            width = nf * 2**i
            stages.append(COVIDNetStage(channels, width, depth))
            channels = width
        self.stages = nn.Sequential(*stages)
        side = image_size // TOTAL_STRIDE
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout[0]),
            nn.Linear(channels * side * side, fc_units),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout[1]),
            nn.Linear(fc_units, EMBEDDING_DIM),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout[2]),
        )
        self.out_features = EMBEDDING_DIM
        keras_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last convolutional feature map (the Grad-CAM target layer's output)."""
        return self.stages(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


class COVIDNetClassifier(nn.Module):
    """The single-net: encoder plus a linear layer to class logits (softmax is in the loss, section 3.2)."""

    def __init__(self, num_classes: int = 3, **encoder_kwargs):
        super().__init__()
        self.encoder = COVIDNetEncoder(**encoder_kwargs)
        self.classifier = nn.Linear(self.encoder.out_features, num_classes)
        keras_init(self.classifier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(x))
