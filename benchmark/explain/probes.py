"""Shortcut probes (issue 12): does a model read the lungs, or the text and the source burnt into the film?

The paper's SEDUTO test (twice-transfer-output-neuron-keeping, sections 5.2 and 9.1) as primitives: lung masking,
text burning, the score shift it causes, a source probe on frozen features, heat inside the lungs, and a verdict.
Callers pass uint8 pixels (N, H, W), boolean masks (lung_regions.region_mask) and a model's scores (N, K).
"""

from __future__ import annotations

import cv2
import numpy as np

from datamodules.lung_regions import CENTRAL_FIELD

RESAMPLES = 200  # bootstrap resamples of the masked-image metrics: a probe, not a leaderboard number
CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")


def mask_images(pixels: np.ndarray, masks: np.ndarray, *, keep: str, fill: int = 0) -> np.ndarray:
    """keep="lungs": ``fill`` outside the masks; keep="outside_lungs": ``fill`` over the lungs (border and text remain).
    ``fill`` 0 blacks out; the training mean (run_probes' default) keeps the masked image near the training data,
    so the probe measures what is left rather than the model's reaction to a black hole. New array."""
    if keep not in ("lungs", "outside_lungs"):
        raise ValueError(f"keep={keep!r}: use 'lungs' or 'outside_lungs'")
    masks = np.broadcast_to(np.asarray(masks, dtype=bool), np.shape(pixels))
    keep_mask = masks if keep == "lungs" else ~masks
    return np.where(keep_mask, pixels, np.uint8(fill)).astype(np.uint8)


def _glyphs(word: str, side: int) -> np.ndarray:
    """The word's white HERSHEY_SIMPLEX ink (0/255), about 9 % of ``side`` high and at most 45 % wide; drawn at
    >= 448 px and shrunk with area averaging, so that it stays legible on a 64 px image."""
    big = max(2 * side, 448)
    thickness = max(1, round(big / 150))
    (width, height), _ = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, 1.0, thickness)
    scale = min(0.08 * big / height, 0.45 * big / width)
    (width, height), base = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    canvas = np.zeros((height + base + 2 * thickness + 2, width + 2 * thickness + 2), np.uint8)
    cv2.putText(canvas, word, (thickness + 1, height + thickness + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_AA)
    rows, cols = np.nonzero(canvas > 127)
    ink = canvas[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    return _shrink(ink, min(0.09 * side / ink.shape[0], 0.45 * side / ink.shape[1]))


def _shrink(ink: np.ndarray, factor: float) -> np.ndarray:
    if factor < 1:
        ink = cv2.resize(ink, (max(1, round(ink.shape[1] * factor)), max(1, round(ink.shape[0] * factor))), interpolation=cv2.INTER_AREA)
    return np.where(ink > 100, 255, 0).astype(np.uint8)


def burn_text(pixels: np.ndarray, word: str = "SEDUTO", *, corner: str = "top_left") -> np.ndarray:
    """Burn ``word`` in white into a corner, outside CENTRAL_FIELD (the paper's SEDUTO, section 9.1). New array."""
    if corner not in CORNERS:
        raise ValueError(f"corner={corner!r}: use one of {CORNERS}")
    out = np.array(pixels, dtype=np.uint8, copy=True)
    height, width = out.shape[-2:]
    glyphs = _glyphs(word, min(height, width))
    x0, y0, x1, y1 = CENTRAL_FIELD
    # the band above (below) the central field, as region_mask rounds it; the word sits in it, one pixel from the edge
    band = int(np.floor(y0 * height)) if corner.startswith("top") else height - int(np.ceil(y1 * height))
    if glyphs.shape[0] > band - 1:  # a tiny image: shrink the word to the band
        glyphs = _shrink(glyphs, (band - 1) / glyphs.shape[0])
    gh, gw = glyphs.shape
    top = 1 if corner.startswith("top") else height - 1 - gh
    left = max(1, width // 50) if corner.endswith("left") else width - max(1, width // 50) - gw
    region = out[..., top:top + gh, left:left + gw]
    region[...] = np.where(glyphs > 0, 255, region)
    return out


def text_shift(before: np.ndarray, after: np.ndarray, class_index: int) -> dict:
    """How scores (N, K) move when text is burnt in (section 9.1: normal 91.8 % -> 91.6 %); N = 0 gives None values."""
    before, after = np.asarray(before, float), np.asarray(after, float)
    n = len(before)
    if n == 0:
        return {"images": 0, "moved_fraction": None, "mean_drop": None, "max_drop": None, "mean_total_shift": None}
    drop = before[:, class_index] - after[:, class_index]
    return {"images": n, "moved_fraction": float(np.mean(before.argmax(1) != after.argmax(1))),
            "mean_drop": float(drop.mean()), "max_drop": float(drop.max()),
            "mean_total_shift": float(np.mean(0.5 * np.abs(after - before).sum(1)))}


def probe_metric(scores, targets, patients, class_names, *, multilabel: bool = False, seed: int = 0, resamples: int = RESAMPLES) -> dict:
    """The probe metric of (masked-image) scores with its patient-level 95 % CI (benchmark.statistics, not re-implemented):
    balanced accuracy, or the macro AUROC of a multi-label task; with chance (1/K, or 0.5) beside it."""
    from benchmark.statistics import bootstrap_metrics

    name = "auroc" if multilabel else "balanced_accuracy"
    result = bootstrap_metrics(np.asarray(scores, float), np.asarray(targets), np.asarray(patients), list(class_names),
                               multilabel=multilabel, n_resamples=resamples, seed=seed)
    # chance: what a constant prediction scores, so over the classes the images hold (balanced accuracy averages those)
    present = len(np.unique(np.asarray(targets))) if not multilabel else None
    return {"metric": name, "value": result["metrics"].get(name), "ci": result["ci"].get(name),
            "chance": 0.5 if multilabel else 1 / max(present, 1), "images": len(targets),
            "patients": result["bootstrap"]["n_patients"], "resamples": resamples}


def source_probe(features, sources, groups, *, seed: int = 0, folds: int = 5) -> dict:
    """Linear probe of each image's source from frozen features, patient-grouped CV; macro one-vs-rest AUROC."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, sources, groups = np.asarray(features, float), np.asarray(sources), np.asarray(groups)
    names, counts = np.unique(sources, return_counts=True)
    result = {"auroc": None, "sources": {str(k): int(v) for k, v in zip(names, counts)}, "folds": None, "images": len(sources)}
    if len(names) < 2:
        return {**result, "reason": "one source"}
    folds = min(folds, int(counts.min()), len(np.unique(groups)))
    if folds < 2:
        return {**result, "reason": "a source has fewer than 2 images (or fewer than 2 patients)"}
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    probabilities = cross_val_predict(model, features, sources, groups=groups, cv=splitter, method="predict_proba")
    auroc = (roc_auc_score(sources == names[1], probabilities[:, 1]) if len(names) == 2
             else roc_auc_score(sources, probabilities, multi_class="ovr", average="macro", labels=names))
    return {**result, "auroc": float(auroc), "folds": folds}


def energy_inside(heatmaps, masks) -> dict:
    """Share of each map's positive heat inside the mask, its mean, and what a uniform map would give (mask area)."""
    heat = np.clip(np.asarray(heatmaps, float), 0, None)
    masks = np.broadcast_to(np.asarray(masks, bool), heat.shape)
    total = heat.reshape(len(heat), -1).sum(1)
    inside = (heat * masks).reshape(len(heat), -1).sum(1)
    shares = [float(i / t) if t > 0 else None for i, t in zip(inside, total)]
    defined = [s for s in shares if s is not None]
    return {"per_image": shares, "mean": float(np.mean(defined)) if defined else None,
            "uniform": float(masks.mean()) if masks.size else None}


def shortcut_verdict(*, lungs_out: dict, source_auroc: float | None = None, margin: float = 0.10,
                     source_threshold: float = 0.9) -> dict:
    """Flag a shortcut when, with the lungs blacked out, the probe metric's (probe_metric) 95 % CI low end exceeds chance + margin, or
    a source probe's AUROC exceeds source_threshold. 0.10 over chance with the CI's low end (not the point) leaves the
    sampling noise of a few hundred images out; AUROC 0.9 is 'excellent' separation, beyond what scanner/exposure
    differences alone tend to give, so the features encode the hospital itself (section 5.2: text exclusive to a class)."""
    auroc = source_auroc
    lungs_out = lungs_out or {}
    ci, chance, metric = lungs_out.get("ci"), lungs_out.get("chance"), str(lungs_out.get("metric", "balanced_accuracy")).replace("_", " ")
    reasons = []
    if ci is not None and None not in ci and ci[0] > chance + margin:
        reasons.append(f"lungs blacked out: {metric} CI low {ci[0]:.3f} > chance {chance:.3f} + {margin:.2f}")
    if auroc is not None and auroc > source_threshold:
        reasons.append(f"source probe AUROC {auroc:.3f} > {source_threshold:.2f}: the features encode the source")
    rule = (f"flagged if the probe metric with the lungs blacked out has 95 % CI low > chance + {margin:.2f}, "
            f"or the source probe's AUROC > {source_threshold:.2f}")
    return {"flagged": bool(reasons), "reasons": reasons, "rule": rule}
