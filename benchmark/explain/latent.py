"""Latent maps (§4.1 of the transfer-learning paper): t-SNE and a self-organising map of the raw test images and of
a trained model's penultimate features, drawn by class and by source, plus silhouette scores as numbers.

A warning sign is features that cluster by source (dataset) more than by class: the model may read the hospital,
not the disease. Silhouettes are computed on the standardised, PCA-reduced inputs, not the 2-D embeddings:
the same inputs the maps see.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from benchmark.explain.som import SelfOrganisingMap
from datamodules.atomic import atomic_path

PCA_DIMS = 50  # both spaces are reduced to at most this many principal components, for speed (t-SNE and the SOM)
THREADS = 1  # t-SNE's OpenMP and BLAS threads: 500 points gain little from more, and on shared cores they thrash
SOM_JITTER = 0.3  # SOM panels: each image drawn at its winner cell, jittered uniformly by +-this in both axes


def latent_maps(features, pixels, labels, sources, path, *, title: str, seed: int = 0, max_points: int = 500,
                som_shape=(10, 10), som_epochs: int = 20) -> dict:
    """Draw t-SNE and SOM maps of the raw pixels and of ``features`` into one PNG at ``path``; return its record
    (silhouettes by class and by source per space, SOM and t-SNE settings, notes), JSON-serialisable."""
    features, pixels = np.asarray(features, dtype=float), np.asarray(pixels, dtype=float)
    labels, sources = np.asarray(labels, dtype=str), np.asarray(sources, dtype=str)
    if not len(features) == len(pixels) == len(labels) == len(sources):
        raise ValueError("features, pixels, labels and sources must have one entry per image")
    total, keep = len(labels), _stratified_subsample(labels, max_points, seed)
    features, pixels, labels, sources = features[keep], pixels[keep], labels[keep], sources[keep]
    n = len(keep)
    by_source = len(set(sources)) > 1
    notes = [f"subsample: {n} of {total} points, stratified by class (seed {seed})"]
    with threadpool_limits(limits=THREADS):
        inputs = {"pixels": _standardise_and_reduce(pixels, seed), "features": _standardise_and_reduce(features, seed)}
    for name, raw in (("pixels", pixels), ("features", features)):
        notes.append(f"{name}: standardised per dimension, then PCA {raw.shape[1]} -> {inputs[name].shape[1]} dims "
                     "(for speed) before t-SNE, SOM and silhouettes")
    notes.append(f"SOM panels: each image at its winner cell, jittered by +-{SOM_JITTER} cell")
    if not by_source:
        notes.append("single source: by-source columns left out, silhouette_by_source is None")
    spaces, drawn = {}, {}
    with threadpool_limits(limits=THREADS):
        for name in ("pixels", "features"):
            spaces[name], drawn[name] = _one_space(inputs[name], labels, sources, seed, som_shape, som_epochs)
    figure = _figure(drawn, labels, sources, by_source, title)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return {"png": str(path), "points": n, "spaces": spaces,
            "sources": {k: int(v) for k, v in sorted(Counter(sources.tolist()).items())}, "notes": notes}


def _stratified_subsample(labels: np.ndarray, max_points: int, seed: int) -> np.ndarray:
    """At most ``max_points`` indices, each class in proportion: a seeded random rank within each class, divided by
    the class size, and the smallest kept."""
    if len(labels) <= max_points:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    key = np.empty(len(labels))
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        key[members] = (rng.permutation(len(members)) + rng.uniform(size=len(members))) / len(members)
    return np.sort(np.argsort(key, kind="stable")[:max_points])


def _standardise(x: np.ndarray) -> np.ndarray:
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _standardise_and_reduce(x: np.ndarray, seed: int) -> np.ndarray:
    """Standardised columns, reduced by PCA to at most PCA_DIMS components (fewer when there are fewer points)."""
    dims = min(PCA_DIMS, x.shape[0] - 1, x.shape[1])
    x = _standardise(x)
    return x if dims >= x.shape[1] else PCA(n_components=dims, random_state=seed).fit_transform(x)


def _silhouette(inputs: np.ndarray, groups: np.ndarray) -> float | None:
    k = len(set(groups.tolist()))
    return float(silhouette_score(inputs, groups)) if 2 <= k <= len(groups) - 1 else None


def _one_space(inputs, labels, sources, seed, som_shape, som_epochs) -> tuple[dict, dict]:
    n = len(inputs)
    perplexity = float(min(30.0, (n - 1) / 3))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(inputs)
    som = SelfOrganisingMap(*som_shape, inputs.shape[1], seed=seed).fit(inputs, som_epochs, shuffle_seed=seed)
    cells = som.winners(inputs)
    jitter = np.random.default_rng(seed).uniform(-SOM_JITTER, SOM_JITTER, size=cells.shape)
    record = {"dims": int(inputs.shape[1]), "silhouette_by_class": _silhouette(inputs, labels), "silhouette_by_source": _silhouette(inputs, sources),
              "som": {"shape": [int(s) for s in som_shape], "epochs": int(som_epochs), "sigma0": som.sigma0,
                      "learning_rate": som.learning_rate, "neighbourhood": som.neighbourhood_kind,
                      "quantisation_error": som.quantisation_error(inputs)},
              "tsne": {"perplexity": perplexity}}
    return record, {"tsne": tsne, "som": cells[:, ::-1] + jitter, "winners": cells}


def _figure(drawn, labels, sources, by_source, title) -> Figure:
    """Rows: raw pixels, features; columns: t-SNE by class, (by source,) SOM by class, (SOM by source)."""
    columns = [("tsne", "class"), ("tsne", "source"), ("som", "class"), ("som", "source")]
    columns = [c for c in columns if by_source or c[1] == "class"]
    figure = Figure(figsize=(4 * len(columns), 8))
    axes = figure.subplots(2, len(columns), squeeze=False)
    for row, space in enumerate(("pixels", "features")):
        for col, (method, colour_by) in enumerate(columns):
            ax, points = axes[row, col], drawn[space][method]
            groups = labels if colour_by == "class" else sources
            for group in sorted(set(groups.tolist())):
                mine = groups == group
                ax.scatter(points[mine, 0], points[mine, 1], s=8, alpha=0.7, label=f"{group} (n={int(mine.sum())})")
            ax.set_title(f"{'raw pixels' if space == 'pixels' else 'features'}: "
                         f"{'t-SNE' if method == 'tsne' else 'SOM'} by {colour_by}", fontsize="medium")
            ax.set_xticks([]), ax.set_yticks([])
            if row == 1:
                ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), fontsize="x-small", frameon=False, ncol=2)
    figure.suptitle(title)
    return figure
