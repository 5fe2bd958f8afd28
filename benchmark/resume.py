"""Continuing an interrupted run from its last checkpoint (``run --resume``).

A suite's final run saves ``checkpoints/last.ckpt`` after every epoch, beside its ``best-epoch=N.ckpt``, and before
training writes ``run.json`` in its log folder: the configuration fingerprint and seed the checkpoints belong to.
Under ``--resume`` a run without a usable result continues from ``last.ckpt`` (``trainer.fit(ckpt_path=...)``) when
``run.json`` names the same fingerprint and seed; a checkpoint of another configuration is never resumed: the run
starts over and the log says why.

Lightning restores the model, optimizer, scheduler, loop counters and callback states (the best checkpoint's score
and path among them); the datamodule's ``state_dict`` carries the train sampler's epoch and augmentation generators.
The global random states (torch, CUDA, numpy, python) are not restored by Lightning, yet the train DataLoader draws
its shuffle and worker seeds from torch's: ``ResumeState`` saves them in every checkpoint and sets them as the
checkpoint is loaded, before ``FitLoop.setup_data`` creates the first train iterator (Lightning 2.6 creates it
there, before any training hook; the sanity check runs inside ``isolate_rng``). A resumed run then reproduces an
uninterrupted one (tests/test_resume.py); with DataLoader workers, their own streams start afresh (README).
"""

from __future__ import annotations

import csv
import json
import logging
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger

from benchmark.results import changes_text, config_changes, config_fingerprint, effective_config
from datamodules.atomic import atomic_write_text

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
LAST = "last"


def last_checkpoint(dirpath: Path) -> ModelCheckpoint:
    """Saves ``last.ckpt`` after every epoch, replacing the previous one. Listed after the best-checkpoint callback,
    so the state it saves holds that epoch's best score and path."""
    return ModelCheckpoint(dirpath=dirpath, filename=LAST, save_top_k=1, enable_version_counter=False)


def write_run_file(log_dir: Path, spec) -> None:
    """Record which configuration the checkpoints in ``log_dir`` belong to, and where they are (atomically)."""
    record = {"config_fingerprint": config_fingerprint(spec), "seed": spec.seed, "config": effective_config(spec),
              "checkpoints": str((Path(log_dir) / "checkpoints").resolve())}
    atomic_write_text(Path(log_dir) / RUN_FILE, json.dumps(record, indent=2) + "\n")


def checkpoint_to_resume(log_dir: Path, spec) -> Path | None:
    """``last.ckpt`` of ``log_dir`` when it was written with ``spec``'s configuration and seed, else None; the log
    says which, and why a checkpoint is not resumed."""
    last = Path(log_dir) / "checkpoints" / f"{LAST}.ckpt"
    if not last.is_file():
        log.info("%s: no last checkpoint in %s, training from the start", spec.run_id, last.parent)
        return None
    why = _other_run(Path(log_dir) / RUN_FILE, spec)
    if why:
        log.warning("%s: not resuming %s: %s; training from the start", spec.run_id, last, why)
        return None
    log.info("%s: resuming from %s", spec.run_id, last)
    return last


def _other_run(run_file: Path, spec) -> str | None:
    """Why the checkpoints beside ``run_file`` are not ``spec``'s to resume (another fingerprint or seed, no record,
    another folder: Lightning restores the best-checkpoint tracking only where it was saved), or None."""
    try:
        record = json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"no readable record of its configuration ({run_file.name}: {error.__class__.__name__})"
    if record.get("config_fingerprint") == config_fingerprint(spec) and record.get("seed") == spec.seed:
        here = str((run_file.parent / "checkpoints").resolve())
        return None if record.get("checkpoints") == here else f"it was written in {record.get('checkpoints')}, not {here}"
    changes = config_changes(record.get("config") or {}, effective_config(spec))
    if record.get("seed") != spec.seed:
        changes.append(f"seed {record.get('seed')} -> {spec.seed}")
    return f"it was written with another configuration ({changes_text(changes)})"


class ResumeState(pl.Callback):
    """Carries what Lightning does not restore: the global random states, and the seconds trained before the
    checkpoint (a resumed run's ``train_seconds`` counts the epochs its final model went through)."""

    def __init__(self):
        self.resumed_epoch: int | None = None  # the epoch the loaded checkpoint finished (0-based), when resumed
        self.seconds_before = 0.0
        self._fit_started = time.perf_counter()
        self._fitting = False

    def setup(self, trainer, pl_module, stage):
        self._fitting = stage == "fit"  # trainer.test(ckpt_path=...) loads callback states too: not resuming then

    def on_fit_start(self, trainer, pl_module):
        self._fit_started = time.perf_counter()

    @property
    def train_seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self._fit_started

    def state_dict(self) -> dict[str, Any]:
        kind, keys, position, has_gauss, gauss = np.random.get_state()
        return {  # tensors and plain values only: checkpoints load with torch.load(weights_only=True)
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss),
            "python": random.getstate(),
            "train_seconds": self.train_seconds,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Set the random states now: the first train iterator is created before any later hook (module doc)."""
        if not self._fitting:
            return
        torch.set_rng_state(state_dict["torch"])
        if state_dict["cuda"] and len(state_dict["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
        kind, keys, position, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
        random.setstate(state_dict["python"])
        self.seconds_before = float(state_dict["train_seconds"])

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        if self._fitting:
            self.resumed_epoch = int(checkpoint["epoch"])


class ContinuedCsvLog(pl.Callback):
    """Keeps the CSV log of a resumed run whole. Rows are flushed to disk as every epoch starts, so the file holds
    the epochs a checkpoint covers; a resumed run logs again those of the epochs up to its checkpoint. They are
    read when this callback is made, before ``trainer.fit``: Lightning's CSV writer deletes the file as it opens it."""

    def __init__(self, loggers: list):
        self.earlier = {id(logger): _rows(Path(logger.log_dir) / "metrics.csv") for logger in loggers if isinstance(logger, CSVLogger)}

    def on_train_epoch_start(self, trainer, pl_module):
        for logger in _csv_loggers(trainer):
            logger.save()

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn != "fit":  # trainer.test(ckpt_path=...) loads a checkpoint too
            return
        for logger in _csv_loggers(trainer):
            for row in self.earlier.get(id(logger), []):
                if row["epoch"] <= checkpoint["epoch"]:
                    row = dict(row)
                    step = row.pop("step", None)
                    logger.experiment.log_metrics(row, None if step is None else int(step))


def _csv_loggers(trainer) -> list[CSVLogger]:
    return [logger for logger in trainer.loggers if isinstance(logger, CSVLogger)]


def _rows(path: Path) -> list[dict[str, int | float | str]]:
    """The rows of a CSV metrics file that name their epoch, empty cells left out."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [{key: _number(value) for key, value in row.items() if key and value not in ("", None)} for row in csv.DictReader(handle)]
    return [row for row in rows if isinstance(row.get("epoch"), (int, float))]


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
