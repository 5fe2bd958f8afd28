"""Hyper-parameter grid search on the validation split, then the final run with the best point (as the siamese
paper's Table 2: learning rate x batch size, chosen by validation accuracy).

A method's YAML describes the search and a suite turns it on (``grid_search: true``, or a mapping merged over it):

    grid_search:
      optimizer.lr: [1.0e-3, 1.0e-4, 1.0e-5]   # dotted key + list: an axis of the grid
      data.batch_size: [8, 16, 32]
      trainer: {max_epochs: 20}                 # anything else: settings of the search runs only
      task: {pairs_per_epoch: 5000}

Every point trains on the train split and is scored by the method's ``monitor`` on the validation split; the test
split is never touched. The final run uses the best point's values with the method's own settings. The search is
written to ``<out>/grid_search/<dataset>/<method>.json`` with a fingerprint of everything it depends on except
the run seed (search runs use ``seed``, default 0), so the seeds of a suite, and reruns, reuse one search.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmark.config import SPLIT_KEYS, ConfigError, deep_merge

log = logging.getLogger(__name__)

SECTIONS = ("data", "trainer", "model", "optimizer", "loss", "scheduler", "task")


def parse_grid(grid: dict, *, where: str = "grid_search") -> tuple[dict[str, list], dict[str, Any]]:
    """Split a ``grid_search`` mapping into axes ({dotted key: values}) and search-only overrides."""
    axes, overrides = {}, {}
    for key, value in grid.items():
        if key == "seed":
            continue
        if "." in key:
            section, name = key.split(".", 1)
            if section not in SECTIONS:
                raise ConfigError(f"{where}: grid axis {key!r} must start with one of {', '.join(SECTIONS)}")
            if section == "data" and name in (*SPLIT_KEYS, "image_size"):
                raise ConfigError(f"{where}: grid axis {key!r} would change the shared split or images; the suite fixes it")
            if not isinstance(value, list) or not value:
                raise ConfigError(f"{where}: grid axis {key!r} needs a non-empty list of values")
            axes[key] = value
        elif key in SECTIONS and isinstance(value, dict):
            overrides[key] = value
        else:
            raise ConfigError(f"{where}: unknown grid_search key {key!r}; use '<section>.<key>: [values]' axes or {', '.join(SECTIONS)} mappings")
    if not axes:
        raise ConfigError(f"{where}: grid_search has no axis (a dotted key with a list of values)")
    return axes, overrides


def apply(spec, values: dict[str, Any], overrides: dict[str, Any] | None = None):
    """A copy of ``spec`` with section overrides deep-merged, then the dotted ``values`` set."""
    method, data, trainer = copy.deepcopy(spec.method), copy.deepcopy(spec.data), copy.deepcopy(spec.trainer)
    sections = {"data": data, "trainer": trainer}
    for section, settings in (overrides or {}).items():
        target = sections.get(section)
        if target is not None:
            target.update(deep_merge(target, settings))
        else:
            method[section] = deep_merge(method.get(section) or {}, settings)
    for key, value in values.items():
        section, path = key.split(".", 1)
        target = sections.get(section)
        if target is None:
            if not isinstance(method.get(section), dict):
                method[section] = {}
            target = method[section]
        *parents, leaf = path.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return replace(spec, method=method, data=data, trainer=trainer, grid_search=None)


def points(axes: dict[str, list]) -> list[dict[str, Any]]:
    return [dict(zip(axes, combination)) for combination in itertools.product(*axes.values())]


def _fingerprint(spec, grid: dict) -> str:
    method = {k: v for k, v in spec.method.items() if k not in ("title", "paper", "deviations", "file")}
    payload = {"grid": grid, "method": method, "data": spec.data, "trainer": spec.trainer, "dataset": spec.dataset}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_grid_search(spec, *, out_dir: Path, cache_dir: Path) -> tuple[dict[str, Any], Any]:
    """Search, or reuse a finished search; returns (summary for the result file, the final run's spec)."""
    from benchmark.runner import fit_and_validate

    grid = spec.grid_search
    axes, overrides = parse_grid(grid)
    monitor = spec.method.get("monitor", {"metric": "val/accuracy", "mode": "max"})
    fingerprint = _fingerprint(spec, grid)
    record = Path(out_dir) / "grid_search" / spec.dataset["name"] / f"{spec.method['id']}.json"
    summary = _reusable(record, fingerprint)
    if summary is None:
        search_seed = int(grid.get("seed", 0))
        scored = []
        for number, values in enumerate(points(axes), 1):
            tag = "_".join(f"{k.split('.')[-1]}={v}" for k, v in values.items())
            log.info("grid search %s [%d/%d]: %s", spec.run_id, number, len(points(axes)), tag)
            point_spec = replace(apply(spec, values, overrides), seed=search_seed, logging={"wandb": False})
            outcome = fit_and_validate(point_spec, out_dir=out_dir, cache_dir=cache_dir, log_dir=Path(out_dir) / "logs" / "grid_search" / spec.dataset["name"] / spec.method["id"] / tag)
            if outcome["best_validation_score"] is None:
                raise RuntimeError(f"grid search {spec.run_id} {tag}: no validation score {monitor['metric']!r} was logged")
            scored.append({"values": values, **outcome})
        best = (max if monitor["mode"] == "max" else min)(scored, key=lambda p: p["best_validation_score"])
        summary = {"metric": monitor["metric"], "mode": monitor["mode"], "axes": axes, "search_settings": overrides, "seed": search_seed,
                   "points": scored, "chosen": best["values"], "fingerprint": fingerprint, "record": str(record)}
        _write(record, summary)
        summary["reused"] = False
    else:
        log.info("grid search %s: reusing %s (chosen %s)", spec.run_id, record, summary["chosen"])
        summary["reused"] = True
    return summary, apply(spec, summary["chosen"])


def _reusable(record: Path, fingerprint: str) -> dict | None:
    """The recorded search if it exists, parses and has this fingerprint; an unreadable record means search again."""
    try:
        summary = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return summary if isinstance(summary, dict) and summary.get("fingerprint") == fingerprint else None


def _write(record: Path, summary: dict) -> None:
    """Write the search record atomically (rank 0 only), so a concurrent reader never sees half of it."""
    from pytorch_lightning.utilities import rank_zero_only

    from datamodules.atomic import atomic_write_text

    if rank_zero_only.rank == 0:
        atomic_write_text(record, json.dumps(summary, indent=2, default=str) + "\n")
