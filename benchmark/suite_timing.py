"""Time a whole suite on this machine against its budget (a benchmark, run by ``make perf``; never a timed test).

    python -m benchmark.suite_timing configs/quick.yaml                              # the phantoms: budget 8 min (5 before the explanations)
    python -m benchmark.suite_timing configs/quick.yaml --data-root ../shared/data --budget-min 30

Every run is trained and tested as ``python -m benchmark run`` would (fresh results folder, W&B off), after the
dry-run estimate of ``benchmark/plan.py``; the table gives each run's estimated and measured seconds, and the total
against the budget. Measure on an idle machine: two trainings at once on 2 cores slow each other about tenfold.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from benchmark.config import load_suite
from benchmark.plan import format_duration, plan_suite
from benchmark.progress import SuiteClock
from benchmark.runner import run_one


def time_suite(suite_path: Path, *, data_root: Path | None, out_dir: Path, cache_dir: Path) -> list[dict]:
    """[{run_id, estimate_s, measured_s}] of every run of the suite, in order."""
    suite = load_suite(suite_path, data_root=data_root)
    for spec in suite.runs:
        spec.logging = {**spec.logging, "wandb": False}
    estimates = {run.run_id: run.seconds for run in plan_suite(suite, out_dir=out_dir, cache_dir=cache_dir)}
    clock, rows = SuiteClock(suite.name, len(suite.runs)), []
    for number, spec in enumerate(suite.runs, 1):
        clock.start_run(number)
        started = time.perf_counter()
        run_one(spec, out_dir=out_dir, cache_dir=cache_dir, progress=clock)
        clock.finish_run()
        rows.append({"run_id": spec.run_id, "estimate_s": estimates[spec.run_id], "measured_s": time.perf_counter() - started})
    return rows


def report(rows: list[dict], *, budget_s: float) -> str:
    lines = [f"{'run':<52} {'estimate':>9} {'measured':>9} {'ratio':>6}"]
    for row in rows:
        lines.append(f"{row['run_id']:<52} {format_duration(row['estimate_s']):>9} {format_duration(row['measured_s']):>9} {row['measured_s'] / row['estimate_s']:>6.2f}")
    measured, estimate = sum(r["measured_s"] for r in rows), sum(r["estimate_s"] for r in rows)
    verdict = "within" if measured <= budget_s else "OVER"
    lines += ["", f"total: measured {format_duration(measured)} ({measured:.0f} s), estimated {format_duration(estimate)} "
              f"(measured / estimated = {measured / estimate:.2f}); {verdict} the budget of {format_duration(budget_s)}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.suite_timing", description=__doc__.splitlines()[0])
    parser.add_argument("suite", type=Path, nargs="?", default=Path("configs/quick.yaml"))
    parser.add_argument("--data-root", type=Path, help="real data (without it, suites that allow it run on the phantoms)")
    parser.add_argument("--budget-min", type=float, help="budget in minutes (default: 30 with a data root, 8 on the phantoms)")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/cxrbench"), help="preprocessing cache (a warm cache leaves caching out)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    budget = 60 * (args.budget_min if args.budget_min is not None else (30 if args.data_root else 8))
    with tempfile.TemporaryDirectory(prefix="suite-timing-") as scratch:
        rows = time_suite(args.suite, data_root=args.data_root, out_dir=Path(scratch), cache_dir=args.cache_dir)
    print(report(rows, budget_s=budget))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
