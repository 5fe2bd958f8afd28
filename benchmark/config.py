"""Suites and methods as YAML data, expanded into one RunSpec per (dataset, method, seed).

A method file may ``extends:`` another (deep-merged, child wins); a suite's ``data:`` and ``trainer:`` sections
override every method's, so the settings that must be shared (image size, the split) are the same for all.
Split settings come only from the suite: every method of a suite trains and tests on one split.

A method's ``grid_search:`` describes its paper's hyper-parameter search (``benchmark.grid_search``); it runs only
where the suite says ``grid_search: true`` (or gives a mapping, merged over the method's). A suite's
``leaderboard:`` options (e.g. ``{gain: {reference: <method id>}}``) travel in each result to the leaderboard.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SPLIT_KEYS = ("split_seed", "val_fraction", "test_fraction")


class ConfigError(ValueError):
    """A suite or method file is malformed; the message names the file and the key."""


def deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_method(path: str | Path) -> dict:
    """A method config with its ``extends`` chain resolved; ``id`` is the file's stem."""
    path = Path(path)
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent:
        base = load_method(path.parent / parent)
        inherited_deviations = base.get("deviations", [])
        data = deep_merge(base, data)
        data["deviations"] = inherited_deviations + [d for d in data.get("deviations", []) if d not in inherited_deviations]
    if "method" not in data:
        raise ConfigError(f"{path}: missing key 'method' (the LightningModule name, e.g. single_net)")
    from lightning_modules import TASKS

    if data["method"] not in TASKS:
        raise ConfigError(f"{path}: unknown method {data['method']!r}; known: {', '.join(sorted(TASKS))}")
    data["id"] = path.stem
    data["file"] = str(path)
    return data


@dataclass
class RunSpec:
    """Everything one training run needs; ``run_id`` names its result file."""

    suite: str
    dataset: dict[str, Any]
    method: dict[str, Any]
    seed: int
    data: dict[str, Any]
    trainer: dict[str, Any]
    logging: dict[str, Any] = field(default_factory=dict)
    grid_search: dict[str, Any] | None = None
    leaderboard: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return f"{self.dataset['name']}/{self.method['id']}/seed{self.seed}"


@dataclass
class Suite:
    name: str
    path: Path
    description: str
    runs: list[RunSpec]
    raw: dict[str, Any]


def load_suite(path: str | Path, *, data_root: str | Path | None = None, seeds: list[int] | None = None, trainer_overrides: dict | None = None) -> Suite:
    path = Path(path)
    raw = _read_yaml(path)
    for key in ("datasets", "methods"):
        if not raw.get(key):
            raise ConfigError(f"{path}: missing or empty key {key!r}")
    suite_data = raw.get("data", {}) or {}
    suite_trainer = deep_merge(raw.get("trainer", {}) or {}, trainer_overrides or {})
    datasets = [_dataset_entry(entry, path, data_root, raw) for entry in raw["datasets"]]
    methods = [load_method(path.parent / m) for m in raw["methods"]]
    run_seeds = seeds if seeds is not None else raw.get("seeds", [0])
    runs = []
    for dataset in datasets:
        for method in methods:
            data = deep_merge(method.get("data", {}), suite_data)
            for key in SPLIT_KEYS:  # the split belongs to the suite, never to a method
                data.pop(key, None)
                if key in suite_data:
                    data[key] = suite_data[key]
            trainer = deep_merge(method.get("trainer", {}), suite_trainer)
            grid = _grid_search(raw.get("grid_search"), method, path)
            for seed in run_seeds:
                runs.append(RunSpec(raw.get("name", path.stem), dataset, method, int(seed), data, trainer, raw.get("logging", {}) or {},
                                    grid_search=copy.deepcopy(grid), leaderboard=copy.deepcopy(raw.get("leaderboard") or {})))
    return Suite(raw.get("name", path.stem), path, raw.get("description", ""), runs, raw)


def _grid_search(suite_grid: Any, method: dict, path: Path) -> dict | None:
    """The search a run does: none unless the suite enables it; the method's own grid, merged with the suite's."""
    if not suite_grid:
        return None
    grid = deep_merge(method.get("grid_search") or {}, suite_grid if isinstance(suite_grid, dict) else {})
    if not grid:
        return None  # `grid_search: true` and a method without a search of its own: train it as configured
    from benchmark.grid_search import parse_grid

    parse_grid(grid, where=f"{path} (method {method['id']})")
    return grid


def _dataset_entry(entry: Any, path: Path, data_root: str | Path | None, raw: dict) -> dict:
    """Resolve which dataset a suite entry means: with no data root, a suite that allows it uses the phantoms."""
    from datamodules import DATAMODULES

    entry = {"name": entry} if isinstance(entry, str) else dict(entry)
    if "name" not in entry:
        raise ConfigError(f"{path}: every entry of 'datasets' needs a 'name'")
    if entry["name"] not in DATAMODULES:
        raise ConfigError(f"{path}: unknown dataset {entry['name']!r}; known: {', '.join(sorted(DATAMODULES))}")
    if data_root is not None:
        entry["data_root"] = str(data_root)
    elif "root" not in entry and raw.get("synthetic_without_data_root"):
        entry = {"name": "synthetic", "stands_in_for": entry["name"], **{k: v for k, v in entry.items() if k not in ("name",)}}
    elif "root" not in entry and entry["name"] != "synthetic":
        raise ConfigError(f"{path}: dataset {entry['name']!r} needs a data root (--data-root DIR or DATA_ROOT=DIR)")
    return entry
