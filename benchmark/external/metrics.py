"""The internal test's metrics, read over the classes an external set actually holds.

An external set often lacks some of the run's classes (Kermany has no COVID-19 image). torchmetrics then counts
the absent class's recall and AUROC as 0, so a macro average would fall for a class that was never there. Here a
class without images has no sensitivity (null), balanced accuracy is the mean sensitivity over the classes
present, and macro AUROC is the mean one-vs-rest AUROC over the classes with positives and negatives (null when
none has both, e.g. a set of one class). The torchmetrics values over all classes stay under ``all_classes``.
"""

from __future__ import annotations

from typing import Any

import torch

from benchmark.evaluate import defined_auroc as _auroc


def present_class_metrics(metrics: dict[str, Any], scores: torch.Tensor, labels: torch.Tensor, classes: list[str], *, multilabel: bool) -> dict[str, Any]:
    """``metrics`` (benchmark.evaluate's) with the macro values taken over the classes present; see the module doc."""
    fixed = {**metrics, "all_classes": {k: v for k, v in metrics.items() if k in ("auroc", "balanced_accuracy")}}
    if multilabel:
        known = labels >= 0  # -1: an uncertain finding left out (CheXpert's u_ignore)
        aurocs = {c: _auroc(scores[known[:, i], i], labels[known[:, i], i] == 1) for i, c in enumerate(classes)}
    else:
        present = [c for i, c in enumerate(classes) if (labels == i).any()]
        for c in classes:
            if c not in present:
                fixed[f"sensitivity/{c}"] = None
        recalls = [metrics.get(f"sensitivity/{c}") for c in present]
        fixed["balanced_accuracy"] = sum(recalls) / len(recalls) if recalls and None not in recalls else None
        aurocs = {c: _auroc(scores[:, i], labels == i) for i, c in enumerate(classes)}
    defined = [v for v in aurocs.values() if v is not None]
    fixed["auroc"] = sum(defined) / len(defined) if defined else None
    if multilabel:
        fixed.update({f"auroc/{c}": v for c, v in aurocs.items()})
    fixed["auroc_classes"] = [c for c, v in aurocs.items() if v is not None]
    return fixed


def external_intervals(metrics: dict[str, Any], scores: torch.Tensor, labels: torch.Tensor, patients, classes: list[str], *,
                       multilabel: bool, settings: dict | None) -> dict[str, Any]:
    """Patient-level bootstrap CIs (benchmark/statistics.py, with the run's own bootstrap settings) of the metrics
    whose definition is the bootstrap's: a value read over the classes present (see above) gets no CI."""
    from benchmark.statistics import bootstrap_metrics

    keys = ("n_resamples", "confidence", "seed", "method")
    summary = bootstrap_metrics(scores.numpy(), labels.numpy(), patients, classes, multilabel=multilabel,
                                **{k: v for k, v in (settings or {}).items() if k in keys})
    same = lambda name: metrics.get(name) is not None and summary["metrics"].get(name) is not None and abs(metrics[name] - summary["metrics"][name]) < 1e-6
    return {"ci": {name: ci for name, ci in summary["ci"].items() if same(name)}, "bootstrap": summary["bootstrap"]}
