import pytest
import torch

from lightning_modules.backbones.covidnet import PEPX, COVIDNetClassifier, COVIDNetEncoder


def test_pepx_channel_plan_follows_eq4():
    module = PEPX(64, 128)
    convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(64, 32), (32, 48), (48, 48), (48, 32), (32, 128)]
    assert convs[2].groups == 48 and convs[2].kernel_size == (3, 3)  # depth-wise 3x3
    assert module(torch.randn(2, 64, 9, 9)).shape == (2, 128, 9, 9)


def test_every_activation_is_relu_and_there_is_no_batchnorm():
    model = COVIDNetClassifier(3, nf=8, fc_units=16, image_size=64)
    kinds = {type(m).__name__ for m in model.modules()}
    assert "BatchNorm2d" not in kinds
    assert kinds & {"GELU", "SiLU", "LeakyReLU", "Sigmoid", "Tanh"} == set()


@pytest.mark.parametrize("size", [64, 96])
def test_encoder_and_classifier_shapes(size):
    encoder = COVIDNetEncoder(nf=8, fc_units=32, image_size=size)
    features = encoder.forward_features(torch.randn(2, 1, size, size))
    assert features.shape == (2, 64, size // 32, size // 32)  # 8 * nf channels after four stages
    assert encoder(torch.randn(2, 1, size, size)).shape == (2, 256)
    assert COVIDNetClassifier(3, nf=8, fc_units=32, image_size=size)(torch.randn(2, 1, size, size)).shape == (2, 3)


def test_paper_width_has_the_authors_parameter_count():
    model = COVIDNetClassifier(3, nf=128, fc_units=1024, image_size=224)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(59.6e6, rel=0.005)


def test_image_size_must_be_a_multiple_of_32():
    with pytest.raises(ValueError, match="multiple of 32"):
        COVIDNetEncoder(image_size=100)


def test_dropout_rates_of_the_dense_layers():
    encoder = COVIDNetEncoder(nf=8, fc_units=16, image_size=64)
    assert [m.p for m in encoder.head if isinstance(m, torch.nn.Dropout)] == [0.5, 0.2, 0.2]
