"""Where a suite is: one line per epoch above Lightning's bar (run k of n, method, stage, elapsed, time left), the
same figures in the run's loggers (CSV, W&B) as ``suite/*``. Lightning's own bar only knows the current run.

Time left = the current stage's remaining epochs at its mean epoch time, plus every run still to come at the mean
duration of the finished runs (before any has finished: the current run's projected duration).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_only

from benchmark.plan import format_duration

log = logging.getLogger("benchmark.progress")


@dataclass
class SuiteClock:
    """Shared by the runs of one suite invocation (the local launcher's loop)."""

    suite: str
    total_runs: int
    started: float = field(default_factory=time.perf_counter)
    finished: list[float] = field(default_factory=list)  # seconds of each finished run
    number: int = 0  # the run in progress, 1-based
    run_started: float = 0.0

    def start_run(self, number: int) -> None:
        self.number, self.run_started = number, time.perf_counter()

    def finish_run(self) -> None:
        self.finished.append(time.perf_counter() - self.run_started)

    def time_left(self, current_run_left: float, current_run_total: float) -> float:
        still_to_come = self.total_runs - self.number
        per_run = sum(self.finished) / len(self.finished) if self.finished else current_run_total
        return current_run_left + still_to_come * per_run


class SuiteProgress(pl.Callback):
    """Logs the suite's position at the start of every training epoch (rank 0)."""

    def __init__(self, clock: SuiteClock, run_id: str, stage: str = "train"):
        self.clock, self.run_id, self.stage = clock, run_id, stage
        self._epoch_started: float | None = None
        self._epoch_seconds: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module):
        now = time.perf_counter()
        if self._epoch_started is not None:
            self._epoch_seconds.append(now - self._epoch_started)
        self._epoch_started = now
        self.report(trainer)

    def on_train_end(self, trainer, pl_module):
        self.report(trainer, done=True)

    def figures(self, trainer, *, done: bool = False) -> dict[str, float]:
        clock = self.clock
        elapsed_run = time.perf_counter() - clock.run_started
        epochs = int(trainer.max_epochs or 1)
        remaining_epochs = 0 if done else max(epochs - trainer.current_epoch, 0)
        per_epoch = sum(self._epoch_seconds) / len(self._epoch_seconds) if self._epoch_seconds else None
        run_left = remaining_epochs * per_epoch if per_epoch is not None else None
        left = clock.time_left(run_left, elapsed_run + run_left) if run_left is not None else None
        if left is None and clock.finished:  # no epoch of this phase done yet (a chain's one-epoch phases): by finished runs
            per_run = sum(clock.finished) / len(clock.finished)
            left = clock.time_left(max(per_run - elapsed_run, 0.0), per_run)
        return {"run": clock.number, "runs": clock.total_runs, "epoch": trainer.current_epoch, "epochs": epochs,
                "elapsed_s": time.perf_counter() - clock.started, "time_left_s": left}

    @rank_zero_only
    def report(self, trainer, *, done: bool = False) -> None:
        f = self.figures(trainer, done=done)
        left = "time left unknown until an epoch has finished" if f["time_left_s"] is None else f"about {format_duration(f['time_left_s'])} left"
        where = "stage done" if done else f"epoch {f['epoch'] + 1}/{f['epochs']}"
        log.info("suite %s: run %d of %d, %s (%s, %s) · elapsed %s · %s", self.clock.suite, f["run"], f["runs"], self.run_id,
                 self.stage, where, format_duration(f["elapsed_s"]), left)
        metrics = {f"suite/{k}": float(v) for k, v in f.items() if v is not None and k in ("run", "runs", "elapsed_s", "time_left_s")}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
