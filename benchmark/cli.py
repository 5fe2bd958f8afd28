"""Command line: ``python -m benchmark run | leaderboard | collect | data-report | evaluate | explain | download | list``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from pathlib import Path

DEFAULT_OUT = Path("runs")
DEFAULT_LEADERBOARD = Path("leaderboard.md")
DEFAULT_CACHE = Path(os.environ.get("CXRBENCH_CACHE", ".cache/cxrbench"))

log = logging.getLogger("benchmark")


def _common_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results, splits, logs and predictions go here (default: runs)")
    parser.add_argument("--leaderboard", type=Path, help="markdown file to (re)write (default: leaderboard.md, or <out>/leaderboard.md "
                        "when leaderboard.md was generated from another results store)")
    parser.add_argument("--replace-leaderboard", action="store_true", help="replace the leaderboard file even if it was generated from another results store")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmark", description="CXR-Bench: rerun published chest X-ray classifiers on one shared patient-level split.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="train and test every (dataset, method, seed) of a suite, then rewrite the leaderboard")
    run.add_argument("suite", type=Path, help="suite YAML, e.g. configs/quick.yaml")
    run.add_argument("--data-root", type=Path, help="folder holding the real datasets (without it, suites that allow it use synthetic phantoms)")
    _common_out(run)
    run.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="preprocessing cache (default: .cache/cxrbench or $CXRBENCH_CACHE)")
    run.add_argument("--seeds", type=int, nargs="+", help="override the suite's seeds")
    run.add_argument("--accelerator", help="Lightning accelerator: cpu, gpu, auto")
    run.add_argument("--devices", help="number of devices, or a list such as 0,1")
    run.add_argument("--strategy", help="Lightning strategy: auto, ddp, ddp_spawn, ...")
    run.add_argument("--num-nodes", type=int, help="machines one run trains on (Lightning's num_nodes; SLURM or torchrun start the processes)")
    run.add_argument("--max-epochs", type=int, help="override every method's epochs")
    run.add_argument("--no-wandb", action="store_true", help="CSV logging only")
    run.add_argument("--dry-run", action="store_true", help="print the expanded plan (every run, stage, images per epoch, epochs) and its estimated time "
                     "from a few timed steps of each distinct model on this machine; nothing is trained or written to the results")
    run.add_argument("--resume", action="store_true", help="skip runs whose result file exists with the same configuration fingerprint and continue an interrupted run from its last checkpoint (an interrupted suite goes on)")
    jobs = run.add_argument_group("launcher", "how the runs are started (the suite's `launcher:` section; these flags override it)")
    jobs.add_argument("--launcher", choices=["local", "submitit"], help="local: one after another in this process (default); submitit: each run as a job")
    jobs.add_argument("--cluster", choices=["auto", "slurm", "local"], help="where submitit jobs run (auto: SLURM where sbatch exists, else local processes)")
    jobs.add_argument("--jobs-folder", help="submitit's job files and logs (default: <out>/submitit)")
    jobs.add_argument("--slurm-partition")
    jobs.add_argument("--gpus-per-node", type=int)
    jobs.add_argument("--cpus-per-task", type=int)
    jobs.add_argument("--timeout-min", type=int, help="a job's time limit in minutes (default 240)")
    jobs.add_argument("--max-parallel-jobs", type=int, help="jobs that run at once (default: as many as the cluster gives)")
    jobs.add_argument("--slurm-param", action="append", metavar="KEY=VALUE", help="one more #SBATCH option, e.g. account=abc (repeatable)")

    board = commands.add_parser("leaderboard", help="rewrite the leaderboard from the result files")
    _common_out(board)

    gather = commands.add_parser("collect", help="fair-comparison tables (model selection, budgets, held-out sources) from the result files")
    gather.add_argument("results_dir", type=Path, help="an --out folder or its results/ folder")
    gather.add_argument("--select", required=True, metavar="RULE", help="model-selection rule: validation, leave-one-source-out-validation or oracle (an upper bound)")
    gather.add_argument("--format", choices=["markdown", "latex", "csv"], default="markdown")
    gather.add_argument("--metric", help="headline test metric (default: balanced_accuracy; auroc for multi-label)")
    gather.add_argument("--out", type=Path, help="write the tables to this file instead of stdout")

    report = commands.add_parser("data-report", help="images, patients, problems and duplicates per split and class of one dataset")
    report.add_argument("name", help="dataset name (see `list`)")
    report.add_argument("--root", type=Path, help="the dataset's folder, or a data root holding it (for a combined task: the data root holding its components)")
    report.add_argument("--image-size", type=int, default=64)
    report.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    report.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the split is read from (or written to) <out>/splits")
    report.add_argument("--split-seed", type=int, default=0)
    report.add_argument("--options", type=json.loads, default={}, help="dataset options as a JSON object, as in a suite's dataset entry")
    report.add_argument("--duplicates", choices=["auto", "all", "cross_source", "off"], default="auto",
                        help="which duplicate pairs to search (auto: all pairs; a combined task uses its own scope)")
    report.add_argument("--max-distance", type=int, default=None, help="pHash bits that may differ for a near duplicate (default 8)")
    report.add_argument("--min-correlation", type=float, default=None, help="pixel correlation a near duplicate needs (default 0.95)")
    report.add_argument("--json", action="store_true", help="print the report as JSON (keys: benchmark/data_report.py)")

    external = commands.add_parser("evaluate", help="score a trained run on every image of another dataset (an external test set)")
    external.add_argument("run", type=Path, help="the run's result file (<out>/results/<dataset>/<method>/seed<k>.json) or its run folder")
    external.add_argument("--dataset", required=True, help="the external dataset's name (see `list`)")
    external.add_argument("--root", type=Path, help="its folder, or a data root holding it (not needed for the phantoms)")
    external.add_argument("--options", type=json.loads, default=None, help="its reader options as a JSON object, as in a suite's dataset entry")
    external.add_argument("--label-map", type=json.loads, default=None,
                          help='JSON {external label: run class or null}, "*" for every other label (default: same names, then the run\'s class_map)')
    external.add_argument("--keep-duplicates", action="store_true", help="score images that copy the run's train/val images too (default: left out, counted)")
    external.add_argument("--max-per-class", type=int, default=None, help="score at most this many images per class, drawn once (--sample-seed)")
    external.add_argument("--sample-seed", type=int, default=0, help="seed of the --max-per-class draw (default 0)")
    external.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="preprocessing cache (default: .cache/cxrbench or $CXRBENCH_CACHE)")
    external.add_argument("--json", action="store_true", help="print the external result as JSON (written to <out>/external/<run_id>/<dataset>.json)")

    explain = commands.add_parser("explain", help="heatmaps, latent maps and shortcut probes of a trained run (<out>/explain/<run_id>/)")
    explain.add_argument("run", type=Path, help="the run's result file (<out>/results/<dataset>/<method>/seed<k>.json) or its run folder")
    explain.add_argument("--method", nargs="+", default=["gradcam"], dest="heatmap_methods", metavar="METHOD",
                         help="heatmaps to draw: gradcam, gradcam++, cam (global pooling + linear heads only), lrp (default: gradcam)")
    explain.add_argument("--images", type=int, default=2, help="grid rows per class and outcome, correct and wrong (default 2)")
    explain.add_argument("--split", choices=["test", "val"], default="test")
    explain.add_argument("--findings", nargs="+", help="multi-label runs: the findings to map (default: the 3 most frequent in the sample)")
    explain.add_argument("--probe-images", type=int, default=50, help="test images per class the probes and maps use, drawn once (default 50)")
    explain.add_argument("--seed", type=int, default=0, help="seed of that draw and of the probes (default 0)")
    explain.add_argument("--word", default="SEDUTO", help="the text the text test burns into normal images (default SEDUTO)")
    explain.add_argument("--mask-fill", choices=["mean", "black"], default="mean",
                         help="what replaces the masked part in the lung-mask test: the training mean intensity (default) or black")
    explain.add_argument("--no-probes", action="store_true", help="heatmaps and latent maps only")
    explain.add_argument("--no-latent", action="store_true", help="no t-SNE / SOM")
    explain.add_argument("--no-wandb", action="store_true", help="do not log to W&B (default: offline W&B run of job type explain)")
    explain.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="preprocessing cache (default: .cache/cxrbench or $CXRBENCH_CACHE)")
    explain.add_argument("--json", action="store_true", help="print the explanation file as JSON")

    fetch = commands.add_parser("download", help="download the public datasets (make data); print how to get the others")
    fetch.add_argument("--data-root", type=Path, default=Path("data"), help="where the datasets go (default: ./data)")
    fetch.add_argument("--only", nargs="+", metavar="NAME", help="only these sources (see benchmark/download.py SOURCES)")

    commands.add_parser("list", help="every name a config may use: datasets, methods, backbones, heads, losses, optimizers, schedulers, augmentations")
    return parser


def _devices(value: str | None):
    if value is None:
        return None
    return [int(v) for v in value.split(",") if v] if "," in value else (value if value == "auto" else int(value))


def _leaderboard_target(args) -> tuple[Path, str | None]:
    """Where this command's leaderboard goes, and why when not where asked: a page generated from another results
    store is never replaced unless --replace-leaderboard; an explicit --leaderboard target of another store is an
    error, the default one gives way to <out>/leaderboard.md."""
    from benchmark.config import ConfigError
    from benchmark.leaderboard import foreign_store

    results_dir = args.out / "results"
    target = args.leaderboard or DEFAULT_LEADERBOARD
    problem = None if args.replace_leaderboard else foreign_store(target, results_dir)
    if problem is None:
        return target, None
    if args.leaderboard is None:
        fallback = args.out / "leaderboard.md"
        fallback_problem = foreign_store(fallback, results_dir)
        if fallback_problem is None:
            return fallback, f"{problem}: writing {fallback} instead (--replace-leaderboard replaces {target})"
        problem = fallback_problem
    raise ConfigError(f"{problem}; pass --replace-leaderboard to replace it, or choose another --leaderboard")


def _resume_reason(spec, out_dir: Path) -> str | None:
    """Why --resume runs ``spec`` again (None: its result exists with the same configuration fingerprint)."""
    from benchmark.results import result_path, resume_reason

    return resume_reason(result_path(out_dir, spec.run_id), spec)


def _launcher_config(args, suite) -> dict:
    """The suite's ``launcher:`` section with the command line's launcher flags over it, validated."""
    from benchmark.config import ConfigError, deep_merge
    from benchmark.schema import LauncherConfig, validate

    flags = {"name": args.launcher, "cluster": args.cluster, "folder": args.jobs_folder, "slurm_partition": args.slurm_partition,
             "gpus_per_node": args.gpus_per_node, "cpus_per_task": args.cpus_per_task, "timeout_min": args.timeout_min,
             "max_parallel_jobs": args.max_parallel_jobs}
    flags = {key: value for key, value in flags.items() if value is not None}
    for item in args.slurm_param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--slurm-param expects KEY=VALUE, got {item!r}")
        flags.setdefault("slurm_additional_parameters", {})[key] = value
    return validate(LauncherConfig, deep_merge(suite.raw["launcher"], flags), where=f"{args.suite} with the command line", section="launcher")


def _to_run(specs: list, args) -> list:
    """The runs to start: with --resume, those without a reusable result (decided here, before any job is submitted)."""
    if not args.resume:
        return list(specs)
    pending = []
    for spec in specs:
        reason = _resume_reason(spec, args.out)
        if reason is None:
            log.info("%s: result exists with the same configuration, skipped (--resume)", spec.run_id)
        else:
            (log.info if reason == "no result yet" else log.warning)("%s: running again (--resume): %s", spec.run_id, reason)
            pending.append(spec)
    return pending


def cmd_run(args) -> int:
    from pytorch_lightning.utilities import rank_zero_only

    from benchmark.chain_config import check_pretrained_starts
    from benchmark.config import load_suite
    from benchmark.launchers import get_launcher
    from benchmark.leaderboard import write_leaderboard
    from benchmark.loggers import log_suite_summary
    from benchmark.results import read_result, result_path

    # before any training: a run never ends unable to write its leaderboard (a dry run writes none)
    target, note = (None, None) if args.dry_run else _leaderboard_target(args)
    if note and rank_zero_only.rank == 0:
        log.warning("%s", note)
    overrides = {"accelerator": args.accelerator, "devices": _devices(args.devices), "strategy": args.strategy, "num_nodes": args.num_nodes, "max_epochs": args.max_epochs}
    suite = load_suite(args.suite, data_root=args.data_root, seeds=args.seeds, trainer_overrides={k: v for k, v in overrides.items() if v is not None},
                       cache_dir=args.cache_dir)
    if args.no_wandb:
        for spec in suite.runs:
            spec.logging = {**spec.logging, "wandb": False}
    launcher = get_launcher(_launcher_config(args, suite), out_dir=args.out)
    log.info("suite %s: %d run(s)", suite.name, len(suite.runs))
    specs = _to_run(suite.runs, args)
    check_pretrained_starts(specs)  # ImageNet and CheXNet weights found now, or a named error in seconds
    if args.dry_run:
        from dataclasses import replace

        from benchmark.plan import format_plan, plan_suite

        print(format_plan(plan_suite(replace(suite, runs=specs), out_dir=args.out, cache_dir=args.cache_dir), suite_name=suite.name))
        return 0
    done = {spec.run_id for spec in suite.runs} - {spec.run_id for spec in specs}
    failures = launcher.launch(specs, done=done, options={"out_dir": args.out, "cache_dir": args.cache_dir, "command": args.command_line, "resume": args.resume})
    if rank_zero_only.rank == 0:
        _explain_resumed(suite.runs, done, args)
        if (args.out / "results").is_dir():  # once, after every run (and every job) has finished
            path = write_leaderboard(args.out, target, replace=args.replace_leaderboard)
            print(f"leaderboard written: {path}" + (f" ({note})" if note else ""))
        results = [r for s in suite.runs if (r := read_result(result_path(args.out, s.run_id))[0])]  # resumed runs too
        log_suite_summary(results, {"wandb": False} if args.no_wandb else suite.raw["logging"], suite.name, log_dir=args.out / "logs" / "suites" / suite.name,
                          images=_explanation_images(results, args.out) if suite.raw.get("explain") else None)
        for failure in failures:
            print(f"error: {failure}", file=sys.stderr)
        if failures:
            print(f"error: {len(failures)} of {len(specs)} run(s) failed; finished runs are kept (--resume goes on)", file=sys.stderr)
    return 1 if failures else 0


def _explanation_images(results: list[dict], out: Path) -> dict[str, Path]:
    """The suite's explanation PNGs (grids, latent maps) of its runs, for the suite's W&B summary run."""
    from benchmark.explain.table import explanation_pngs, read_explanations

    explanations = read_explanations(out)
    return {f"explain/{r['run_id']}/{name}": out / png for r in results for name, png in explanation_pngs(r, explanations).items()}


def _explain_resumed(specs: list, done: set[str], args) -> None:
    """Runs --resume kept whose explanation is missing or of another configuration: explained now (no training)."""
    from benchmark.explain.run import explain_suite_run, explanation_current
    from benchmark.results import read_result, result_path

    for spec in specs:
        if spec.explain and spec.run_id in done:
            result = read_result(result_path(args.out, spec.run_id))[0]
            if result and not explanation_current(args.out, result):
                log.info("%s: explaining the kept result (--resume)", spec.run_id)
                explain_suite_run(spec, result_path(args.out, spec.run_id), cache_dir=args.cache_dir, command=args.command_line, log=False)


def cmd_leaderboard(args) -> int:
    from benchmark.config import ConfigError
    from benchmark.leaderboard import write_leaderboard

    if not (args.out / "results").is_dir():  # a misspelled --out must not wipe a leaderboard
        raise ConfigError(f"results folder {args.out / 'results'} does not exist")
    target, note = _leaderboard_target(args)
    path = write_leaderboard(args.out, target, replace=args.replace_leaderboard)
    print(f"leaderboard written: {path}" + (f" ({note})" if note else ""))
    return 0


def cmd_collect(args) -> int:
    from benchmark.collect import collect
    from datamodules.atomic import atomic_write_text

    text = collect(args.results_dir, args.select, args.format, args.metric)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"tables written: {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_data_report(args) -> int:
    from benchmark.config import ConfigError
    from benchmark.data_report import data_report, format_report
    from datamodules import DATAMODULES

    if args.name not in DATAMODULES:
        raise ConfigError(f"unknown dataset {args.name!r}; known: {', '.join(sorted(DATAMODULES))}")

    from datamodules.duplicates import DEFAULT_MAX_DISTANCE, DEFAULT_MIN_CORRELATION

    if not isinstance(args.options, dict):
        raise ConfigError(f"--options must be a JSON object, got {args.options!r}")
    report = data_report(
        args.name, root=args.root, image_size=args.image_size, cache_dir=args.cache_dir, split_dir=args.out / "splits",
        split_seed=args.split_seed, options=args.options, duplicates=args.duplicates,
        max_distance=DEFAULT_MAX_DISTANCE if args.max_distance is None else args.max_distance,
        min_correlation=DEFAULT_MIN_CORRELATION if args.min_correlation is None else args.min_correlation,
    )
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def cmd_evaluate(args) -> int:
    from benchmark.external.evaluate_set import evaluate_result_file
    from benchmark.external.report import format_external
    from benchmark.external.trained_run import find_result_file

    result = evaluate_result_file(find_result_file(args.run), args.dataset, root=args.root, options=args.options, label_map=args.label_map,
                                  duplicates="keep" if args.keep_duplicates else "exclude", cache_dir=args.cache_dir, command=args.command_line,
                                  max_per_class=args.max_per_class, sample_seed=args.sample_seed)
    if args.json:  # the file as written (strict JSON: undefined metrics are null), and where it is
        print(json.dumps({**json.loads(Path(result["_file"]).read_text(encoding="utf-8")), "_file": result["_file"]}, indent=2))
    else:
        print(format_external(result))
    return 0


def cmd_explain(args) -> int:
    from benchmark.explain.run import explain_and_log
    from benchmark.explain.table import format_explanation
    from benchmark.external.trained_run import find_result_file, load_run
    from benchmark.schema import ExplainOptions, validate

    settings = validate(ExplainOptions, {"heatmaps": args.heatmap_methods, "images": args.images, "findings": args.findings, "probe_images": args.probe_images,
                                         "probes": not args.no_probes, "latent": not args.no_latent, "word": args.word, "seed": args.seed,
                                         "mask_fill": args.mask_fill},
                        where="the command line", section="explain")
    run = load_run(find_result_file(args.run), cache_dir=args.cache_dir)
    record = explain_and_log(run, {**settings, "split": args.split}, command=args.command_line,
                             logging_config={"wandb": False} if args.no_wandb else {"wandb": {"mode": "offline"}}, group=run.result.get("suite"))
    print(json.dumps(record, indent=2, default=str) if args.json else format_explanation(record))
    return 0


def cmd_download(args) -> int:
    from benchmark.download import DownloadError, download_all

    try:
        return download_all(args.data_root, only=args.only)
    except DownloadError as error:  # a refused, damaged or unreachable download: named, nothing half-extracted left
        print(f"error: {error}", file=sys.stderr)
        return 2


def cmd_list(args) -> int:
    """Print every registered name a suite or method file may use, one kind a line."""
    for kind, names in registered_names().items():
        print(f"{kind + ':':<15}{', '.join(names)}")
    return 0


def registered_names() -> dict[str, list[str]]:
    """{kind: names} of everything found by name, in the order `list` prints them."""
    from datamodules import DATAMODULES
    from datamodules.transforms import PRESETS
    from lightning_modules.registries import BACKBONES, HEADS, LOSSES, METHODS, OPTIMIZERS, SCHEDULERS

    return {"datasets": sorted(DATAMODULES), "methods": METHODS.names(), "backbones": [*BACKBONES.names(), BACKBONES.fallback_label],
            "heads": HEADS.names(), "losses": LOSSES.names(), "optimizers": OPTIMIZERS.names(), "schedulers": SCHEDULERS.names(),
            "augmentations": sorted(PRESETS)}


def main(argv: list[str] | None = None) -> int:
    from benchmark.config import ConfigError
    from datamodules import DatasetNotFoundError
    from datamodules.manifest import ManifestError
    from datamodules.splits import LeakageError
    from lightning_modules.weights import StartWeightsError

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    # the command a result cites; --resume only decides which runs happen, not what they compute
    args.command_line = " ".join(["python -m benchmark"] + [shlex.quote(a) for a in argv if a != "--resume"])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    handlers = {"run": cmd_run, "leaderboard": cmd_leaderboard, "collect": cmd_collect, "data-report": cmd_data_report, "evaluate": cmd_evaluate, "explain": cmd_explain, "download": cmd_download, "list": cmd_list}
    try:
        return handlers[args.command](args)
    except (ConfigError, DatasetNotFoundError, ManifestError, LeakageError, StartWeightsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
