"""Methods, backbones, heads, losses, optimisers and schedulers are found through one registry each, and the typed
config schema accepts exactly the registered kinds."""

import typing

import pytest

from benchmark import schema
from lightning_modules import TASKS, get_task_class
from lightning_modules.classifier import build_backbone
from lightning_modules.registries import BACKBONES, HEADS, LOSSES, METHODS, OPTIMIZERS, SCHEDULERS
from registry import RegistryError


def _names(union) -> set[str]:
    """The ``name`` literals of a discriminated union of schema sections."""
    members = typing.get_args(typing.get_args(union)[0])
    return {name for member in members for name in typing.get_args(member.model_fields["name"].annotation)}


def test_schema_kinds_are_the_registered_ones():
    assert _names(schema.Optimizer) == set(OPTIMIZERS)
    assert _names(schema.Scheduler) == set(SCHEDULERS)
    assert _names(schema.Loss) == set(LOSSES)
    assert set(typing.get_args(schema.ClassifierModel.model_fields["head"].annotation)) == set(HEADS)
    assert set(schema.METHOD_SCHEMAS) == set(METHODS) == set(TASKS)
    assert set(schema._DISCRIMINATOR_TAGS) == set(OPTIMIZERS) | set(SCHEDULERS) | set(LOSSES)


def test_a_name_registered_twice_is_an_error():
    with pytest.raises(RegistryError, match="loss 'bce' is registered twice"):
        LOSSES.register("bce")(lambda num_classes, multilabel, **options: None)
    assert "bce" in LOSSES and LOSSES["bce"].__name__ == "_bce"


def test_unknown_names_list_the_known_ones():
    with pytest.raises(KeyError, match=r"unknown method 'siamse' \(did you mean 'siamese'\?\); known: classifier, siamese, single_net"):
        get_task_class("siamse")
    with pytest.raises(RegistryError, match="unknown scheduler 'cosin'.*known: cosine, exponential, plateau, step"):
        SCHEDULERS["cosin"]


def test_backbones_acnn_registered_and_timm_the_fallback():
    acnn, channels = build_backbone("acnn", in_chans=1, depth=2)
    assert type(acnn).__name__ == "ACNN" and channels == 3
    resnet, channels = build_backbone("resnet18", in_chans=1)
    assert channels == 512 and resnet.default_cfg["architecture"] == "resnet18"
    assert BACKBONES.names() == ["acnn", "cae_encoder"] and BACKBONES.fallback_label == "any timm model name"


def test_list_prints_every_kind(capsys):
    from benchmark.cli import main
    from datamodules import DATAMODULES
    from datamodules.transforms import PRESETS

    assert main(["list"]) == 0
    lines = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    listed = {kind: [name.strip() for name in names.split(",")] for kind, names in lines.items()}
    assert listed == {
        "datasets": sorted(DATAMODULES), "methods": ["classifier", "siamese", "single_net"], "backbones": ["acnn", "cae_encoder", "any timm model name"],
        "heads": ["fcn", "linear", "sequence"], "losses": ["bce", "cross_entropy", "weighted_cross_entropy"], "optimizers": ["adam", "adamw", "rmsprop", "sgd"],
        "schedulers": ["cosine", "exponential", "plateau", "step"], "augmentations": sorted(PRESETS)}
