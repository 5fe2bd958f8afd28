"""The CAE method as a chain (CAE paper, sections 3.1-3.2): the autoencoder's pool never holds a downstream val/test
image, the reconstruction stage runs through `python -m benchmark run` and is shared by the head variants, and its
schema refuses what a reconstruction stage cannot have."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

from benchmark.cli import main
from benchmark.schema import MethodFile, Phase, validate
from benchmark.config import ConfigError
from conftest import load_maker
from datamodules import DATAMODULES
from datamodules.pretraining import PretrainingPool


def _radiography(root: Path, tmp_path: Path, name: str = "covid19_radiography", **options):
    return DATAMODULES[name](root, image_size=32, cache_dir=tmp_path / "cache", split_dir=tmp_path / "splits", **options)


def _images(frame: pd.DataFrame) -> set[str]:
    return {str(Path(p).resolve()) for p in frame["path"]}


def test_the_pool_never_holds_a_downstream_val_or_test_image_or_a_copy_of_one(tmp_path):
    root = load_maker("covid19_radiography").create(tmp_path / "data")
    copy = tmp_path / "copy" / root.name
    shutil.copytree(root, copy)  # the same X-rays under other paths, read as another dataset (new patient ids)
    downstream = _radiography(root, tmp_path, val_fraction=0.25, test_fraction=0.25)
    downstream.setup("fit")
    same = _radiography(root, tmp_path)  # the downstream dataset itself as an extra source
    other = _radiography(copy.parent, tmp_path, name="combined", components=[{"dataset": "covid19_radiography", "prefix": "copy"}])
    pool = PretrainingPool(downstream, [same, other], pool_file=tmp_path / "pool.csv", batch_size=4, val_fraction=0.2)
    pool.setup("fit")

    table = pd.read_csv(tmp_path / "pool.csv", dtype=str)
    assert list(table.columns) == ["source", "image", "patient_id", "role"]
    held = _images(downstream.frames["val"]) | _images(downstream.frames["test"])
    held_names = {Path(p).relative_to(root.resolve()).as_posix() for p in held}
    assert held and not set(table.loc[table["source"].str.endswith("covid19_radiography"), "image"]) & held_names  # never a val/test file
    copies = table.loc[table["source"] == "combined", "image"]
    copied_names = {(Path(other.image_root) / image).resolve().relative_to(copy.resolve()).as_posix() for image in copies}
    assert copied_names and not copied_names & held_names  # nor a copy of one (same names under the copied folder)
    counts = pool.counts()
    left = counts["combined"]["left_out"]
    assert left["copy_of_downstream_val_test"] == len(held)  # every copy found by the duplicate search and counted
    assert counts["downstream/covid19_radiography"]["left_out"]["downstream_val_test"] == len(held)
    assert counts["covid19_radiography"]["left_out"]["downstream_val_test_image"] == len(held)  # the same files, by path
    assert counts["covid19_radiography"]["left_out"]["already_in_downstream_train"] == counts["downstream/covid19_radiography"]["train"] + counts["downstream/covid19_radiography"]["val"]
    assert sum(counts[s]["train"] + counts[s]["val"] for s in counts) == len(table)
    train, val = (set(zip(table.loc[table["role"] == r, "source"], table.loc[table["role"] == r, "patient_id"])) for r in ("train", "val"))
    assert val and not train & val  # the pool's own validation: whole patients, drawn once
    batch = next(iter(pool.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32) and 0.0 <= float(batch["image"].min()) and float(batch["image"].max()) <= 1.0


def _cae_method(path: Path, name: str, **changes) -> str:
    method = {
        "method": "classifier", "title": name, "model": {"backbone": "cae_encoder", "head": "sequence", "head_options": {"lstm_layers": 1, "dense": [8]}},
        "data": {"channels": 3, "normalization": "unit"}, "optimizer": {"name": "adam", "lr": 1.0e-3}, "monitor": {"metric": "val/loss", "mode": "min"},
        "stages": [
            {"name": "cae", "objective": "reconstruction", "pool": {"val_fraction": 0.2},
             "phases": [{"name": "pretrain", "epochs": 2, "optimizer": {"name": "adam", "lr": 1.0e-3}}]},
            {"name": "classify", "start": {"stage": "cae"},
             "phases": [{"name": "head", "train": "head", "epochs": 2, "unfreeze": [{"epoch": 1, "modules": ["backbone.conv6"]}]},
                        {"name": "all", "epochs": 1, "optimizer": {"name": "adam", "lr": 1.0e-5}}]},
        ],
        **changes,
    }
    (path / f"{name}.yaml").write_text(yaml.safe_dump(method))
    return f"{name}.yaml"


def test_the_cae_chain_runs_end_to_end_and_its_autoencoder_is_shared(tmp_path):
    variant = {"model": {"backbone": "cae_encoder", "head": "sequence", "head_options": {"lstm_layers": 0, "dense": [8, 4]}}}
    methods = [_cae_method(tmp_path, "cae"), _cae_method(tmp_path, "cae_dense", **variant)]
    scratch = yaml.safe_load((tmp_path / methods[0]).read_text())
    scratch["stages"] = [{**scratch["stages"][1], "start": "random"}]
    (tmp_path / "cae_scratch.yaml").write_text(yaml.safe_dump({**scratch, "title": "cae_scratch"}))
    suite = {
        "name": "cae", "datasets": [{"name": "covid19_radiography", "options": {"patients_per_class": 8}}], "synthetic_without_data_root": True,
        "methods": methods + ["cae_scratch.yaml"], "seeds": [0],
        "data": {"image_size": 32, "split_seed": 0, "val_fraction": 0.25, "test_fraction": 0.25, "batch_size": 8},
        "trainer": {"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False}, "logging": {"wandb": False},
    }
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    out = tmp_path / "runs"
    assert main(["run", str(tmp_path / "suite.yaml"), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--leaderboard", str(tmp_path / "lb.md")]) == 0
    one, two, control = (json.loads((out / f"results/synthetic/{m}/seed0.json").read_text()) for m in ("cae", "cae_dense", "cae_scratch"))

    cae = one["stages"][0]
    assert cae["name"] == "cae" and cae["class_names"] == [] and cae["reused"] is False
    assert two["stages"][0]["reused"] is True and two["stages"][0]["fingerprint"] == cae["fingerprint"]  # one autoencoder for both heads
    assert set(cae["reconstruction"]["metrics"]) >= {"mse", "psnr", "ssim", "loss"}
    grid = Path(cae["reconstruction_grid"])
    assert grid.is_file() and Image.open(grid).size[1] > 32  # inputs above, reconstructions below
    pool = pd.read_csv(cae["pool"]["file"], dtype=str)
    split = pd.read_csv(one["dataset"]["split_file"], dtype=str)
    assert len(pool) == cae["pool"]["images"] and set(pool["image"]) <= set(split.loc[split["split"] == "train", "image"])  # train images only
    assert "stage cae" in one["start_weights"] and control["start_weights"] == "random init" and len(control["stages"]) == 1

    head, rest = one["phases"]
    assert [(s["epoch"], s["modules"]) for s in head["unfrozen"]] == [(1, ["backbone.conv6"])]  # the schedule was followed
    assert head["trainable_parameters"] > 0 and rest["trainable_parameters"] > head["trainable_parameters"]
    board = (tmp_path / "lb.md").read_text()
    assert "## Autoencoder pretraining stages" in board and "| cae `" in board and "cae, cae_dense" in board
    assert "head; +backbone.conv6 from epoch 2" in board


def _validate(stages):
    base = {"method": "classifier", "id": "m", "file": "m.yaml", "model": {"backbone": "cae_encoder", "head": "sequence"}}
    return validate(MethodFile, {**base, "stages": stages}, where="m.yaml")


RECONSTRUCTION = {"name": "cae", "objective": "reconstruction", "phases": [{"epochs": 1}]}
CLASSIFY = {"name": "classify", "start": {"stage": "cae"}, "phases": [{"epochs": 1}]}


@pytest.mark.parametrize("stages, message", [
    ([{**RECONSTRUCTION, "dataset": "chestxray14"}, CLASSIFY], "has no dataset"),
    ([{**RECONSTRUCTION, "head": "sigmoid"}, CLASSIFY], "has no head"),
    ([{**RECONSTRUCTION, "phases": [{"epochs": 1, "train": "head"}]}, CLASSIFY], "trains the whole autoencoder"),
    ([RECONSTRUCTION], "cannot be the last"),
    ([{**CLASSIFY, "start": "random", "pool": {"val_fraction": 0.1}}], "belong to an objective: reconstruction stage"),
])
def test_a_reconstruction_stage_refuses_what_it_cannot_have(stages, message):
    with pytest.raises(ConfigError, match=message):
        _validate(stages)


def test_unfreeze_steps_are_checked_against_the_phase():
    assert validate(Phase, {"train": "head", "epochs": 3, "unfreeze": [{"epoch": 1, "modules": ["backbone.conv6"]}, {"epoch": 2, "modules": "all", "lr": 1e-5}]}, where="p")
    for phase, message in [({"train": "head", "epochs": 2, "unfreeze": [{"epoch": 2, "modules": "all"}]}, "never comes"),
                           ({"train": "all", "epochs": 3, "unfreeze": [{"epoch": 1, "modules": "all"}]}, "starts with part of the network frozen"),
                           ({"train": "head", "epochs": 4, "unfreeze": [{"epoch": 2, "modules": "all"}, {"epoch": 1, "modules": ["x"]}]}, "epoch order")]:
        with pytest.raises(ConfigError, match=message):
            validate(Phase, phase, where="p")
