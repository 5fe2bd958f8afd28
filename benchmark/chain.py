"""Run a chain: every stage in order, each a list of phases, each phase one ``Trainer.fit``.

Every stage is stored under ``<out>/stages/<name>-<fingerprint>/seed<k>/`` (``stage.json`` and the
model's weights) and, when it is not a run's last stage, reused by every method whose stage has the same fingerprint (benchmark/chain_config.py), as a
finished grid search is: the ChestX-ray14 stage of twice transfer's networks B and C trains once. It is reused only
when its split file and weights still have the recorded sha256.

Within a stage each phase starts from the best checkpoint of the phase before (by the stage's monitor), trains what
it names (lightning_modules/phases.py), and may stop early. The last stage tests the best network of every phase
(twice transfer, Figure 1: the best networks of the phases ending at epochs 10/58/106/154); an earlier stage tests
its final network on its own test split (the transfer paper's ChestX-ray14 AUROC table, Table 1).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only

from benchmark.chain_config import stage_fingerprints
from benchmark.loggers import build_loggers, finish_wandb
from benchmark.progress import SuiteClock, SuiteProgress
from datamodules.atomic import atomic_write_text, file_sha256
from lightning_modules.phases import trainable_count
from lightning_modules.unfreezing import GradualUnfreezing
from lightning_modules.predictions import deduplicate
from lightning_modules.starts import apply_start

log = logging.getLogger(__name__)
STAGE_FILE, WEIGHTS_FILE = "stage.json", "weights.pt"


def stage_spec(spec, stage: dict):
    """The RunSpec one stage trains with: its dataset and settings, the method's network with the stage's head."""
    task = {**spec.method.get("task", {}), "head_activation": stage.get("head")}
    method = {**spec.method, "loss": stage.get("loss"), "monitor": stage.get("monitor") or spec.method.get("monitor"),
              "start_weights": None, "stages": None, "task": task}
    return replace(spec, dataset=stage["dataset"], data=stage["data"], trainer=stage["trainer"], method=method, stages=None, grid_search=None)


def run_chain(spec, *, out_dir: Path, cache_dir: Path, log_dir: Path, progress: SuiteClock | None = None) -> dict[str, Any]:
    """Train or reuse every earlier stage, then train the last; returns what ``runner.run_one`` tests (the last
    phase's trainer and checkpoint, the task and datamodule) and the records of every stage."""
    from benchmark.runner import TrainingThroughput, build_task

    prints = stage_fingerprints(spec.method, spec.stages)
    datamodules = prepare_chain_data(spec, out_dir=out_dir, cache_dir=cache_dir, prints=prints)
    sources: dict[str, dict] = {}
    records = []
    for number, (stage, print_, datamodule) in enumerate(zip(spec.stages, prints, datamodules)):
        last = number == len(spec.stages) - 1
        sub = stage_spec(spec, stage)
        store = stage_store(out_dir, stage, print_, spec.seed)
        reconstruction = stage.get("objective") == "reconstruction"
        if last:
            record = None
        elif reconstruction:  # the pool is drawn from the downstream split: same split and pool file, same stage
            record = reusable_stage(store, print_, None, downstream_sha256=datamodules[-1].split_sha256)
        else:
            record = reusable_stage(store, print_, datamodule.split_sha256)
        if record is not None:
            log.info("stage %s of %s: reusing %s (fingerprint %s)", stage["name"], spec.run_id, store, print_)
            sources[stage["name"]] = {**record, "reused": True}
            records.append({**record, "reused": True})
            continue
        pl.seed_everything(spec.seed, workers=True)
        task = build_reconstruction_task(stage, datamodule) if reconstruction else build_task(sub, datamodule)
        started = apply_start(task, stage["start"], stage.get("keep_outputs") or {}, sources)
        stage_log = log_dir / "stages" / stage["name"] if last else store / "logs"
        name = spec.run_id if last else f"stage {stage['name']} {print_} seed{spec.seed}"
        config = {"suite": spec.suite, "run": spec.run_id, "stage": stage, "method": spec.method.get("id"), "seed": spec.seed}
        loggers = build_loggers(stage_log, run_name=name, group=spec.suite, config=config, logging_config=spec.logging, synthetic=datamodule.is_synthetic)
        throughput = TrainingThroughput()
        phases, trainer, checkpoint, seconds = [], None, None, 0.0
        for index, phase in enumerate(stage["phases"]):
            trainer, checkpoint, phase_seconds, trained = fit_phase(task, datamodule, stage, index, spec=spec, log_dir=stage_log,
                                                                    loggers=loggers, throughput=throughput, progress=progress)
            seconds += phase_seconds
            phases.append({**phase_record(stage, index, trainer, checkpoint, offset=sum(p["epochs_trained"] for p in phases), seconds=phase_seconds),
                           **trained})
            final_phase = index == len(stage["phases"]) - 1
            if not final_phase:
                load_best(task, checkpoint)
                if last:  # the best network of every phase is tested (Figure 1); the run tests the final one
                    phases[-1]["test"] = test_metrics(trainer, task, datamodule, spec.statistics)
                remove_checkpoint(checkpoint)
        record = {"name": stage["name"], "fingerprint": print_, "seed": spec.seed, "dataset": stage_dataset(datamodule),
                  "start": started, "head": task.head_activation, "class_names": list(datamodule.class_names),
                  "phases": phases, "epochs": sum(p["epochs_trained"] for p in phases),
                  "best_validation_score": phases[-1]["best_validation_score"], "train_seconds": round(seconds, 2),
                  "train_images_per_second": throughput.images_per_second, "reused": False}
        load_best(task, checkpoint)
        if reconstruction:
            record.update(reconstruction_record(trainer, task, datamodule, store, loggers))
        elif len(datamodule.frames["test"]) and not last:  # the last stage is tested by the run (record_last_test)
            record["test"] = test_metrics(trainer, task, datamodule, spec.statistics)
        # stored even when last: a later chain may start from it (a ChestX-ray14-only method's stage)
        record = store_stage(store, record, task, checkpoint, keep_checkpoint=last)
        if last:
            record["store"] = str(store)
            records.append(record)
            return {"datamodule": datamodule, "task": task, "trainer": trainer, "checkpoint": checkpoint, "throughput": throughput,
                    "monitor": sub.method["monitor"], "train_seconds": seconds, "resumed_from": None, "stages": records}
        finish_wandb()
        sources[stage["name"]] = record
        records.append(record)
    raise AssertionError("a chain has at least one stage")  # the schema guarantees it


def stage_store(out_dir: Path, stage: dict, print_: str, seed: int) -> Path:
    """Where a stage's weights and record are kept: ``<out>/stages/<name>-<fingerprint>/seed<k>/``."""
    return Path(out_dir) / "stages" / f"{stage['name']}-{print_}" / f"seed{seed}"


def prepare_chain_data(spec, *, out_dir: Path, cache_dir: Path, prints: list[str] | None = None) -> list:
    """Every stage's DataModule, set up, and the chain's class names checked (keep_outputs, expansion) before
    anything trains. An autoencoder stage's is its pretraining pool, drawn from the last stage's train split."""
    from benchmark.runner import build_datamodule

    prints = prints or stage_fingerprints(spec.method, spec.stages)

    datamodules = {}
    for number, stage in reversed(list(enumerate(spec.stages))):  # the last stage first: the pools draw from it
        if stage.get("objective") == "reconstruction":
            datamodules[number] = pretraining_pool(spec, stage, datamodules[len(spec.stages) - 1], out_dir=out_dir, cache_dir=cache_dir,
                                                   store=stage_store(out_dir, stage, prints[number], spec.seed))
            continue
        datamodule = build_datamodule(stage_spec(spec, stage), out_dir=out_dir, cache_dir=cache_dir)
        datamodule.prepare_data()
        datamodule.setup("fit")
        datamodules[number] = datamodule
    datamodules = [datamodules[number] for number in range(len(spec.stages))]
    check_chain_classes(spec.stages, datamodules)
    return datamodules


def pretraining_pool(spec, stage: dict, downstream, *, out_dir: Path, cache_dir: Path, store: Path):
    """An autoencoder stage's images (datamodules/pretraining.py): the downstream train split and the pool's extra
    datasets, minus anything in or copying the downstream val/test split; the pool file is written into the store."""
    from benchmark.runner import build_datamodule
    from datamodules.pretraining import PretrainingPool

    pool, data = stage["pool"], stage["data"]
    own = {k: v for k, v in data.items() if k not in ("class_map", "class_names", "held_out")}  # the downstream task's labels and split are not an extra's
    extras = [build_datamodule(replace(stage_spec(spec, stage), dataset=entry, data=own), out_dir=out_dir, cache_dir=cache_dir) for entry in pool.get("extra", [])]
    # drawn (extras read, copies searched) at its first use: a stored stage is reused without it
    return PretrainingPool(downstream, extras, pool_file=store / "pool.csv", batch_size=data.get("batch_size", 16),
                           eval_batch_size=data.get("eval_batch_size"), channels=data.get("channels", 3),
                           val_fraction=pool.get("val_fraction", 0.1), seed=pool.get("seed", 0), num_workers=data.get("num_workers", 0))


def build_reconstruction_task(stage: dict, datamodule):
    """The autoencoder of a reconstruction stage (lightning_modules/autoencoder.py) at the pool's size and channels."""
    from lightning_modules.autoencoder import ReconstructionTask

    phase = stage["phases"][0]
    return ReconstructionTask(image_size=datamodule.image_size, in_chans=datamodule.channels, model=stage.get("model"),
                              optimizer=phase.get("optimizer"), scheduler=phase.get("scheduler"))


def reconstruction_record(trainer: pl.Trainer, task, datamodule, store: Path, loggers) -> dict[str, Any]:
    """What an autoencoder stage adds to its record: its pool (images per source, what was left out and why), the
    best network's reconstruction metrics on the pool's validation images, and the input/reconstruction grid (PNG)."""
    from lightning_modules.autoencoder import log_image_to_wandb, save_reconstruction_grid

    trainer.test(task, datamodule=datamodule, verbose=False)
    metrics = {key.split("/", 1)[1]: float(value) for key, value in trainer.callback_metrics.items() if key.startswith("test/")}
    grid = None
    if rank_zero_only.rank == 0:
        store.mkdir(parents=True, exist_ok=True)
        grid = save_reconstruction_grid(task.model, datamodule.sample_images(8), store / "reconstructions.png")
        log_image_to_wandb(loggers, "stage/reconstructions", grid)
    described = datamodule.describe()
    return {"pool": {"file": described["split_file"], "sha256": described["split_sha256"], "images": described["images"],
                     "by_source": described["counts"]},
            "reconstruction": {"images": "pool validation", "metrics": metrics}, "reconstruction_grid": None if grid is None else str(grid)}


def check_chain_classes(stages: list[dict], datamodules: list) -> None:
    """Every ``keep_outputs`` names classes of its stage and of its source (an earlier stage, or CheXNet's 14)."""
    from lightning_modules.transfer import check_kept_classes

    classes = {stage["name"]: list(dm.class_names) for stage, dm in zip(stages, datamodules)}
    for stage, datamodule in zip(stages, datamodules):
        keep, start = stage.get("keep_outputs") or {}, stage["start"]
        if keep:
            if start["kind"] == "chexnet":
                from lightning_modules.pretrained import CHEXNET_CLASSES as source
            else:
                source = classes[start["stage"]]
            check_kept_classes(keep, list(datamodule.class_names), list(source), where=f"stage {stage['name']}: ")


def fit_phase(task, datamodule, stage: dict, index: int, *, spec, log_dir: Path, loggers, throughput, progress) -> tuple:
    """One phase: its optimiser, trainable parameters, epochs and early stopping, keeping its best checkpoint.
    Returns (trainer, checkpoint callback, seconds, {trainable_parameters, unfrozen: the unfreezing steps taken})."""
    from benchmark.runner import _trainer_kwargs

    phase = stage["phases"][index]
    label = phase.get("name") or f"phase{index + 1}"
    monitor = stage.get("monitor") or spec.method.get("monitor") or {"metric": "val/accuracy", "mode": "max"}
    task.set_phase(optimizer=phase.get("optimizer") or spec.method.get("optimizer"), scheduler=phase.get("scheduler"))
    checkpoint = ModelCheckpoint(dirpath=log_dir / "checkpoints" / label, filename="best-{epoch}", monitor=monitor["metric"],
                                 mode=monitor["mode"], save_top_k=1, save_last=False, enable_version_counter=False)
    unfreezing = GradualUnfreezing(phase["train"], phase.get("unfreeze") or [])
    callbacks = [checkpoint, unfreezing, throughput]
    stop = phase.get("early_stopping")
    if stop:
        callbacks.append(EarlyStopping(monitor=stop["metric"], mode=stop["mode"], patience=stop["patience"], check_on_train_epoch_end=False))
    if progress is not None:
        callbacks.append(SuiteProgress(progress, spec.run_id, f"{stage['name']}/{label}"))
    trainer = pl.Trainer(callbacks=callbacks, logger=loggers, default_root_dir=str(log_dir),
                         **{**_trainer_kwargs(stage["trainer"]), "max_epochs": phase["epochs"]})
    started = time.perf_counter()
    trainer.fit(task, datamodule=datamodule)
    trainable, total = trainable_count(task.model)  # as the phase left it (its freeze stays until the next phase)
    log.info("%s stage %s %s: %d epochs, %d of %d parameters trained", spec.run_id, stage["name"], label, trainer.current_epoch, trainable, total)
    return trainer, checkpoint, time.perf_counter() - started, {"trainable_parameters": trainable, "unfrozen": unfreezing.history}


def phase_record(stage: dict, index: int, trainer, checkpoint, *, offset: int, seconds: float) -> dict[str, Any]:
    """What a phase did: epochs (and the chain's epoch numbers it spans), best epoch and validation score, settings."""
    from benchmark.runner import _best_epoch

    phase = stage["phases"][index]
    best = _best_epoch(checkpoint)
    best = best + 1 if best is not None else None
    score = checkpoint.best_model_score
    return {"name": phase.get("name") or f"phase{index + 1}", "train": phase["train"], "optimizer": phase.get("optimizer"),
            "scheduler": phase.get("scheduler"), "early_stopping": phase.get("early_stopping"), "unfreeze": phase.get("unfreeze") or [],
            "epochs_planned": phase["epochs"], "epochs_trained": trainer.current_epoch, "first_epoch": offset + 1,
            "last_epoch": offset + trainer.current_epoch, "best_epoch": offset + best if best else None,
            "stopped_early": trainer.current_epoch < phase["epochs"],
            "best_validation_score": float(score) if score is not None else None, "train_seconds": round(seconds, 2)}


def load_best(task, checkpoint: ModelCheckpoint) -> None:
    """The phase's best weights into ``task`` (the next phase starts there; the last one is tested)."""
    if checkpoint.best_model_path:
        state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        task.load_state_dict(state)


def remove_checkpoint(checkpoint: ModelCheckpoint) -> None:
    """An earlier phase's checkpoint once loaded and tested: its numbers stay in the record (saves disk)."""
    if checkpoint.best_model_path and rank_zero_only.rank == 0:
        Path(checkpoint.best_model_path).unlink(missing_ok=True)


def test_metrics(trainer: pl.Trainer, task, datamodule, statistics: dict | None = None) -> dict[str, Any]:
    """The task's current weights scored on the stage's test split (each image once): {"metrics", "ci"}, the CIs
    patient-level bootstrap intervals as for every run (runner.score_test)."""
    from benchmark.runner import score_test

    predictions_path, task.predictions_path = task.predictions_path, None
    trainer.test(task, datamodule=datamodule, verbose=False)
    task.predictions_path = predictions_path
    predictions = task.test_predictions
    index, scores, labels = deduplicate(predictions["index"], predictions["scores"], predictions["labels"])
    evaluation, intervals = score_test(datamodule, index, scores, labels, statistics)
    return {"metrics": evaluation["metrics"], "ci": intervals["ci"]}


def stage_dataset(datamodule) -> dict[str, Any]:
    """The stage's data as a result records it: dataset, split file and hash, counts, classes."""
    described = datamodule.describe()
    record = {k: described.get(k) for k in ("name", "variant", "synthetic", "image_size", "classes", "counts", "split_file", "split_sha256", "multilabel")}
    if "downstream_split_sha256" in described:  # an autoencoder's pool: the split it was drawn from
        record["downstream_split_sha256"] = described["downstream_split_sha256"]
    return record


def store_stage(store: Path, record: dict, task, checkpoint: ModelCheckpoint, *, keep_checkpoint: bool = False) -> dict:
    """Write the stage's weights (the model only) and record beside them (rank 0); the record names both. The phase
    checkpoint is removed unless kept (the run's last stage: the run tests it and records it)."""
    weights = store / WEIGHTS_FILE
    if rank_zero_only.rank == 0:
        store.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": task.model.state_dict(), "class_names": record["class_names"]}, weights)
        record = {**record, "weights": {"path": str(weights.resolve()), "sha256": file_sha256(weights)}}
        atomic_write_text(store / STAGE_FILE, json.dumps(record, indent=2, default=str) + "\n")
        if not keep_checkpoint:
            remove_checkpoint(checkpoint)
    else:
        record = {**record, "weights": {"path": str(weights.resolve()), "sha256": None}}
    return record


def record_last_test(record: dict, test: dict[str, Any]) -> None:
    """The run's own test of its last stage, written into that stage's record and stored ``stage.json`` (rank 0)."""
    record["test"] = test
    record["phases"][-1]["test"] = test
    store = Path(record.pop("store"))
    if rank_zero_only.rank == 0 and (store / STAGE_FILE).is_file():
        atomic_write_text(store / STAGE_FILE, json.dumps(record, indent=2, default=str) + "\n")


def reusable_stage(store: Path, print_: str, split_sha256: str | None, *, downstream_sha256: str | None = None) -> dict | None:
    """The stored stage when its fingerprint, split hash and weights' sha256 still match; else None (trained again).
    An autoencoder stage is matched by the downstream split its pool was drawn from, and its pool file's sha256."""
    try:
        record = json.loads((store / STAGE_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    weights = Path(record.get("weights", {}).get("path", ""))
    dataset = record.get("dataset", {})
    if downstream_sha256 is not None:
        pool = Path((record.get("pool") or {}).get("file", ""))
        same = dataset.get("downstream_split_sha256") == downstream_sha256 and pool.is_file() and file_sha256(pool) == record["pool"].get("sha256")
    else:
        same = dataset.get("split_sha256") == split_sha256
    if record.get("fingerprint") != print_ or not same:
        log.info("stage %s: stored with another configuration or split; training it again", store)
        return None
    if not weights.is_file() or file_sha256(weights) != record["weights"].get("sha256"):
        log.warning("stage %s: its weights are missing or changed; training it again", store)
        return None
    return record
