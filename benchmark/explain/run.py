"""One trained run explained: heatmap grids, latent maps and shortcut probes, written to ``<out>/explain/<run_id>/``.

``python -m benchmark explain RUN`` and a suite's ``explain:`` section (after every run's test) both come here, so a
run explained later and one explained by the suite give the same file. The explanation file names the run, its
configuration fingerprint and the sample it used; the leaderboard joins it to the run only when the fingerprints
match. Nothing here changes the run's own result file.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.explain.heatmap_grid import draw_heatmap_grid
from benchmark.explain.inputs import Sample, Scorer, draw_sample
from benchmark.explain.probe_suite import run_probes
from benchmark.results import SCHEMA_VERSION, read_records, write_result
from benchmark.schema import ExplainOptions
from lightning_modules.explain import NotApplicableError, heatmaps, penultimate_features

log = logging.getLogger(__name__)
EXPLAIN_DIR = "explain"
DEFAULTS = {**ExplainOptions().model_dump(mode="json"), "split": "test"}  # the schema's defaults, and the split explained
SIGNED = {"lrp", "cam"}  # maps with a sign: red for the class, blue against it (twice-transfer paper, Figure 2)


def explain_dir(out_dir: Path, run_id: str) -> Path:
    """Where one run's explanations go (beside its results, never under ``<out>/results``)."""
    return Path(out_dir) / EXPLAIN_DIR / run_id


def explain_run(run, settings: dict | None = None, *, command: str | None = None, task=None) -> dict[str, Any]:
    """Explain a TrainedRun (benchmark/external/trained_run.py); writes and returns ``explain.json``'s content.
    ``task``: the run's tested model already in memory (the runner's), else it is loaded from the checkpoint."""
    settings = {**DEFAULTS, **(settings or {})}
    started = time.perf_counter()
    dm, folder = run.datamodule, explain_dir(run.out_dir, run.run_id)
    task = (task or run.load_task()).eval()
    templates = None
    if hasattr(task, "compute_templates"):  # the siamese net: the test's templates, or the training split's again
        templates = task.templates if getattr(task, "templates", None) is not None else task.compute_templates(dm.train_eval_dataloader())
    sample = draw_sample(dm, split=settings["split"], per_class=settings["probe_images"], seed=settings["seed"])
    scorer = Scorer(task, run.normalization, templates=templates)
    inputs = scorer.tensors(sample.pixels).to(task.device)
    scores = scorer(sample.pixels)
    predicted = scores.argmax(1)
    # the predicted class's Grad-CAM of every sampled image: the probes' heat in the lungs and the grid's first column
    gradcam = heatmaps(task, inputs, predicted.tolist(), "gradcam", templates=templates) if settings["probes"] or "gradcam" in settings["heatmaps"] else None
    record: dict[str, Any] = {
        "kind": "explanation", "schema_version": SCHEMA_VERSION, "run_id": run.run_id,
        "config_fingerprint": run.result.get("config_fingerprint"),
        "method": {k: run.result["method"].get(k) for k in ("id", "method", "title")}, "seed": run.result["seed"],
        "dataset": {k: run.result["dataset"].get(k) for k in ("name", "synthetic", "classes", "multilabel", "split_sha256")},
        "split": settings["split"], "settings": settings, "command": command,
        "sample": {"images": len(sample), "per_class": settings["probe_images"], "seed": settings["seed"],
                   "lung_regions": sample.region_counts(), "sources": {s: sample.sources.count(s) for s in sorted(set(sample.sources))}},
    }
    record["heatmaps"] = {method: _heatmap_grid(task, inputs, sample, scores, method, settings, folder, run, templates=templates,
                                                predicted_maps=gradcam if method == "gradcam" else None)
                          for method in settings["heatmaps"]}
    features = _features(task, inputs, templates)
    if settings["probes"]:
        record["probes"] = run_probes(scorer, sample, scores, features, settings, class_names=dm.class_names, multilabel=dm.multilabel,
                                      fill_mean=dm.mean, gradcam=gradcam)
    if settings["latent"]:
        from benchmark.explain.latent import latent_maps

        record["latent"] = latent_maps(features, sample.pixels.reshape(len(sample), -1).astype(np.float32) / 255.0,
                                       latent_labels(sample, dm.class_names, dm.multilabel), sample.sources,
                                       folder / "latent.png", title=f"{run.run_id}: test features against raw pixels", seed=settings["seed"])
        record["latent"]["png"] = _relative(record["latent"]["png"], run.out_dir)
    record["seconds"] = round(time.perf_counter() - started, 2)
    write_result(folder / "explain.json", record)
    record["_file"] = str(folder / "explain.json")
    return record


def _features(task, inputs: torch.Tensor, templates, batch: int = 64) -> np.ndarray:
    """Penultimate features of the sample (the input of the last linear layer; the siamese embedding)."""
    parts = [penultimate_features(task, inputs[i:i + batch], templates=templates).float().cpu() for i in range(0, len(inputs), batch)]
    return torch.cat(parts).numpy() if parts else np.zeros((0, 0), np.float32)


def latent_labels(sample: Sample, class_names: list[str], multilabel: bool) -> list[str]:
    """The colour of each image in the latent maps: its class; multi-label: its most frequent finding (of the sample),
    or "no finding", so the legend has at most one entry per finding instead of one per combination."""
    if not multilabel:
        return list(sample.labels)
    positives = sample.targets == 1
    order = np.argsort(-positives.sum(0), kind="stable")
    return [next((class_names[c] for c in order if row[c]), "no finding") for row in positives]


def grid_rows(sample: Sample, scores: np.ndarray, class_names: list[str], *, per_outcome: int, multilabel: bool,
              findings: list[str] | None) -> tuple[list[int], list[str]]:
    """(image positions, maps to draw). Single-label: per class up to ``per_outcome`` correct and as many wrong
    predictions. Multi-label: up to ``per_outcome`` positives of each finding asked (default: the 3 most frequent)."""
    if multilabel:
        counts = (sample.targets == 1).sum(0)
        asked = findings or [class_names[i] for i in np.argsort(-counts, kind="stable")[:3] if counts[i] > 0]
        unknown = [f for f in asked if f not in class_names]
        if unknown:
            raise ValueError(f"findings {unknown} are not findings of this run ({', '.join(class_names)})")
        rows = [i for f in asked for i in np.flatnonzero(sample.targets[:, class_names.index(f)] == 1)[:per_outcome]]
        return list(dict.fromkeys(int(i) for i in rows)), asked
    predicted = scores.argmax(1)
    rows = []
    for c in range(len(class_names)):
        mine = sample.targets == c
        rows += list(np.flatnonzero(mine & (predicted == c))[:per_outcome]) + list(np.flatnonzero(mine & (predicted != c))[:per_outcome])
    return [int(i) for i in rows], ["predicted", "true"]


def _heatmap_grid(task, inputs: torch.Tensor, sample: Sample, scores: np.ndarray, method: str, settings: dict, folder: Path, run, *,
                  templates=None, predicted_maps: np.ndarray | None = None) -> dict:
    """One grid PNG of ``method``; a method the model cannot give (CAM without global pooling) is recorded as skipped.
    ``predicted_maps``: this method's maps of the predicted class for the whole sample, when already made."""
    names, multilabel = run.datamodule.class_names, run.datamodule.multilabel
    rows, columns = grid_rows(sample, scores, names, per_outcome=settings["images"], multilabel=multilabel, findings=settings["findings"])
    if not rows:
        return {"skipped": "no test image in the sample"}
    images = inputs[rows]
    try:
        if multilabel:
            stacked = heatmaps(task, images.repeat(len(columns), 1, 1, 1), [names.index(f) for f in columns for _ in rows], method, templates=templates)
            maps = {f: stacked[k * len(rows):(k + 1) * len(rows)] for k, f in enumerate(columns)}  # one call for every finding
        else:
            predicted, true = scores[rows].argmax(1), sample.targets[rows]
            first = predicted_maps[rows] if predicted_maps is not None else heatmaps(task, images, predicted.tolist(), method, templates=templates)
            second = first.copy()
            wrong = np.flatnonzero(predicted != true)  # a correct row's true-class map is its predicted-class map
            if len(wrong):
                second[wrong] = heatmaps(task, images[wrong], true[wrong].tolist(), method, templates=templates)
            maps = {"predicted": first, "true": second}
    except NotApplicableError as error:
        log.info("%s: %s skipped (%s)", run.run_id, method, error)
        return {"skipped": str(error)}
    grid = []
    for k, i in enumerate(rows):
        if multilabel:
            positives = [names[c] for c in np.flatnonzero(sample.targets[i] == 1)]
            caption = f"{Path(sample.images[i]).name}\nfindings: {', '.join(positives) or 'none'}"
            cells = {f"{f} ({scores[i, names.index(f)]:.2f})": maps[f][k] for f in columns}
        else:
            true, pred = int(sample.targets[i]), int(scores[i].argmax())
            outcome = "correct" if true == pred else "WRONG"
            caption = f"{Path(sample.images[i]).name}\ntrue {names[true]}, predicted {names[pred]} ({scores[i, pred]:.2f}): {outcome}"
            cells = {f"predicted: {names[pred]}": maps["predicted"][k], f"true: {names[true]}": maps["true"][k]}
        grid.append({"image": sample.pixels[i].astype(np.float32) / 255.0, "caption": caption, "maps": cells})
    path = draw_heatmap_grid(grid, folder / f"heatmaps-{method.replace('+', 'plus')}.png", signed=method in SIGNED,
                             title=f"{run.run_id} [{method}]" + (" [SYNTHETIC DATA]" if run.datamodule.is_synthetic else ""))
    return {"png": _relative(path, run.out_dir), "rows": len(grid), "columns": columns}


def _relative(path, out_dir: Path) -> str:
    """A written file's path relative to ``<out>`` (the leaderboard links it relative to the results store)."""
    try:
        return Path(path).resolve().relative_to(Path(out_dir).resolve()).as_posix()
    except ValueError:
        return str(path)


def explain_and_log(run, settings: dict | None, *, command: str | None, logging_config: dict, group: str | None, task=None) -> dict[str, Any]:
    """Explain a run, then log its grids, latent maps and probe numbers to W&B as a run of job type ``explain`` (the
    command line's; a suite logs all its runs' explanations once, in its summary run: benchmark/cli.py)."""
    from benchmark.explain.table import probe_cells
    from benchmark.loggers import log_images_run

    record = explain_run(run, settings, command=command, task=task)
    images = {f"explain/{m}": run.out_dir / h["png"] for m, h in record["heatmaps"].items() if h.get("png")}
    if (record.get("latent") or {}).get("png"):
        images["explain/latent"] = run.out_dir / record["latent"]["png"]
    log_images_run(name=f"{run.run_id} explain", job_type="explain", group=group, images=images,
                   summary={f"probes/{k}": v for k, v in probe_cells(record).items()}, logging_config=logging_config,
                   log_dir=run.out_dir / "logs" / run.run_id / "explain", synthetic=bool(run.datamodule.is_synthetic))
    return record


def explanation_current(out_dir: Path, result: dict) -> bool:
    """Whether ``result``'s run has an explanation of the same configuration (``--resume`` explains the others)."""
    path = explain_dir(out_dir, result["run_id"]) / "explain.json"
    found = read_records([path], kind="explanation", required=("config_fingerprint",), what="explanation") if path.is_file() else []
    return bool(found) and found[0]["config_fingerprint"] == result.get("config_fingerprint")


def explain_suite_run(spec, result_file: Path, *, cache_dir: Path, datamodule=None, task=None, command: str | None = None,
                      log: bool = False) -> dict[str, Any] | None:
    """The suite's ``explain:`` section for one finished run (``datamodule``, ``task``: the run's own, set up and tested;
    None rebuilds and loads them). W&B: the suite's summary run logs every explanation once (one W&B start per suite,
    not per run: an offline start costs seconds)."""
    from benchmark.external.trained_run import load_run

    if not getattr(spec, "explain", None):
        return None
    run = load_run(result_file, cache_dir=cache_dir, datamodule=datamodule)
    if log:
        return explain_and_log(run, spec.explain, command=command, logging_config=spec.logging, group=spec.suite, task=task)
    return explain_run(run, spec.explain, command=command, task=task)
