"""Execute one RunSpec: build the DataModule and the method, train with a Lightning Trainer keeping the best
checkpoint by the validation metric, test that checkpoint, and write the result JSON and test predictions.
A spec with a ``grid_search`` first searches on the validation split (``benchmark.grid_search``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only

from benchmark.evaluate import evaluate
from benchmark.grid_search import run_grid_search
from benchmark.loggers import build_loggers, finish_wandb
from benchmark.plots import plot_run
from benchmark.progress import SuiteClock, SuiteProgress
from benchmark.resume import ContinuedCsvLog, ResumeState, checkpoint_to_resume, last_checkpoint, write_run_file
from benchmark.statistics import bootstrap_metrics
from benchmark.results import config_fingerprint, effective_config, result_path, write_result
from datamodules import get_datamodule_class
from datamodules import CXRDataModule
from datamodules.atomic import file_sha256
from lightning_modules import get_task_class
from lightning_modules.predictions import deduplicate

log = logging.getLogger(__name__)

DATA_KEYS = (
    "image_size", "batch_size", "eval_batch_size", "num_workers", "split_seed", "val_fraction", "test_fraction",
    "augmentation", "augment_classes", "normalization", "channels", "balanced_sampling", "expansion", "class_names", "class_map",
    "balanced_per_class", "lung_crop", "held_out",
)


class TrainingThroughput(pl.Callback):
    """Training images per second over the time spent in training steps (data loading excluded); on a GPU the clock
    is read after a CUDA synchronisation, so a step's queued kernels count in the step that launched them."""

    def __init__(self):
        self.images = 0
        self.pairs = 0  # siamese batches also carry pairs
        self.seconds = 0.0
        self._fitting = False

    @staticmethod
    def _clock(pl_module) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        return time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._started = self._clock(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seconds += self._clock(pl_module) - self._started
        self.images += len(batch["image"]) * trainer.world_size
        if "left" in batch:
            self.pairs += len(batch["left"]) * trainer.world_size

    def setup(self, trainer, pl_module, stage):
        self._fitting = stage == "fit"

    def state_dict(self) -> dict[str, float]:  # in checkpoints: a resumed run's rates cover all its epochs
        return {"images": self.images, "pairs": self.pairs, "seconds": self.seconds}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        if self._fitting:  # trainer.test(ckpt_path=...) loads callback states too: the rates stay this fit's
            self.images, self.pairs, self.seconds = state_dict["images"], state_dict["pairs"], state_dict["seconds"]

    @property
    def images_per_second(self) -> float | None:
        return self.images / self.seconds if self.seconds else None

    @property
    def pairs_per_second(self) -> float | None:
        return self.pairs / self.seconds if self.seconds and self.pairs else None


def build_datamodule(spec, *, out_dir: Path, cache_dir: Path) -> CXRDataModule:
    return datamodule_for(spec.dataset, spec.data, cache_dir=cache_dir, split_dir=out_dir / "splits", seed=spec.seed)


def datamodule_for(entry: dict, data: dict, *, cache_dir: Path, split_dir: Path | None, seed: int) -> CXRDataModule:
    """The DataModule of a suite's dataset ``entry`` with data settings ``data`` (split files under ``split_dir``)."""
    cls = get_datamodule_class(entry["name"])
    kwargs = {k: data[k] for k in (*DATA_KEYS, "pair_sampling") if k in data}
    kwargs.update(entry.get("options", {}))
    if "root" in entry:
        root = Path(entry["root"])
    elif entry.get("data_root"):
        root = cls.locate(entry["data_root"])
    else:
        root = None  # the synthetic set lives in the cache folder
    return cls(root, cache_dir=cache_dir, split_dir=split_dir or Path(cache_dir) / "splits", sampling_seed=seed, **kwargs)


def build_task(spec, datamodule: CXRDataModule) -> pl.LightningModule:
    method = spec.method
    cls = get_task_class(method["method"])
    return cls(
        class_names=datamodule.class_names,
        multilabel=datamodule.multilabel,
        image_size=datamodule.image_size,
        in_chans=datamodule.channels,
        model=method.get("model"),
        loss=method.get("loss"),
        optimizer=method.get("optimizer"),
        scheduler=method.get("scheduler"),
        start_weights=method.get("start_weights"),
        **method.get("task", {}),
    )


def _trainer_kwargs(trainer_config: dict) -> dict:
    config = dict(trainer_config)
    config.setdefault("accelerator", "auto")
    config.setdefault("devices", 1)
    config.setdefault("strategy", "auto")
    config.setdefault("precision", "32-true")
    config.setdefault("max_epochs", 1)
    config.setdefault("deterministic", "warn")
    config.setdefault("log_every_n_steps", 10)
    return config


def _fit(spec, *, out_dir: Path, cache_dir: Path, log_dir: Path, resumable: bool = False, resume: bool = False,
         progress: SuiteClock | None = None, stage: str = "train") -> dict[str, Any]:
    """Seed, build, train with best-checkpoint tracking; the pieces a test or a grid point needs. A ``resumable`` run
    (a suite's final run) also saves its last checkpoint every epoch; with ``resume`` it continues from one written
    with the same configuration and seed, else it starts clean (benchmark/resume.py)."""
    pl.seed_everything(spec.seed, workers=True)
    datamodule = build_datamodule(spec, out_dir=out_dir, cache_dir=cache_dir)
    datamodule.prepare_data()
    datamodule.setup("fit")
    task = build_task(spec, datamodule)
    monitor = spec.method.get("monitor", {"metric": "val/accuracy", "mode": "max"})

    ckpt_path = checkpoint_to_resume(log_dir, spec) if resume else None
    if rank_zero_only.rank == 0 and ckpt_path is None:  # a fresh start: no stale checkpoint or CSV log from an earlier run
        shutil.rmtree(log_dir, ignore_errors=True)
        if resumable:
            write_run_file(log_dir, spec)
    checkpoint = ModelCheckpoint(dirpath=log_dir / "checkpoints", filename="best-{epoch}", monitor=monitor["metric"], mode=monitor["mode"], save_top_k=1, save_last=False, enable_version_counter=False)
    config = {"suite": spec.suite, "method": spec.method, "dataset": spec.dataset, "seed": spec.seed, "data": spec.data, "trainer": spec.trainer}
    loggers = build_loggers(log_dir, run_name=spec.run_id, group=spec.suite, config=config, logging_config=spec.logging, synthetic=datamodule.is_synthetic)
    throughput, state = TrainingThroughput(), ResumeState()
    callbacks = [checkpoint, throughput, state] + ([last_checkpoint(log_dir / "checkpoints"), ContinuedCsvLog(loggers)] if resumable else [])
    if progress is not None:  # the suite's line above Lightning's bar: run k of n, elapsed, time left
        callbacks.append(SuiteProgress(progress, spec.run_id, stage))
    trainer = pl.Trainer(callbacks=callbacks, logger=loggers, default_root_dir=str(log_dir), **_trainer_kwargs(spec.trainer))

    trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path)
    resumed_from = {"checkpoint": str(ckpt_path), "epoch": state.resumed_epoch} if ckpt_path else None
    return {"datamodule": datamodule, "task": task, "trainer": trainer, "checkpoint": checkpoint, "throughput": throughput,
            "monitor": monitor, "train_seconds": state.train_seconds, "resumed_from": resumed_from}


def fit_and_validate(spec, *, out_dir: Path, cache_dir: Path, log_dir: Path) -> dict[str, Any]:
    """Train only (a grid point): the best validation score and its epoch; the test split is not touched."""
    fitted = _fit(spec, out_dir=out_dir, cache_dir=cache_dir, log_dir=log_dir)
    finish_wandb()
    checkpoint = fitted["checkpoint"]
    score = checkpoint.best_model_score
    return {"best_validation_score": float(score) if score is not None else None, "best_epoch": _best_epoch(checkpoint),
            "epochs_trained": fitted["trainer"].current_epoch, "train_seconds": round(fitted["train_seconds"], 2)}


def run_one(spec, *, out_dir: Path, cache_dir: Path, command: str | None = None, resume: bool = False,
            progress: SuiteClock | None = None) -> dict[str, Any] | None:
    """Train and test one (dataset, method, seed); returns the result dict on rank 0 (None elsewhere).
    ``command`` is the command line that started the suite, recorded so the leaderboard can cite it; with ``resume``
    an interrupted training continues from its last checkpoint (benchmark/resume.py)."""
    requested, search = spec, None  # the suite's spec: its fingerprint decides --resume, whatever a search chooses
    if spec.grid_search:
        search, spec = run_grid_search(spec, fit=fit_and_validate, out_dir=out_dir, cache_dir=cache_dir)
    if spec.stages:  # a chain: earlier stages trained or reused, the last one's phases trained (benchmark/chain.py)
        from benchmark.chain import run_chain

        fitted = run_chain(spec, out_dir=out_dir, cache_dir=cache_dir, log_dir=out_dir / "logs" / spec.run_id, progress=progress)
    else:
        fitted = _fit(spec, out_dir=out_dir, cache_dir=cache_dir, log_dir=out_dir / "logs" / spec.run_id, resumable=True, resume=resume, progress=progress)
    datamodule, task, trainer, checkpoint, throughput, monitor = (fitted[k] for k in ("datamodule", "task", "trainer", "checkpoint", "throughput", "monitor"))
    best_path = checkpoint.best_model_path or None
    predictions_path = out_dir / "logs" / spec.run_id / "test_predictions.pt"
    task.predictions_path = str(predictions_path)
    trainer.test(task, datamodule=datamodule, ckpt_path=best_path or None, verbose=False)
    if not trainer.is_global_zero:
        finish_wandb()
        return None

    predictions = torch.load(predictions_path, weights_only=True)  # each test image once, whatever the ranks
    index, scores, labels = deduplicate(predictions["index"], predictions["scores"], predictions["labels"])
    plots = plot_run(trainer, scores, labels, datamodule, out_dir=out_dir, run_id=spec.run_id) if (spec.logging or {}).get("plots", True) else {}  # before W&B closes
    finish_wandb()
    evaluation, intervals = score_test(datamodule, index, scores, labels, spec.statistics)
    predictions_file = out_dir / "predictions" / f"{spec.run_id}.csv"
    _write_predictions(predictions_file, datamodule, index, scores, labels)
    result = {
        "suite": spec.suite,
        "run_id": spec.run_id,
        "method": {k: spec.method.get(k) for k in ("id", "method", "title", "paper", "profile", "deviations", "model", "loss", "optimizer", "scheduler", "task", "file")},
        "dataset": {**datamodule.describe(), "stands_in_for": spec.dataset.get("stands_in_for")},
        "seed": spec.seed,
        "data_settings": spec.data,
        "trainer_settings": {k: v for k, v in _trainer_kwargs(spec.trainer).items()},
        "start_weights": task.start_weights,
        # the tested model and its input statistics: what `python -m benchmark evaluate` scores other datasets with
        "checkpoint": {"path": best_path, "sha256": file_sha256(best_path)} if best_path else None,
        "normalization": datamodule.input_normalization(),
        "metrics": evaluation["metrics"],
        "ci": intervals["ci"],  # 95% patient-level bootstrap intervals of every metric (benchmark/statistics.py)
        "bootstrap": intervals["bootstrap"],
        "confusion_matrix": evaluation.get("confusion_matrix"),
        "n_test_images": evaluation["n_images"],
        "monitor": monitor,
        "best_epoch": _best_epoch(checkpoint),
        "best_validation_score": float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else None,
        "epochs_trained": trainer.current_epoch,
        "train_seconds": round(fitted["train_seconds"], 2),
        "resumed_from": fitted["resumed_from"],  # how training started: None = from scratch
        "train_images_per_second": throughput.images_per_second,
        "parameter_count": sum(p.numel() for p in task.parameters()),
        "device": _device_description(trainer),
        "predictions_file": str(predictions_file),
        "plots": plots,
        "environment": _environment(),
        "command": command,
    }
    result["config"] = effective_config(requested)  # validated, defaults filled; a search's choice is in grid_search
    result["config_fingerprint"] = config_fingerprint(requested)
    if throughput.pairs_per_second:
        result["train_pairs_per_second"] = throughput.pairs_per_second
    if spec.stages:
        _chain_fields(result, fitted["stages"], evaluation["metrics"], intervals["ci"])
    if search is not None:
        result["grid_search"] = search
    if spec.draw:  # a fair sweep's draw: its number, values and budget (benchmark/tuning.py)
        result["tuning"] = spec.draw
    held_out = {**spec.data["held_out"], **(result["dataset"].get("held_out") or {})} if spec.data.get("held_out") else None
    result["selection"] = selection_record(held_out)  # with the validation source the split resolved
    if held_out:  # the metrics above are the held-out source's; the in-source test beside them
        result["held_out"] = {**held_out, "in_source": score_in_source(task, datamodule, spec.statistics)}
    if spec.leaderboard:
        result["leaderboard_options"] = spec.leaderboard
    write_result(result_path(out_dir, spec.run_id), result)
    if spec.external:  # the suite's external test sets, scored with this run's checkpoint (benchmark/external/evaluate_set.py)
        from benchmark.external.evaluate_set import evaluate_suite_externals

        evaluate_suite_externals(spec, result_path(out_dir, spec.run_id), cache_dir=cache_dir, datamodule=datamodule, command=command)
    if spec.explain:  # heatmaps, latent maps and shortcut probes (benchmark/explain/), beside the result
        from benchmark.explain.run import explain_suite_run

        explain_suite_run(spec, result_path(out_dir, spec.run_id), cache_dir=cache_dir, datamodule=datamodule, task=task, command=command)
    return result


def selection_record(held_out: dict | None) -> dict[str, Any]:
    """The rule the run's checkpoint was chosen by (benchmark/selection.py chooses its configuration later)."""
    if held_out and held_out.get("validation") == "source":
        return {"checkpoint": "leave-one-source-out-validation", "val_source": held_out.get("val_source")}
    return {"checkpoint": "validation", "val_source": None}


def score_in_source(task, datamodule: CXRDataModule, statistics: dict | None) -> dict[str, Any] | None:
    """A leave-one-source-out run's in-source test (the training sources' own test patients, WILDS's ID test):
    metrics, patient-level CIs and size; None when the split holds no such patient."""
    from benchmark.external.trained_run import score_loader

    if len(datamodule.frames.get("test_in_source", ())) == 0:
        return None
    scores, labels = score_loader(task, datamodule.in_source_test_dataloader(), datamodule)
    try:
        evaluation, intervals = score_test(datamodule, torch.arange(len(labels)), scores, labels, statistics, split="test_in_source")
    except ValueError as error:  # too few patients to resample (a tiny source): the numbers without their CIs
        log.warning("in-source test of %s: no confidence intervals (%s)", datamodule.name, error)
        evaluation, intervals = evaluate(scores, labels, datamodule.class_names, multilabel=datamodule.multilabel), {"ci": {}}
    return {"metrics": evaluation["metrics"], "ci": intervals["ci"], "n_images": evaluation["n_images"]}


def score_test(datamodule: CXRDataModule, index, scores, labels, statistics: dict | None, split: str = "test") -> tuple[dict, dict]:
    """(evaluation, bootstrap summary) of de-duplicated test predictions: the metrics and their patient-level CIs."""
    evaluation = evaluate(scores, labels, datamodule.class_names, multilabel=datamodule.multilabel)
    patients = datamodule.frames[split]["patient_id"].to_numpy()[index.numpy()]
    intervals = bootstrap_metrics(scores.numpy(), labels.numpy(), patients, datamodule.class_names, multilabel=datamodule.multilabel, **(statistics or {}))
    if getattr(datamodule, "held_out", None) and not datamodule.multilabel:  # a whole source may lack a class: macro values over those present
        evaluation, intervals = _over_present_classes(datamodule, evaluation, intervals, scores, labels)
    return evaluation, intervals


def _over_present_classes(datamodule: CXRDataModule, evaluation: dict, intervals: dict, scores, labels) -> tuple[dict, dict]:
    """A source-split test's metrics read over the classes it holds (benchmark/external/metrics.py: a class without
    images has no sensitivity, and balanced accuracy and macro AUROC average the others), keeping only the CIs whose
    metric the bootstrap computed the same way."""
    from benchmark.external.metrics import present_class_metrics

    if len(torch.unique(labels)) == datamodule.num_classes:
        return evaluation, intervals
    metrics = present_class_metrics(evaluation["metrics"], scores, labels, datamodule.class_names, multilabel=False)
    same = lambda name: metrics.get(name) is not None and intervals["metrics"].get(name) is not None and abs(metrics[name] - intervals["metrics"][name]) < 1e-6
    return {**evaluation, "metrics": metrics}, {**intervals, "ci": {name: ci for name, ci in intervals["ci"].items() if same(name)}}


def _chain_fields(result: dict, stages: list[dict], metrics: dict, ci: dict) -> None:
    """A chain's result: every stage's record, the last stage's phases (its final phase tested by the run itself), and
    epochs counted over the whole last stage."""
    from benchmark.chain import record_last_test

    final = stages[-1]
    record_last_test(final, {"metrics": metrics, "ci": ci})
    result["stages"] = stages
    result["phases"] = final["phases"]
    result["start_weights"] = final["start"]
    result["epochs_trained"] = final["epochs"]
    result["best_epoch"] = final["phases"][-1]["best_epoch"]
    result["train_seconds"] = final["train_seconds"]


def _best_epoch(checkpoint: ModelCheckpoint) -> int | None:
    """The epoch of the best checkpoint, from its file name (``best-epoch=N.ckpt``): no need to unpickle it."""
    found = re.search(r"epoch=(\d+)", Path(checkpoint.best_model_path).stem) if checkpoint.best_model_path else None
    return int(found.group(1)) if found else None


def _write_predictions(path: Path, datamodule: CXRDataModule, index, scores, labels) -> None:
    frame = datamodule.frames["test"].iloc[index.numpy()]
    table = pd.DataFrame({"image": frame["image"].to_numpy(), "patient_id": frame["patient_id"].to_numpy(), "label": frame["label"].to_numpy()})
    for column, name in enumerate(datamodule.class_names):
        table[f"score_{name}"] = scores[:, column].numpy()
    from datamodules.atomic import atomic_path

    with atomic_path(path) as tmp:  # a reader never sees half a CSV
        table.to_csv(tmp, index=False, float_format="%.6f")


def _device_description(trainer: pl.Trainer) -> str:
    accelerator = type(trainer.accelerator).__name__.replace("Accelerator", "").lower()
    name = torch.cuda.get_device_name(0) if accelerator == "cuda" else f"{os.cpu_count()} CPU cores"
    return f"{trainer.world_size} x {accelerator} ({name}), strategy {type(trainer.strategy).__name__}"


def _environment() -> dict[str, str]:
    import platform

    import torchmetrics

    return {"python": platform.python_version(), "torch": torch.__version__, "pytorch_lightning": pl.__version__, "torchmetrics": torchmetrics.__version__}
