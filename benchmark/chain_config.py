"""A chain's stages expanded for one suite: each stage's dataset found (or its synthetic stand-in), its data and
trainer settings merged and validated, so a typo in any stage fails before anything trains.

Settings flow as for a plain method, per stage: the method's input settings (``INPUT_KEYS``: image size, channels,
normalisation, workers) reach every stage, its task settings (class map, sampling ...) only the stage
that trains on the suite's dataset; a stage's own ``data:``/``trainer:`` come next, the suite's last. The split keys
of the suite's dataset are the suite's; a stage on a dataset of its own may set its own fractions (the
twice-transfer ChestX-ray14 split is 70/10/20, section 5.1).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from benchmark.config import SPLIT_KEYS, ConfigError, _dataset_entry, deep_merge, suite_over_method
from benchmark.results import fingerprint

INPUT_KEYS = ("image_size", "channels", "normalization", "num_workers")
SUITE_TASK_KEYS = ("class_map", "class_names")  # a suite's labels are its dataset's: a stage on a dataset of its own keeps its own


def expand_chain(method: dict, *, suite_path: Path, suite_data: dict, suite_trainer: dict, data_root, raw: dict,
                 run_dataset: dict) -> list[dict[str, Any]]:
    """The resolved stages of ``method`` for a run on ``run_dataset`` (the last stage's own dataset where it names
    one); every stage dict holds name, dataset, data, trainer, start, head, keep_outputs, loss, monitor, phases."""
    from benchmark.schema import DataConfig, TrainerConfig, validate

    stages = []
    last = len(method["stages"]) - 1
    final = method["stages"][-1].get("dataset")
    downstream = _dataset_entry(copy.deepcopy(final), suite_path, data_root, raw) if final is not None else run_dataset
    for number, stage in enumerate(method["stages"]):
        where = f"{method['file']} stage {stage['name']}"
        own_dataset = stage.get("dataset") is not None
        if own_dataset:
            dataset = _dataset_entry(copy.deepcopy(stage["dataset"]), suite_path, data_root, raw)
        else:
            dataset = downstream if stage.get("objective") == "reconstruction" else run_dataset
        inputs = {k: v for k, v in method.get("data", {}).items() if number == last or k in INPUT_KEYS}
        suite_keys = {k: v for k, v in suite_data.items() if k not in SPLIT_KEYS and not (own_dataset and k in SUITE_TASK_KEYS)}
        data = suite_over_method(deep_merge(inputs, {k: v for k, v in stage.get("data", {}).items() if k not in SPLIT_KEYS}), suite_keys)
        for key in SPLIT_KEYS:
            if key in stage.get("data", {}) and not own_dataset:
                raise ConfigError(f"{where}: data.{key}: a stage on the suite's dataset uses the suite's split")
            if own_dataset and key == "held_out":
                continue  # the suite's held-out sources are sources of its own dataset, not of this stage's
            value = stage["data"].get(key) if own_dataset and key in stage.get("data", {}) else suite_data.get(key)
            if value is not None:
                data[key] = value
        trainer = deep_merge(deep_merge(method.get("trainer", {}), stage.get("trainer", {})), suite_trainer)
        trainer.pop("max_epochs", None)  # a stage's epochs are its phases'
        stages.append({
            "name": stage["name"], "dataset": dataset,
            "data": validate(DataConfig, data, where=where, section="data"),
            "trainer": validate(TrainerConfig, trainer, where=where, section="trainer"),
            **{key: copy.deepcopy(stage.get(key)) for key in ("start", "head", "keep_outputs", "phases")},
            "loss": copy.deepcopy(stage.get("loss") or method.get("loss")),
            "monitor": copy.deepcopy(stage.get("monitor") or method.get("monitor")),
        })
        if stage.get("objective") == "reconstruction":
            stages[-1].update(reconstruction_settings(stage, suite_path=suite_path, data_root=data_root, raw=raw))
    for stage in stages:  # an autoencoder's pool is drawn from the downstream split: its keys are that split's
        if stage.get("objective") == "reconstruction":
            stage["data"].update({key: stages[-1]["data"].get(key) for key in SPLIT_KEYS})
    return stages


def reconstruction_settings(stage: dict, *, suite_path: Path, data_root, raw: dict) -> dict[str, Any]:
    """An autoencoder stage's own keys: its pool (extra datasets found, or their stand-ins), model, and its default
    monitor (validation MSE) and optimiser (the CAE paper's Adam at 0.01, section 3.1)."""
    pool = copy.deepcopy(stage.get("pool") or {})
    pool["extra"] = [_dataset_entry(copy.deepcopy(entry), suite_path, data_root, raw) for entry in pool.get("extra", [])]
    phases = [{**phase, "optimizer": phase.get("optimizer") or dict(RECONSTRUCTION_OPTIMIZER)} for phase in stage["phases"]]
    return {"objective": "reconstruction", "pool": pool, "model": copy.deepcopy(stage.get("model") or {}), "phases": phases,
            "monitor": copy.deepcopy(stage.get("monitor")) or {"metric": "val/loss", "mode": "min"}, "loss": None, "head": None}


RECONSTRUCTION_OPTIMIZER = {"name": "adam", "lr": 0.01}


def final_dataset(method: dict, *, suite_path: Path, data_root, raw: dict) -> dict | None:
    """The dataset entry of a chain whose last stage names its own (a ChestX-ray14-only method), else None."""
    last = (method.get("stages") or [{}])[-1]
    if last.get("dataset") is None:
        return None
    return _dataset_entry(copy.deepcopy(last["dataset"]), suite_path, data_root, raw)


PATH_KEYS = ("root", "data_root")


def stage_fingerprints(method: dict, stages: list[dict]) -> list[str]:
    """One fingerprint per stage: everything its weights depend on (the method's network, the stage's dataset,
    settings, phases, and the fingerprint of the stage it starts from), not names or data paths, so two methods
    with the same stage share one training (its seed is kept beside it)."""
    prints: dict[str, str] = {}
    for stage in stages:
        start = dict(stage["start"])
        if start.get("kind") == "stage":
            start["stage"] = prints[start["stage"]]
        if stage.get("objective") == "reconstruction":  # the autoencoder alone: methods with other heads share it
            network = {"method": "cae_autoencoder", "model": stage.get("model")}
        else:
            network = {k: method.get(k) for k in ("method", "model", "task")}
        if any(not phase.get("optimizer") for phase in stage["phases"]):  # the method's optimiser trains that phase
            network["optimizer"] = method.get("optimizer")
        settings = {k: v for k, v in stage.items() if k not in ("name", "dataset")}
        if "pool" in settings:
            settings["pool"] = {**settings["pool"], "extra": [_without_paths(e) for e in settings["pool"].get("extra", [])]}
        config = {
            "network": network,
            "dataset": _without_paths(stage["dataset"]),
            "stage": {**settings, "start": start},
        }
        prints[stage["name"]] = fingerprint(config)
    return [prints[stage["name"]] for stage in stages]


def _without_paths(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k not in PATH_KEYS}


def check_pretrained_starts(specs) -> None:
    """Before anything trains: every ImageNet start has its weights (timm's cache, a file the config names, or a
    download when online) and every CheXNet file exists and reads as CheXNet, else a StartWeightsError naming the
    file to put where, in seconds (lightning_modules/pretrained.py), not hours into a suite."""
    from lightning_modules.pretrained import chexnet_state_dict, imagenet_state_dict
    from lightning_modules.weights import StartWeightsNotFound

    seen = set()
    for spec in specs:
        for stage in spec.stages or []:
            start = stage["start"]
            key = (start["kind"], start.get("file"), spec.method.get("model", {}).get("backbone"))
            if key in seen or start["kind"] not in ("imagenet", "chexnet"):
                continue
            seen.add(key)
            if start["kind"] == "imagenet":
                imagenet_state_dict(key[2], file=start.get("file"))
            elif not Path(start["file"]).expanduser().is_file():
                raise StartWeightsNotFound(
                    f"{start['file']}: CheXNet weights not found ({spec.method['id']} starts from them; twice transfer's networks D "
                    "and E). Put a CheXNet checkpoint there: arnoweng/CheXNet's model.pth.tar, or a state dict saved from "
                    "jrzech/reproduce-chexnet's `checkpoint` (README, Pretrained starts), or name another file in `start: {chexnet: PATH}`")
            else:
                chexnet_state_dict(start["file"])
