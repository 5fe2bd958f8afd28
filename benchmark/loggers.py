"""Loggers for a run: Lightning's CSVLogger always, W&B offline by default; the run's plots as W&B images and,
after a suite, one small W&B run holding the suite's summary table.

W&B never blocks and never asks for a login: unless the suite says ``logging: {wandb: {mode: online}}`` or the
user exported WANDB_MODE themselves, runs are written offline under the run's log folder (``wandb sync`` later).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pytorch_lightning.loggers import CSVLogger, Logger

log = logging.getLogger(__name__)


def _wandb_settings(logging_config: dict) -> tuple[dict | None, str]:
    """The suite's ``logging.wandb`` section (None when W&B is off) and the mode to use; sets WANDB_MODE so no
    W&B call ever asks for a login."""
    wandb_config = logging_config.get("wandb", {})
    if wandb_config is False or (isinstance(wandb_config, dict) and wandb_config.get("enabled", True) is False):
        return None, "disabled"
    wandb_config = wandb_config if isinstance(wandb_config, dict) else {}
    mode = os.environ.get("WANDB_MODE") or wandb_config.get("mode", "offline")
    os.environ["WANDB_MODE"] = mode
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("WANDB_CONSOLE", "off")
    return wandb_config, mode


def build_loggers(log_dir: Path, *, run_name: str, group: str, config: dict, logging_config: dict, synthetic: bool) -> list[Logger]:
    loggers: list[Logger] = [CSVLogger(save_dir=str(log_dir), name="csv", version="")]
    wandb_config, mode = _wandb_settings(logging_config)
    if wandb_config is None:
        return loggers
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


def log_plots_to_wandb(loggers: list[Logger], plots: dict[str, Path]) -> None:
    """Log each plot as a ``wandb.Image`` under ``plots/<name>`` through the run's WandbLogger (none: nothing)."""
    from pytorch_lightning.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger) and plots:
            try:
                import wandb

                logger.experiment.log({f"plots/{name}": wandb.Image(str(path), caption=name) for name, path in plots.items()})
            except Exception as error:
                log.warning("could not log the plots to W&B: %s", error)


SUMMARY_COLUMNS = ("run_id", "method", "dataset", "seed", "synthetic", "n_test_images", "accuracy", "balanced_accuracy", "f1", "auroc", "config_fingerprint")


def summary_rows(results: list[dict]) -> list[list]:
    """One row per result, in SUMMARY_COLUMNS order (a metric a task does not have, e.g. multi-label accuracy: None)."""
    rows = []
    for result in results:
        dataset, metrics = result.get("dataset", {}), result.get("metrics", {})
        row = {"run_id": result.get("run_id"), "method": result.get("method", {}).get("id"), "dataset": dataset.get("name"),
               "seed": result.get("seed"), "synthetic": bool(dataset.get("synthetic")), "n_test_images": result.get("n_test_images"),
               "config_fingerprint": result.get("config_fingerprint"), **{k: metrics.get(k) for k in ("accuracy", "balanced_accuracy", "f1", "auroc")}}
        rows.append([row[column] for column in SUMMARY_COLUMNS])
    return rows


def log_suite_summary(results: list[dict], logging_config: dict, suite_name: str, *, log_dir: Path | None = None,
                      images: dict[str, Path] | None = None) -> None:
    """After a suite: one W&B run (job type ``suite-summary``, in the suite's group) logging a ``wandb.Table`` with
    one row per run and its headline test metrics, and ``images`` (the runs' explanation PNGs), under ``log_dir``
    (offline unless the suite says otherwise).
    Nothing happens when W&B is off or there are no results; a W&B failure is a warning."""
    wandb_config, mode = _wandb_settings(logging_config)
    if wandb_config is None or not results:
        return
    try:
        import wandb

        if log_dir is not None:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
        finish_wandb()  # never log into a run left open
        synthetic = any(result.get("dataset", {}).get("synthetic") for result in results)
        run = wandb.init(project=wandb_config.get("project", "cxr-bench"), entity=wandb_config.get("entity"), group=suite_name,
                         name=f"{suite_name} summary" + (" [SYNTHETIC DATA]" if synthetic else ""), job_type="suite-summary",
                         tags=["synthetic-data"] if synthetic else [], dir=str(log_dir) if log_dir is not None else None, mode=mode,
                         config={"suite": suite_name, "runs": len(results)})
        try:
            run.log({"suite_summary": wandb.Table(columns=list(SUMMARY_COLUMNS), data=summary_rows(results)),
                     **{key: wandb.Image(str(path), caption=key) for key, path in (images or {}).items() if Path(path).is_file()}})
        finally:
            run.finish()
    except Exception as error:  # W&B is a convenience: the results and the leaderboard are already written
        log.warning("could not log the suite summary to W&B: %s", error)


def log_images_run(*, name: str, job_type: str, group: str | None, images: dict[str, Path], summary: dict, logging_config: dict,
                   log_dir: Path, synthetic: bool = False) -> bool:
    """One W&B run of its own (``job_type``: e.g. ``explain``) logging PNGs as ``wandb.Image`` and ``summary`` numbers,
    under ``log_dir`` (offline unless the suite says otherwise). W&B off: nothing; a W&B failure is a warning.
    Returns whether it logged."""
    wandb_config, mode = _wandb_settings(logging_config)
    if wandb_config is None:
        return False
    try:
        import wandb

        Path(log_dir).mkdir(parents=True, exist_ok=True)
        finish_wandb()  # never log into a run left open
        run = wandb.init(project=wandb_config.get("project", "cxr-bench"), entity=wandb_config.get("entity"), group=group,
                         name=name + (" [SYNTHETIC DATA]" if synthetic else ""), job_type=job_type, tags=["synthetic-data"] if synthetic else [],
                         dir=str(log_dir), mode=mode, config={"job": job_type})
        try:
            run.log({key: wandb.Image(str(path), caption=key) for key, path in images.items()})
            run.summary.update({k: v for k, v in summary.items() if v is not None})
        finally:
            run.finish()
        return True
    except Exception as error:  # W&B is a convenience: the files are already written
        log.warning("could not log %s to W&B: %s", name, error)
        return False
