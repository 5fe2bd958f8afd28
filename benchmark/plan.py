"""``run --dry-run``: a suite's expanded plan and how long it will take on this machine, without training.

Every run is listed with its dataset, method, seed and stage (a grid search's points are a stage of their own, and
so is every stage of a chain; one that an earlier run of the suite trains is listed as shared, at no cost),
its training images per epoch and epochs. The time comes from a few timed optimisation steps and evaluation
batches of each distinct model (same method settings, image size and batch size), run through the same Lightning
Trainer, DataModule and batches as a real run, then scaled by the run's batch counts. Cache and split are built
(or reused) as a run would; nothing is trained for more than those few steps and nothing is written to the results.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytorch_lightning as pl

from benchmark.config import apply, parse_grid, points

log = logging.getLogger(__name__)
OVERHEAD_SECONDS = 5.0  # per run: building the module, checkpoint writes, testing set-up, result files
EXPLAIN_OVERHEAD_SECONDS = 3.0  # a suite's ``explain:`` per run: figures, t-SNE and SOM, the probes' bootstrap
EXPLAIN_PASSES = 7.0  # forward passes per sampled image: scores, two masks, text, features, Grad-CAM (forward and backward)
PHASE_SECONDS = 4.0  # per phase of a chain after its first: a Trainer, its sanity check, the phase's test and its CIs
TIMED_STEPS = 3  # optimisation steps timed after one warm-up step


@dataclass
class PlannedStage:
    """One training of a run: the final training, or one grid-search point."""

    name: str
    epochs: int
    train_batches: int
    train_images: int  # per epoch
    val_batches: int
    test_batches: int
    seconds: float = 0.0


@dataclass
class PlannedRun:
    run_id: str
    dataset: str
    method: str
    seed: int
    stages: list[PlannedStage] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(stage.seconds for stage in self.stages) + OVERHEAD_SECONDS


def _limit(batches: int, limit) -> int:
    """Lightning's limit_*_batches: an int caps the count, a float is a fraction of it."""
    if limit is None:
        return batches
    return min(batches, int(limit)) if isinstance(limit, int) and not isinstance(limit, bool) else int(batches * float(limit))


def _model_key(spec) -> str:
    settings = {k: spec.method.get(k) for k in ("method", "model", "task", "loss", "optimizer")}
    settings["data"] = {k: spec.data.get(k) for k in ("image_size", "batch_size", "eval_batch_size", "pair_sampling", "num_workers")}
    settings["trainer"] = {k: spec.trainer.get(k) for k in ("precision", "accelerator", "devices")}
    return json.dumps(settings, sort_keys=True, default=str)


class _StepClock(pl.Callback):
    """Wall-clock seconds per training batch (loading included) after a warm-up, and per validation batch."""

    def __init__(self):
        self.train, self.val = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._train_started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.train.append(time.perf_counter() - self._train_started)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._val_started = time.perf_counter()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.val.append(time.perf_counter() - self._val_started)


def time_steps(spec, datamodule, stage: dict | None = None) -> tuple[float, float]:
    """(seconds per training batch, seconds per evaluation batch) of ``spec``'s model (an autoencoder ``stage``'s
    own) on this machine: one warm-up and TIMED_STEPS timed steps of a real Lightning fit on the run's own batches,
    then a few validation batches."""
    from benchmark.chain import build_reconstruction_task
    from benchmark.runner import _trainer_kwargs, build_task

    pl.seed_everything(spec.seed, workers=True)
    task = build_reconstruction_task(stage, datamodule) if stage else build_task(spec, datamodule)
    clock = _StepClock()
    kwargs = _trainer_kwargs(spec.trainer)
    for key in ("max_epochs", "max_steps", "limit_train_batches", "limit_val_batches", "limit_test_batches", "num_sanity_val_steps",
                "enable_progress_bar", "enable_model_summary", "check_val_every_n_epoch", "log_every_n_steps"):
        kwargs.pop(key, None)
    with tempfile.TemporaryDirectory() as scratch:
        trainer = pl.Trainer(max_steps=TIMED_STEPS + 1, limit_train_batches=TIMED_STEPS + 1, limit_val_batches=TIMED_STEPS + 1, num_sanity_val_steps=0,
                             logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                             callbacks=[clock], default_root_dir=scratch, **kwargs)
        trainer.fit(task, datamodule=datamodule)
    train = clock.train[1:] or clock.train
    val = clock.val[1:] or clock.val
    return sum(train) / len(train), (sum(val) / len(val) if val else 0.0)


def _stage(name: str, spec, datamodule, train_seconds: float, eval_seconds: float) -> PlannedStage:
    trainer = spec.trainer
    train_batches = _limit(len(datamodule.train_dataloader()), trainer.get("limit_train_batches"))
    val_batches = _limit(len(datamodule.val_dataloader()), trainer.get("limit_val_batches"))
    test_batches = _limit(len(datamodule.test_dataloader()), trainer.get("limit_test_batches"))
    epochs = int(trainer.get("max_epochs") or 1)
    if trainer.get("max_steps", -1) not in (-1, None):
        epochs = min(epochs, math.ceil(int(trainer["max_steps"]) / max(train_batches, 1)))
    per_batch = spec.data.get("pair_sampling") and spec.data.get("batch_size")  # siamese: pairs per batch
    images = train_batches * (per_batch or datamodule.batch_size)
    validations = epochs // int(trainer.get("check_val_every_n_epoch") or 1)
    seconds = epochs * train_batches * train_seconds + (validations * val_batches + test_batches) * eval_seconds
    return PlannedStage(name, epochs, train_batches, images, val_batches, test_batches, seconds)


def plan_suite(suite, *, out_dir: Path, cache_dir: Path) -> list[PlannedRun]:
    """The plan of every run of ``suite`` with its time estimate (see the module doc)."""
    from benchmark.runner import build_datamodule

    timings: dict[str, tuple[float, float]] = {}
    trained: dict[tuple[str, int], int] = {}  # a chain stage's (fingerprint, seed) -> the run that trains it
    plan = []
    for number, spec in enumerate(suite.runs, 1):
        specs = [("train", spec, None)]
        if spec.grid_search:
            axes, overrides = parse_grid(spec.grid_search)
            specs = [(f"grid {values}", apply(spec, values, overrides), None) for values in points(axes)] + specs
        if spec.stages:
            specs = _chain_stages(spec, trained, number)
        run = PlannedRun(spec.run_id, spec.dataset["name"], spec.method["id"], spec.seed)
        for name, stage_spec, stage in specs:
            if stage_spec is None:  # a stage an earlier run of the suite trains and stores
                run.stages.append(PlannedStage(name, 0, 0, 0, 0, 0))
                continue
            stage_spec = replace(stage_spec, logging={"wandb": False})
            datamodule = build_datamodule(stage_spec, out_dir=Path(out_dir), cache_dir=Path(cache_dir))
            datamodule.prepare_data()
            datamodule.setup("fit")
            autoencoder = stage if stage and stage.get("objective") == "reconstruction" else None
            if autoencoder:  # its pool (drawn from this downstream split) and its own network
                from benchmark.chain import pretraining_pool

                scratch = Path(tempfile.mkdtemp(prefix="plan-pool-"))
                datamodule = pretraining_pool(spec, stage, datamodule, out_dir=Path(out_dir), cache_dir=Path(cache_dir), store=scratch)
                datamodule.setup("fit")
            key = _model_key(stage_spec) + (json.dumps(autoencoder.get("model"), sort_keys=True) if autoencoder else "")
            if key not in timings:
                timings[key] = time_steps(stage_spec, datamodule, autoencoder)
                log.info("timed %s (%s): %.3f s per training batch, %.3f s per evaluation batch", stage_spec.method["id"], name, *timings[key])
            planned = _stage(name, stage_spec, datamodule, *timings[key])
            if autoencoder:
                shutil.rmtree(scratch, ignore_errors=True)
            planned.seconds += phase_overhead(name)
            run.stages.append(planned)
        if spec.explain:  # after the test, on the last stage's data and model (benchmark/explain/)
            run.stages.append(_explain_stage(spec.explain, datamodule, timings[key][1]))
        plan.append(run)
    return plan


def _explain_stage(settings: dict, datamodule, eval_seconds: float) -> PlannedStage:
    """The explanations' estimate: the probe sample's forward passes at the timed evaluation speed, plus figures."""
    targets, classes = datamodule.datasets["test"].targets, len(datamodule.class_names)
    per_class = int(settings["probe_images"])
    if datamodule.multilabel:
        images = min(len(targets), per_class * min(3, classes))
    else:
        images = sum(min(per_class, int((targets == c).sum())) for c in range(classes))
    batches = -(-images // datamodule.eval_batch_size)
    return PlannedStage("explain", 0, 0, 0, 0, batches, EXPLAIN_OVERHEAD_SECONDS + EXPLAIN_PASSES * batches * eval_seconds)


def _chain_stages(spec, trained: dict, number: int) -> list[tuple[str, object, dict]]:
    """(name, spec, stage) per stage of a chain, its epochs the sum of its phases' (early stopping may end them sooner); a
    stage an earlier run trains (same fingerprint and seed) is (name, None, stage): it is reused, not trained again."""
    from benchmark.chain import stage_spec
    from benchmark.chain_config import stage_fingerprints

    stages = []
    for index, (stage, print_) in enumerate(zip(spec.stages, stage_fingerprints(spec.method, spec.stages))):
        last = index == len(spec.stages) - 1
        key = (print_, spec.seed)
        if key in trained and not last:
            stages.append((f"{stage['name']}: shared, run {trained[key]}", None, stage))
            continue
        trained.setdefault(key, number)
        sub = stage_spec(spec, stage)
        epochs = sum(phase["epochs"] for phase in stage["phases"])
        phases = len(stage["phases"])
        stages.append((f"{stage['name']} ({phases} phase{'s' if phases > 1 else ''})", replace(sub, trainer={**sub.trainer, "max_epochs": epochs}), stage))
    return stages


def phase_overhead(name: str) -> float:
    """The fixed cost of a chain stage's phases after the first (``_chain_stages`` names them ``"<stage> (k phases)"``)."""
    found = re.search(r"\((\d+) phases?\)$", name)
    return PHASE_SECONDS * (int(found.group(1)) - 1) if found else 0.0


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def format_plan(plan: list[PlannedRun], *, suite_name: str) -> str:
    lines = [f"Plan of suite {suite_name}: {len(plan)} run(s) (dry run: nothing is trained beyond a few timed steps)", "",
             f"{'#':>3}  {'run':<52} {'stage':<28} {'img/epoch':>9} {'epochs':>6} {'estimate':>9}"]
    for number, run in enumerate(plan, 1):
        for stage in run.stages:
            lines.append(f"{number:>3}  {run.run_id:<52} {stage.name[:28]:<28} {stage.train_images:>9} {stage.epochs:>6} {format_duration(stage.seconds):>9}")
    total = sum(run.seconds for run in plan)
    lines += ["", f"Estimated total: {format_duration(total)} ({total:.0f} s, including {OVERHEAD_SECONDS:.0f} s per run of set-up; "
              "external sets and first-time caching not included; a suite's explanations are the `explain` rows)"]
    return "\n".join(lines)
