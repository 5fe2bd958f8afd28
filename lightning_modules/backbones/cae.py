"""The convolutional autoencoder and LSTM head of Mahalingam & Pandraju ("Unsupervised convolutional filter
learning for COVID-19 classification", section 3, Tables 1-4).

``CAEEncoder`` (Table 1) is pretrained with ``CAEDecoder`` (Table 2) as ``ConvAutoencoder`` on reconstruction
(``lightning_modules.autoencoder``), then carried as ``backbone.*`` into the classifier with ``SequenceHead``
(Table 3): the 7x7x512 map read as a 49-step sequence by a Keras-style LSTM, flattened, Dense(64), Dense(classes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.registries import BACKBONES, HEADS

ENCODER_WIDTHS = (64, 64, 128, 256, 512, 512)  # Table 1
POOLED = ("conv2", "conv3", "conv4", "conv5", "conv6")  # a 2x2 max-pool follows each (Table 1)
DECODER_WIDTHS = (512, 512, 256, 128, 64)  # Table 2: input, then deconv1..deconv4 outputs; deconv5 -> image

# Table 4's classification heads. The paper names only the layer counts: "Dense" counts include the output layer;
# the hidden widths other than the proposed Dense(64) (Table 3) are this project's choice.
TABLE4_HEADS = {
    "1 LSTM + 2 Dense": {"lstm_layers": 1, "dense": [64]},  # proposed (Table 3)
    "3 LSTM + 2 Dense": {"lstm_layers": 3, "dense": [64]},
    "1 LSTM + 3 Dense": {"lstm_layers": 1, "dense": [64, 32]},
    "5 Dense": {"lstm_layers": 0, "dense": [256, 128, 64, 32]},
}


def keras_init(module: nn.Module) -> None:
    """Keras's defaults, as the authors trained with: Glorot-uniform kernels, zero biases (PyTorch's default init
    leaves this deep ReLU stack with a near-constant output that barely trains)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


class CAEEncoder(nn.Module):
    """Table 1: six 3x3 conv + ReLU layers (64, 64, 128, 256, 512, 512), 2x2 max-pool after conv2..conv6;
    (B, 3, 224, 224) -> (B, 512, 7, 7), 3,947,712 parameters."""

    top_down = ("conv6", "conv5", "conv4", "conv3", "conv2", "conv1")  # layer names, top first (gradual unfreezing)

    def __init__(self, in_chans: int = 3):
        super().__init__()
        widths = (in_chans, *ENCODER_WIDTHS)
        for i in range(len(ENCODER_WIDTHS)):
            setattr(self, f"conv{i + 1}", nn.Conv2d(widths[i], widths[i + 1], 3, padding=1))
        self.pool = nn.MaxPool2d(2)
        self.out_channels = ENCODER_WIDTHS[-1]
        keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(len(ENCODER_WIDTHS)):
            name = f"conv{i + 1}"
            x = F.relu(getattr(self, name)(x))
            if name in POOLED:
                x = self.pool(x)
        return x


class CAEDecoder(nn.Module):
    """Table 2: five 3x3 stride-2 transposed convs (512, 256, 128, 64, out_chans), each doubling the size;
    (B, 512, 7, 7) -> (B, 3, 224, 224), 3,910,275 parameters. ReLU after each, as section 3.1 says; the last
    layer's activation may be ``sigmoid`` instead (outputs in (0, 1), like the [0, 1] inputs)."""

    def __init__(self, out_chans: int = 3, output_activation: str = "relu"):
        super().__init__()
        if output_activation not in ("relu", "sigmoid"):
            raise ValueError(f"output_activation {output_activation!r}: relu or sigmoid")
        widths = (*DECODER_WIDTHS, out_chans)
        self.layers = len(widths) - 1
        for i in range(self.layers):
            setattr(self, f"deconv{i + 1}", nn.ConvTranspose2d(widths[i], widths[i + 1], 3, stride=2, padding=1, output_padding=1))
        self.output_activation = output_activation
        keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.layers):
            x = getattr(self, f"deconv{i + 1}")(x)
            last = i == self.layers - 1
            x = torch.sigmoid(x) if last and self.output_activation == "sigmoid" else F.relu(x)
        return x


class ConvAutoencoder(nn.Module):
    """Section 3.1, eq. (3): y = D(E(x)). The encoder is ``backbone`` so its weights load as the classifier's."""

    def __init__(self, in_chans: int = 3, output_activation: str = "relu"):
        super().__init__()
        self.backbone = CAEEncoder(in_chans)
        self.decoder = CAEDecoder(in_chans, output_activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.backbone(x))


class KerasLSTM(nn.Module):
    """An LSTM with one bias vector, as Keras's (Table 3: 2,099,200 parameters at 512 -> 512; nn.LSTM's two bias
    vectors would add 2,048). Written as a bias-free nn.LSTM fed the input plus a constant-1 feature, whose weight
    column is the bias; returns the whole sequence (B, T, hidden) like ``return_sequences=True``."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.lstm = nn.LSTM(input_size + 1, hidden_size, bias=False, batch_first=True)
        with torch.no_grad():  # Keras defaults: Glorot-uniform kernel, orthogonal recurrent kernel, zero bias with
            kernel = torch.empty(4 * hidden_size, input_size)  # unit_forget_bias (gate order i, f, g, o)
            nn.init.xavier_uniform_(kernel)
            self.lstm.weight_ih_l0[:, :input_size] = kernel
            self.lstm.weight_ih_l0[:, input_size] = 0.0
            self.lstm.weight_ih_l0[hidden_size:2 * hidden_size, input_size] = 1.0
            for gate in range(4):
                nn.init.orthogonal_(self.lstm.weight_hh_l0[gate * hidden_size:(gate + 1) * hidden_size])

    @property
    def bias(self) -> torch.Tensor:
        """The one bias vector (4 * hidden, gates i, f, g, o)."""
        return self.lstm.weight_ih_l0[:, self.input_size]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ones = x.new_ones(*x.shape[:-1], 1)
        return self.lstm(torch.cat([x, ones], dim=-1))[0]


class SequenceHead(nn.Module):
    """Tables 3-4: feature map (B, C, H, W) -> sequence (B, H*W, C) in row-major (h, w) order (Keras Reshape of a
    channels-last map) -> ``lstm_layers`` stacked KerasLSTMs (C units, full sequences) -> flatten -> Dense layers of
    widths ``dense`` -> Dense(num_classes). The paper does not name the hidden Dense activation (ReLU by default
    here); ``lstm_layers=0`` is Table 4's all-Dense head. Keras initialisation: Glorot-uniform, zero bias."""

    def __init__(self, in_channels: int, spatial: tuple[int, int], num_classes: int, lstm_layers: int = 1, dense=(64,), dense_activation: str = "relu"):
        super().__init__()
        activations = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "linear": nn.Identity}
        if dense_activation not in activations:
            raise ValueError(f"dense_activation {dense_activation!r}: one of {', '.join(activations)}")
        self.lstms = nn.ModuleList(KerasLSTM(in_channels, in_channels) for _ in range(lstm_layers))
        width = spatial[0] * spatial[1] * in_channels
        layers: list[nn.Module] = [nn.Flatten()]
        for units in dense:
            layers += [nn.Linear(width, units), activations[dense_activation]()]
            width = units
        layers.append(nn.Linear(width, num_classes))  # the output layer: the module's last nn.Linear
        self.dense = nn.Sequential(*layers)
        keras_init(self.dense)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features.flatten(2).transpose(1, 2)  # (B, H*W, C), steps in row-major (h, w) order
        for lstm in self.lstms:
            x = lstm(x)
        return self.dense(x)


@BACKBONES.register("cae_encoder")
def cae_encoder_backbone(*, in_chans: int = 3) -> tuple[nn.Module, int]:
    """(CAEEncoder, 512) for the classifier's ``backbone: cae_encoder`` (Table 1)."""
    encoder = CAEEncoder(in_chans)
    return encoder, encoder.out_channels


@HEADS.register("sequence")
def _sequence(*, in_channels: int, spatial: tuple[int, int], num_classes: int, lstm_layers: int = 1, dense=(64,), dense_activation: str = "relu") -> nn.Module:
    return SequenceHead(in_channels, spatial, num_classes, lstm_layers=lstm_layers, dense=tuple(dense), dense_activation=dense_activation)
