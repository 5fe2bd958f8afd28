"""How a suite's runs are started: one after another in this process (``local``), or each as a submitit job on SLURM
or as a local process (``submitit``). Every run writes its own ``<out>/results/<run_id>.json`` atomically, so the
jobs share one result store and the caller writes the leaderboard once they are all done.

Runs go in dependency waves: a run that names ``prerequisites`` (run ids, e.g. a shared pretraining stage) starts
only after they finished, in a later wave. Each wave's jobs are awaited before the next wave is submitted; that is
all the scheduling done here, the rest is the cluster's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import submitit

from benchmark.config import ConfigError
from benchmark.progress import SuiteClock

log = logging.getLogger(__name__)


def prerequisites(spec) -> tuple[str, ...]:
    """The run ids ``spec`` needs finished first (none yet: a coming pretraining stage will name them)."""
    return tuple(getattr(spec, "prerequisites", None) or ())


def waves(specs: list, *, done: Iterable[str] = (), needs: Callable[[Any], Iterable[str]] = prerequisites) -> list[list]:
    """``specs`` grouped into waves, in suite order within each: every run's prerequisites are in earlier waves or
    in ``done`` (finished already, e.g. skipped by --resume). An unknown prerequisite or a cycle is a ConfigError."""
    finished, pending, grouped = set(done), list(specs), []
    known = finished | {spec.run_id for spec in specs}
    for spec in specs:
        unknown = [run_id for run_id in needs(spec) if run_id not in known]
        if unknown:
            raise ConfigError(f"run {spec.run_id} needs {', '.join(unknown)}, which is not a run of this suite")
    while pending:
        ready = [spec for spec in pending if set(needs(spec)) <= finished]
        if not ready:
            raise ConfigError(f"prerequisites form a cycle among {', '.join(spec.run_id for spec in pending)}")
        grouped.append(ready)
        finished |= {spec.run_id for spec in ready}
        pending = [spec for spec in pending if spec.run_id not in finished]
    return grouped


@dataclass
class Failure:
    """A run that did not finish: the error's last line, and where the job's full stderr is (None: in this process)."""

    run_id: str
    error: str
    stderr: str | None = None

    def __str__(self) -> str:
        return f"run {self.run_id} failed: {self.error}" + (f" (stderr: {self.stderr})" if self.stderr else "")


def run_job(spec, options: dict[str, Any]) -> dict | None:
    """One run, in a job's own process: train, test and write the result; its metrics (None on ranks other than 0)."""
    from benchmark.runner import run_one

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = run_one(spec, **options)
    return None if result is None else result["metrics"]


def _log_metrics(run_id: str, metrics: dict | None) -> None:
    if metrics is not None:
        fmt = lambda value: "n/a" if value is None else f"{value:.3f}"
        log.info("%s: test accuracy %s, macro AUROC %s", run_id, fmt(metrics.get("accuracy")), fmt(metrics.get("auroc")))


def _blocked(spec, failed: set[str], failures: list[Failure]) -> bool:
    """Whether a prerequisite of ``spec`` failed; if so ``spec`` is recorded as not run."""
    missing = [run_id for run_id in prerequisites(spec) if run_id in failed]
    if missing:
        failures.append(Failure(spec.run_id, f"not run: its prerequisite {', '.join(missing)} failed"))
        failed.add(spec.run_id)
    return bool(missing)


class LocalLauncher:
    """Today's loop: every run in this process, one after another; an error stops the suite (and every DDP rank)."""

    def __init__(self, config: dict[str, Any], *, out_dir: Path):
        self.config = config

    def launch(self, specs: list, *, done: Iterable[str] = (), options: dict[str, Any]) -> list[Failure]:
        from benchmark.runner import run_one

        ordered = [spec for wave in waves(specs, done=done) for spec in wave]
        clock = SuiteClock(ordered[0].suite if ordered else "", len(ordered))
        for number, spec in enumerate(ordered, 1):
            log.info("[%d/%d] %s", number, len(ordered), spec.run_id)
            clock.start_run(number)
            result = run_one(spec, **options, progress=clock)
            clock.finish_run()
            _log_metrics(spec.run_id, None if result is None else result["metrics"])
        return []


class SubmititLauncher:
    """Every run as a submitit job; a wave's jobs are awaited before the next wave. On SLURM a wave (per job shape)
    is one job array throttled to ``max_parallel_jobs``; submitit's local processes are not throttled, so there a
    wave goes in chunks of ``max_parallel_jobs``. A failed job is reported by run id, the other runs go on."""

    def __init__(self, config: dict[str, Any], *, out_dir: Path):
        self.config = config
        self.folder = Path(config["folder"] or Path(out_dir) / "submitit")
        cluster = config["cluster"]
        self.cluster = submitit.AutoExecutor.which() if cluster == "auto" else cluster

    def executor(self) -> submitit.AutoExecutor:
        c = self.config
        executor = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster)
        executor.update_parameters(name="cxr-bench", timeout_min=c["timeout_min"], gpus_per_node=c["gpus_per_node"] or None, cpus_per_task=c["cpus_per_task"],
                                   slurm_partition=c["slurm_partition"], slurm_array_parallelism=c["max_parallel_jobs"],
                                   slurm_additional_parameters=dict(c["slurm_additional_parameters"]))
        return executor

    def job_shape(self, spec) -> tuple[int, int]:
        """(nodes, tasks per node) of ``spec``'s job. On SLURM Lightning takes one task per device
        (SLURMEnvironment); a local job is one process, and only a one-device run fits it."""
        devices, nodes = spec.trainer.get("devices", 1), spec.trainer.get("num_nodes", 1)
        if isinstance(devices, list):
            count = len(devices)
        elif devices == "auto":  # Lightning takes every GPU the job has
            count = self.config["gpus_per_node"] or 1
        else:
            count = devices
        if self.cluster == "local" and (count > 1 or nodes > 1):
            raise ConfigError(f"run {spec.run_id} uses {count} device(s) on {nodes} node(s): a local submitit job is one process; "
                              "use cluster slurm, or --launcher local (Lightning's own DDP) on this machine")
        return (nodes, count) if self.cluster == "slurm" else (1, 1)

    def launch(self, specs: list, *, done: Iterable[str] = (), options: dict[str, Any]) -> list[Failure]:
        grouped = waves(specs, done=done)
        shapes = {spec.run_id: self.job_shape(spec) for spec in specs}  # every job fits before any is submitted
        executor, failures, failed = self.executor(), [], set()
        limit = self.config["max_parallel_jobs"] if self.cluster == "local" else None
        for number, wave in enumerate(grouped, 1):
            wave = [spec for spec in wave if not _blocked(spec, failed, failures)]
            log.info("wave %d/%d: %d job(s) on %s (job files: %s)", number, len(grouped), len(wave), self.cluster, self.folder)
            size = limit or max(len(wave), 1)
            for start in range(0, len(wave), size):
                jobs = self._submit(executor, wave[start:start + size], shapes, options)
                for spec, job in jobs:
                    failure = self._outcome(spec, job)
                    if failure:
                        failures.append(failure)
                        failed.add(spec.run_id)
        return failures

    @staticmethod
    def _submit(executor, specs: list, shapes: dict, options: dict) -> list[tuple[Any, submitit.Job]]:
        jobs = []
        for shape in dict.fromkeys(shapes[spec.run_id] for spec in specs):  # one job array per job shape
            executor.update_parameters(nodes=shape[0], tasks_per_node=shape[1])
            with executor.batch():
                jobs += [(spec, executor.submit(run_job, spec, options)) for spec in specs if shapes[spec.run_id] == shape]
        for spec, job in jobs:
            log.info("%s: job %s", spec.run_id, job.job_id)
        return jobs

    @staticmethod
    def _outcome(spec, job: submitit.Job) -> Failure | None:
        error = job.exception()  # waits for the job
        if error is None:
            _log_metrics(spec.run_id, job.results()[0])
            return None
        return Failure(spec.run_id, _last_line(str(error)), str(job.paths.stderr))


def _last_line(text: str) -> str:
    """The line of a job's error report that names the exception (the last line of its traceback)."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("-" * 5)]
    traceback_end = [i for i, line in enumerate(lines) if line.startswith("You can check full logs")]
    return (lines[traceback_end[0] - 1] if traceback_end and traceback_end[0] else lines[-1]) if lines else "unknown error"


LAUNCHERS = {"local": LocalLauncher, "submitit": SubmititLauncher}


def get_launcher(config: dict[str, Any], *, out_dir: Path):
    """The launcher a validated ``launcher:`` section names (benchmark/schema.py LauncherConfig)."""
    return LAUNCHERS[config["name"]](config, out_dir=out_dir)
