"""Hyper-parameter grid search on the validation split, then the final run with the best point (as the siamese
paper's Table 2: learning rate x batch size, chosen by validation accuracy).

A method's YAML describes the search and a suite turns it on (``grid_search: true``, or a mapping merged over it):

    grid_search:
      optimizer.lr: [1.0e-3, 1.0e-4, 1.0e-5]   # dotted key + list: an axis of the grid
      data.batch_size: [8, 16, 32]
      trainer: {max_epochs: 20}                 # anything else: settings of the search runs only
      data: {pair_sampling: {pairs_per_epoch: 5000}}

Every point trains on the train split and is scored by the method's ``monitor`` on the validation split; the test
split is never touched. The final run uses the best point's values with the method's own settings. The search is
written to ``<out>/grid_search/<dataset>/<method>.json`` with a fingerprint of everything it depends on except
the run seed (search runs use ``seed``, default 0), so the seeds of a suite, and reruns, reuse one search. The
grid itself is parsed and applied by ``benchmark.config`` (``parse_grid``, ``apply``, ``points``); this module only runs it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmark.config import apply, parse_grid, points
from benchmark.results import config_fingerprint

log = logging.getLogger(__name__)


def run_grid_search(spec, *, fit: Callable[..., dict[str, Any]], out_dir: Path, cache_dir: Path) -> tuple[dict[str, Any], Any]:
    """Search, or reuse a finished search; returns (summary for the result file, the final run's spec). ``fit``
    trains one point and scores it on validation (``runner.fit_and_validate``), passed in so this module needs no runner."""
    grid = spec.grid_search
    axes, overrides = parse_grid(grid)
    monitor = spec.method.get("monitor", {"metric": "val/accuracy", "mode": "max"})
    fingerprint = config_fingerprint(spec)  # the grid is part of the spec's effective configuration
    record = Path(out_dir) / "grid_search" / spec.dataset["name"] / f"{spec.method['id']}.json"
    summary = _reusable(record, fingerprint)
    if summary is None:
        search_seed = int(grid.get("seed", 0))
        scored = []
        for number, values in enumerate(points(axes), 1):
            tag = "_".join(f"{k.split('.')[-1]}={v}" for k, v in values.items())
            log.info("grid search %s [%d/%d]: %s", spec.run_id, number, len(points(axes)), tag)
            point_spec = replace(apply(spec, values, overrides), seed=search_seed, logging={"wandb": False})
            outcome = fit(point_spec, out_dir=out_dir, cache_dir=cache_dir, log_dir=Path(out_dir) / "logs" / "grid_search" / spec.dataset["name"] / spec.method["id"] / tag)
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
