"""Loggers for a run: Lightning's CSVLogger always, W&B offline by default.

W&B never blocks and never asks for a login: unless the suite says ``logging: {wandb: {mode: online}}`` or the
user exported WANDB_MODE themselves, runs are written offline under the run's log folder (``wandb sync`` later).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pytorch_lightning.loggers import CSVLogger, Logger

log = logging.getLogger(__name__)


def build_loggers(log_dir: Path, *, run_name: str, group: str, config: dict, logging_config: dict, synthetic: bool) -> list[Logger]:
    loggers: list[Logger] = [CSVLogger(save_dir=str(log_dir), name="csv", version="")]
    wandb_config = logging_config.get("wandb", {})
    if wandb_config is False or (isinstance(wandb_config, dict) and wandb_config.get("enabled", True) is False):
        return loggers
    wandb_config = wandb_config if isinstance(wandb_config, dict) else {}
    mode = os.environ.get("WANDB_MODE") or wandb_config.get("mode", "offline")
    os.environ["WANDB_MODE"] = mode
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("WANDB_CONSOLE", "off")
    try:
        from pytorch_lightning.loggers import WandbLogger

        tags = ["synthetic-data"] if synthetic else []
        loggers.append(
            WandbLogger(
                project=wandb_config.get("project", "cxr-bench"),
                entity=wandb_config.get("entity"),
                name=run_name + (" [SYNTHETIC DATA]" if synthetic else ""),
                group=group,
                tags=tags,
                save_dir=str(log_dir),
                offline=mode == "offline",
                config=config,
            )
        )
    except Exception as error:  # W&B is a convenience: a broken install must not stop a benchmark
        log.warning("W&B logger unavailable (%s); continuing with the CSV logger only", error)
    return loggers


def finish_wandb() -> None:
    try:
        import wandb

        if wandb.run is not None:
            wandb.finish()
    except Exception as error:
        log.warning("could not close the W&B run cleanly: %s", error)
