"""Fair sweeps: every method gets the same number of random draws from its own search space (DomainBed, Gulrajani
and Lopez-Paz 2021, section 4), draw 0 being its paper defaults, and each draw is trained ``trials`` times.

A method file declares its space next to its defaults (``search_space: {optimizer.lr: {log_uniform: [1e-5, 1e-3]}}``,
benchmark/schema.py ``Distribution``); a suite's ``tuning: {draws, trials, seed}`` sets the budget. A value depends
only on (tuning seed, draw number, key), so a draw is the same whatever else a space holds, two methods sharing a
key and its prior get the same values, and raising ``draws`` keeps the draws already trained (``--resume``).
Values are applied to the method's settings before a run is expanded, so a draw of a chain reaches every phase
that uses the method's optimiser. Which draw counts is decided later, from the result files (benchmark/selection.py).
"""

from __future__ import annotations

import copy
import math
import zlib
from typing import Any

import numpy as np

from benchmark.config import ConfigError, SPLIT_KEYS, set_dotted

SECTIONS = ("optimizer", "loss", "scheduler", "model", "task", "data", "trainer", "stages")
FIXED_DATA = (*SPLIT_KEYS, "image_size")  # the shared split and images are the suite's, never a draw's


def draw_values(space: dict[str, dict], *, seed: int, draw: int) -> dict[str, Any]:
    """The values of draw ``draw`` (0: none, the paper defaults), rounded to 4 significant digits for floats."""
    if draw == 0:
        return {}
    values = {}
    for key in sorted(space):
        prior = {kind: bounds for kind, bounds in space[key].items() if bounds is not None}
        (kind, bounds), = prior.items()
        rng = np.random.default_rng([seed, draw, zlib.crc32(key.encode())])
        if kind == "log_uniform":
            value = _rounded(math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1]))))
        elif kind == "uniform":
            value = _rounded(rng.uniform(bounds[0], bounds[1]))
        elif kind == "int_uniform":
            value = int(rng.integers(bounds[0], bounds[1] + 1))
        else:
            value = copy.deepcopy(bounds[int(rng.integers(len(bounds)))])
        values[key] = value
    return values


def _rounded(value: float) -> float:
    return float(f"{value:.4g}")


def check_space(method: dict, *, where: str) -> None:
    """Every key of ``method``'s search space names a setting it has (a typo fails at load, not in a sweep)."""
    from benchmark.schema import DataConfig, TrainerConfig

    for key in method.get("search_space") or {}:
        section, _, path = key.partition(".")
        if section not in SECTIONS or not path:
            raise ConfigError(f"{where}: search_space key {key!r} must be <section>.<key> with section one of {', '.join(SECTIONS)}")
        if section == "data" and path.split(".")[0] in FIXED_DATA:
            raise ConfigError(f"{where}: search_space key {key!r} would change the shared split or images; the suite fixes it")
        schema = {"data": DataConfig, "trainer": TrainerConfig}.get(section)
        known = path.split(".")[0] in schema.model_fields if schema else _has_path(method.get(section), path)
        if not known:
            raise ConfigError(f"{where}: search_space key {key!r} is not a setting of method {method['id']} (its {section}: {_settings(method, section)})")


def _settings(method: dict, section: str) -> str:
    """What a section holds, for an error: its keys, or a chain's phases with the optimiser settings each has."""
    if section != "stages":
        return ", ".join(sorted(method.get(section) or {})) or "none"
    phases = [f"stages.{stage['name']}.phases.{phase.get('name') or number}.optimizer"
              + ("" if phase.get("optimizer") else " (unset: the method's optimizer.*)")
              for stage in method.get("stages") or [] for number, phase in enumerate(stage["phases"])]
    return ", ".join(phases) or "no stages"


def _has_path(mapping: Any, path: str) -> bool:
    for part in path.split("."):
        mapping = _child(mapping, part)
        if mapping is None:
            return False
    return True


def _child(node: Any, part: str) -> Any:
    """``node[part]``; in a list (a chain's stages, a stage's phases) the element named ``part``, else at index ``part``."""
    if isinstance(node, list):
        named = [item for item in node if isinstance(item, dict) and item.get("name") == part]
        if named:
            return named[0]
        return node[int(part)] if part.isdigit() and int(part) < len(node) else None
    return node.get(part) if isinstance(node, dict) else None


def method_with_draw(method: dict, values: dict[str, Any]) -> dict:
    """A copy of a merged method mapping with a draw's dotted values set (validated again by the caller). A chain's
    phases are addressed by stage and phase name: ``stages.covid.phases.head.optimizer.lr``."""
    method = copy.deepcopy(method)
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = method
        for part in parents:
            child = _child(node, part)
            if child is None and isinstance(node, dict):
                child = node[part] = {}
            node = child
        node[leaf] = value
    return method


def draw_record(method: dict, tuning: dict, draw: int, values: dict[str, Any]) -> dict[str, Any]:
    """What a result file records about its draw: number, values, the space and the budget it came from."""
    space = {key: {kind: bounds for kind, bounds in prior.items() if bounds is not None} for key, prior in (method.get("search_space") or {}).items()}
    return {"draw": draw, "values": values, "space": space, "draws": tuning["draws"],
            "trials": tuning["trials"], "seed": tuning["seed"], "select": tuning["select"]}
