"""Per-run plots of the test predictions: ROC curves, a confusion matrix and a reliability diagram, as PNG files.

They are drawn from the same de-duplicated test scores the metrics come from, under ``<out>/plots/<run_id>/``,
and recorded in the result JSON (paths relative to ``<out>``) so the leaderboard can link them. Matplotlib's
object API draws them (no pyplot: no global figure state, no display needed) and every file is written to a
temporary name and renamed, so a crash never leaves half a PNG.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torchmetrics.functional.classification import binary_auroc, binary_roc

from benchmark.loggers import log_plots_to_wandb
from benchmark.statistics import confidence_bins
from datamodules.atomic import atomic_path
from lightning_modules.metrics import ECE_BINS

log = logging.getLogger(__name__)

N_BINS = ECE_BINS  # reliability bins, equal width on [0, 1] (Guo et al. 2017), as the ECE metric


def draw_run_plots(scores, labels, class_names: list[str], *, multilabel: bool, out_dir: Path, title: str) -> dict[str, Path]:
    """Draw ``roc.png``, ``confusion.png`` (single-label only) and ``reliability.png`` into ``out_dir``;
    return {"roc": path, ...}. ``scores`` (images x classes) and ``labels`` (class index, or 0/1/-1 per finding)."""
    scores, labels = torch.as_tensor(scores).float(), torch.as_tensor(labels).long()
    out_dir = Path(out_dir)
    plots = {"roc": _save(_roc_figure(scores, labels, class_names, multilabel, title), out_dir / "roc.png")}
    if multilabel:
        known = labels != -1  # CheXpert U-Ignore: unknown entries take no part
        confidence, correct = scores[known], labels[known] == 1
        what, outcome = "all (finding, image) probabilities", "fraction positive"
    else:
        confidence, predicted = scores.max(dim=1)
        correct = predicted == labels
        what, outcome = "top-label confidence", "accuracy"
        matrix = np.zeros((len(class_names),) * 2, dtype=np.int64)
        np.add.at(matrix, (labels.numpy(), predicted.numpy()), 1)
        plots["confusion"] = _save(_confusion_figure(matrix, class_names, title), out_dir / "confusion.png")
    bins = confidence_bins(confidence.numpy(), correct.numpy(), n_bins=N_BINS)
    plots["reliability"] = _save(_reliability_figure(bins, f"{title}\n{what}", outcome), out_dir / "reliability.png")
    return plots


def _save(figure: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return path


def _roc_figure(scores, labels, class_names, multilabel, title) -> Figure:
    """One-vs-rest ROC per class (per finding when multi-label), its AUROC in the legend; a class with no positive
    (or no negative) test image has no curve and says so in the legend."""
    figure = Figure(figsize=(7, 5))
    ax = figure.subplots()
    for column, name in enumerate(class_names):
        if multilabel:
            known = labels[:, column] != -1
            target, score = labels[known, column] == 1, scores[known, column]
        else:
            target, score = labels == column, scores[:, column]
        positives = int(target.sum())
        if positives == 0 or positives == len(target):
            ax.plot([], [], linestyle="none", label=f"{name}: {'absent from the test set' if positives == 0 else 'in every test image'}, no curve")
            continue
        fpr, tpr, _ = binary_roc(score, target.long())
        auroc = float(binary_auroc(score, target.long()))
        style = ("-", "--", ":")[column // 10 % 3]  # the colour cycle has 10 colours; ChestX-ray14 has 14 findings
        ax.plot(fpr.numpy(), tpr.numpy(), linestyle=style, label=f"{name} (AUROC {auroc:.3f}, n={positives})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", linewidth=1)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate (1 - specificity)", ylabel="true positive rate (sensitivity)",
           title=f"{title}\nROC, one-vs-rest" if not multilabel else f"{title}\nROC per finding")
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small", frameon=False)
    return figure


def _confusion_figure(matrix: np.ndarray, class_names, title) -> Figure:
    """Counts, rows = truth and columns = prediction, shaded by the row's share (each row is one class's recall)."""
    n = len(class_names)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure = Figure(figsize=(1.2 * n + 2.5, 1.2 * n + 1.5))
    ax = figure.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for row in range(n):
        for column in range(n):
            ax.text(column, row, str(matrix[row, column]), ha="center", va="center", color="white" if share[row, column] > 0.5 else "black")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), [f"{name} (n={total})" for name, total in zip(class_names, matrix.sum(axis=1))])
    ax.set(xlabel="predicted", ylabel="true", title=f"{title}\nconfusion matrix (shading: share of the row)")
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return figure


def _reliability_figure(bins: dict, title: str, outcome: str) -> Figure:
    """Accuracy (multi-label: fraction positive) per bin as bars, the gap to the bin's mean confidence hatched, the
    diagonal, and the bin counts along the bottom."""
    edges, count = bins["edges"], bins["count"]
    filled = count > 0
    left, width, accuracy = edges[:-1][filled], np.diff(edges)[filled], bins["accuracy"][filled]
    figure = Figure(figsize=(6, 6))
    ax = figure.subplots()
    ax.bar(left, accuracy, width=width, align="edge", color="tab:blue", edgecolor="black", label=outcome)
    ax.bar(left, bins["confidence"][filled] - accuracy, bottom=accuracy, width=width, align="edge", color="none", edgecolor="tab:red",
           hatch="//", label="gap to mean confidence")
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    for x, n in zip(edges[:-1] + np.diff(edges) / 2, count):
        ax.text(x, 0.01, str(n), ha="center", va="bottom", fontsize="x-small", rotation=90)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (predicted probability)", ylabel=outcome,
           title=f"{title}\nECE {bins['ece']:.3f} ({len(count)} bins, {int(count.sum())} predictions; counts at the bottom)")
    ax.legend(loc="upper left", fontsize="small")
    return figure


def plot_run(trainer, scores, labels, datamodule, *, out_dir: Path, run_id: str) -> dict[str, str]:
    """The runner's one call on rank 0, after the test and before W&B is closed: draw the run's plots from its
    de-duplicated test scores, log them to the run's W&B run and return their paths relative to ``out_dir`` for the
    result JSON. A plot that fails is a warning, never a lost result."""
    try:
        title = run_id + (" [SYNTHETIC DATA]" if datamodule.is_synthetic else "")
        plots = draw_run_plots(scores, labels, datamodule.class_names, multilabel=datamodule.multilabel, out_dir=Path(out_dir) / "plots" / run_id, title=title)
    except Exception as error:  # noqa: BLE001 - the trained model and its metrics matter more than a figure
        log.warning("could not draw the plots of %s: %s", run_id, error)
        return {}
    log_plots_to_wandb(trainer.loggers, plots)
    return {name: path.relative_to(out_dir).as_posix() for name, path in plots.items()}
