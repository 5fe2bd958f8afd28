"""Chains: head transfer with output-neuron keeping, phase parameters, and a two-method chain end to end (the
shared stage trains once)."""

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml
from torch.utils.data import DataLoader

from benchmark.cli import main
from lightning_modules.classifier import ImageClassifier
from lightning_modules.phases import PhaseParameters, frozen_modules
from lightning_modules.transfer import TransferError, carry_backbone, keep_outputs, source_output_layer
from conftest import HalvesDataset

REPO = Path(__file__).resolve().parent.parent

SOURCE = ["No Finding", "Pneumonia", "Effusion"]
TARGET = ["normal", "viral_pneumonia", "COVID-19"]


def _task(classes, seed=0, **options):
    torch.manual_seed(seed)
    return ImageClassifier(class_names=classes, image_size=32, model={"backbone": "resnet10t", "head": "linear"},
                           optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9}, **options)


def test_head_transfer_carries_the_backbone_and_keeps_named_neurons():
    source, target = _task(SOURCE, head_activation="sigmoid", multilabel=True), _task(TARGET, seed=1, head_activation="sigmoid")
    fresh = {k: v.clone() for k, v in target.model.state_dict().items()}
    state = source.model.state_dict()
    assert carry_backbone(target.model, state) == len(source.model.backbone.state_dict())
    for key, value in source.model.backbone.state_dict().items():
        assert torch.equal(target.model.backbone.state_dict()[key], value)  # bit for bit
    kept = keep_outputs(target.model, source_output_layer(state, target.model.head, SOURCE), TARGET, {"normal": "No Finding", "viral_pneumonia": "Pneumonia"})
    assert kept == ["normal <- No Finding", "viral_pneumonia <- Pneumonia"]
    weight, bias = target.model.head.layers[3].weight, target.model.head.layers[3].bias
    assert torch.equal(weight[0], state["head.layers.3.weight"][0]) and torch.equal(bias[1], state["head.layers.3.bias"][1])
    assert torch.equal(weight[2], fresh["head.layers.3.weight"][2])  # COVID-19: new, as initialised
    assert not torch.equal(weight[2], state["head.layers.3.weight"][2])


def test_keeping_an_unknown_class_lists_both_sides():
    source, target = _task(SOURCE), _task(TARGET)
    with pytest.raises(TransferError, match=r"\['Pneumothorax'\].*this stage's classes are \['normal', 'viral_pneumonia', 'COVID-19'\].*No Finding"):
        keep_outputs(target.model, source_output_layer(source.model.state_dict(), target.model.head, SOURCE), TARGET, {"normal": "Pneumothorax"})


def test_a_backbone_of_another_architecture_is_refused():
    other = ImageClassifier(class_names=SOURCE, image_size=32, model={"backbone": "resnet18", "head": "linear"})
    with pytest.raises(TransferError, match="does not fit"):
        carry_backbone(_task(TARGET).model, other.model.state_dict())


def test_sigmoid_head_on_a_single_label_task_scores_like_every_method():
    task = _task(TARGET, head_activation="sigmoid")
    logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.0, 1.0]])
    scores = task.scores(logits)
    assert torch.allclose(scores.sum(1), torch.ones(2)) and torch.equal(scores.argmax(1), logits.argmax(1))
    loss = task.criterion(logits, torch.tensor([0, 2]))  # BCE on one-hot targets
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([[1.0, 0, 0], [0, 0, 1.0]]))
    assert torch.isclose(loss, expected)


def _fit(task, phase_train, *, epochs=2, optimizer=None):
    task.set_phase(optimizer=optimizer or {"name": "sgd", "lr": 0.05, "momentum": 0.9}, scheduler=None)
    loader = DataLoader(HalvesDataset(16), batch_size=8)
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[PhaseParameters(phase_train)])
    trainer.fit(task, loader)
    return trainer


def test_head_phase_leaves_the_backbone_untouched_then_all_trains():
    task = _task(["a", "b"])
    backbone = {k: v.clone() for k, v in task.model.backbone.state_dict().items()}  # parameters and batch-norm buffers
    head = {k: v.clone() for k, v in task.model.head.state_dict().items()}
    trainer = _fit(task, "head", optimizer={"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 0.01})
    assert all(torch.equal(v, backbone[k]) for k, v in task.model.backbone.state_dict().items())
    assert all(p.grad is None for p in task.model.backbone.parameters())  # no gradient reached the frozen part
    assert any(not torch.equal(v, head[k]) for k, v in task.model.head.state_dict().items())
    group = trainer.optimizers[0].param_groups[0]
    assert (group["lr"], group["weight_decay"]) == (0.01, 0.01)
    assert sum(p.numel() for g in trainer.optimizers[0].param_groups for p in g["params"]) == sum(p.numel() for p in task.model.head.parameters())
    trainer = _fit(task, "all", epochs=1, optimizer={"name": "adam", "lr": 1e-4})  # the next phase: all, another optimiser
    assert isinstance(trainer.optimizers[0], torch.optim.Adam) and trainer.optimizers[0].param_groups[0]["lr"] == 1e-4
    assert sum(p.numel() for p in trainer.optimizers[0].param_groups[0]["params"]) == task.parameter_count()
    assert any(not torch.equal(v, backbone[k]) for k, v in task.model.backbone.state_dict().items())


def test_named_prefixes_train_only_those_modules():
    task = _task(["a", "b"])
    frozen = frozen_modules(task.model, ["backbone.layer4", "head"])
    names = {name for name, module in task.model.named_modules() if any(module is f for f in frozen)}
    assert "backbone.conv1.0" in names and not any(n.startswith(("backbone.layer4", "head")) for n in names)
    with pytest.raises(ValueError, match="names no parameters.*backbone, head"):
        frozen_modules(task.model, ["backbone.layer9"])


def _chain_method(path: Path, title: str) -> str:
    method = {
        "method": "classifier", "title": title, "model": {"backbone": "resnet10t", "head": "linear"},
        "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9}, "monitor": {"metric": "val/loss", "mode": "min"},
        "stages": [
            {"name": "pre", "dataset": {"name": "covid19_radiography", "options": {"patients_per_class": 8}},
             "data": {"class_map": {"COVID-19": "COVID-19", "*": "other"}}, "head": "sigmoid",
             "phases": [{"name": "head", "train": "head", "epochs": 1}, {"name": "all", "epochs": 1}]},
            {"name": "final", "start": {"stage": "pre"}, "keep_outputs": {"COVID-19": "COVID-19"}, "head": "sigmoid",
             "phases": [{"name": "head", "train": "head", "epochs": 1, "optimizer": {"name": "sgd", "lr": 0.001, "momentum": 0.9, "weight_decay": 0.01}},
                        {"name": "all", "epochs": 4, "early_stopping": {"metric": "val/loss", "mode": "max", "patience": 1}}]},
        ],
    }
    file = path / f"{title}.yaml"
    file.write_text(yaml.safe_dump(method))
    return file.name


def test_two_chains_share_their_first_stage_end_to_end(tmp_path):
    suite = {
        "name": "chains", "datasets": [{"name": "covid19_radiography", "options": {"patients_per_class": 8}}],
        "synthetic_without_data_root": True, "methods": [_chain_method(tmp_path, "one"), _chain_method(tmp_path, "two")],
        "data": {"image_size": 32, "split_seed": 0, "val_fraction": 0.25, "test_fraction": 0.25, "batch_size": 8},
        "trainer": {"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False}, "logging": {"wandb": False},
    }
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    out = tmp_path / "runs"
    assert main(["run", str(tmp_path / "suite.yaml"), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--leaderboard", str(tmp_path / "lb.md")]) == 0
    one, two = (json.loads((out / f"results/synthetic/{m}/seed0.json").read_text()) for m in ("one", "two"))
    assert [s["name"] for s in one["stages"]] == ["pre", "final"]
    assert one["stages"][0]["reused"] is False and two["stages"][0]["reused"] is True  # trained once, for both
    assert len(list((out / "stages").glob("pre-*/seed0/stage.json"))) == 1
    assert one["stages"][0]["fingerprint"] == two["stages"][0]["fingerprint"]
    assert sorted(one["stages"][0]["class_names"]) == ["COVID-19", "other"] and one["stages"][0]["test"]["metrics"]["accuracy"] >= 0
    assert "stage pre" in one["start_weights"] and "COVID-19 <- COVID-19" in one["start_weights"]
    head, rest = one["phases"]
    assert (head["epochs_trained"], head["last_epoch"], head["train"]) == (1, 1, "head")
    assert head["trainable_parameters"] < rest["trainable_parameters"]
    assert rest["stopped_early"] and rest["epochs_trained"] == 2 and rest["first_epoch"] == 2  # early stopping ended it
    assert "accuracy" in head["test"]["metrics"] and head["test"]["ci"]["accuracy"] is not None  # every phase's best network tested
    assert rest["test"]["metrics"] == one["metrics"] and one["stages"][1]["test"]["metrics"]["accuracy"] == one["metrics"]["accuracy"]
    assert one["epochs_trained"] == 3 and Path(one["checkpoint"]["path"]).is_file()
    board = (tmp_path / "lb.md").read_text()  # the method's section lists its chain and every phase's test accuracy
    assert "Chain: **pre** (trained, 2 epochs; start: random init); then **final** (trained" in board
    assert f"| head | 1-1 | head | 1 |" in board and "| all | 2-3 (stopped early) | all |" in board


def test_multilabel_stages_get_one_auroc_table_each_shown_once():
    from benchmark.chain_tables import stage_auroc_section

    def stage(fingerprint, auroc):
        return {"name": "cxr14", "fingerprint": fingerprint, "seed": 0, "start": "imagenet: timm densenet121.tv_in1k (...)",
                "dataset": {"name": "chestxray14", "classes": ["Mass", "Nodule"], "multilabel": True},
                "test": {"metrics": {"auroc": auroc, "auroc/Mass": 0.9, "auroc/Nodule": auroc}, "ci": {"auroc": [0.5, 0.7]}}}

    results = [{"method": {"id": "a"}, "stages": [stage("f1", 0.6), {"name": "covid", "dataset": {"multilabel": False}}]},
               {"method": {"id": "b"}, "stages": [stage("f1", 0.6)]}, {"method": {"id": "c"}, "stages": [stage("f2", 0.7)]}]
    lines = stage_auroc_section(results)
    assert lines[0] == "## Multi-label stages: chestxray14 (2 outputs), test AUROC per finding"
    rows = [line for line in lines if line.startswith("| cxr14")]
    assert rows == ["| cxr14 `f1` | a, b | imagenet | 0 | 0.600 [0.500, 0.700] | 0.900 | 0.600 |",
                    "| cxr14 `f2` | c | imagenet | 0 | 0.700 [0.500, 0.700] | 0.900 | 0.700 |"]


def test_a_suite_needing_cheXNet_fails_before_training_naming_the_file(tmp_path, capsys):
    suite = {"name": "twice", "datasets": ["twice_transfer_radiography"], "methods": [str(REPO / "configs/methods/twice_transfer_d.yaml")],
             "trainer": {"accelerator": "cpu"}, "logging": {"wandb": False}}
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    code = main(["run", str(tmp_path / "suite.yaml"), "--data-root", str(tmp_path), "--out", str(tmp_path / "runs"), "--dry-run"])
    assert code == 2 and "weights/chexnet/model.pth.tar: CheXNet weights not found" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "results").exists()


def test_every_shipped_quick_chain_names_classes_its_data_has(tmp_path):
    """The quick suite's chains on the phantoms (as `make benchmark` runs them): every stage's data sets up, and
    keep_outputs and expansion name classes that exist on both sides."""
    from benchmark.chain import prepare_chain_data
    from benchmark.config import load_suite

    suite = load_suite(REPO / "configs/quick.yaml", trainer_overrides={"accelerator": "cpu"})
    chains = [spec for spec in suite.runs if spec.stages]
    assert {spec.method["id"] for spec in chains} >= {f"twice_transfer_{n}_quick" for n in "abcde"} | {"transfer_fifteen_class_quick"}
    for spec in chains:
        for stage in spec.stages:
            stage["data"]["image_size"] = 16
        datamodules = prepare_chain_data(spec, out_dir=tmp_path, cache_dir=tmp_path / "cache")
        assert datamodules[-1].name == spec.dataset["name"]
        if spec.method["id"].startswith("twice_transfer"):
            assert datamodules[-1].class_names == ["normal", "viral_pneumonia", "COVID-19"]
            assert len(datamodules[-1].train_sampler()) > len(datamodules[-1].datasets["train"])  # 8x / 72x expansion
