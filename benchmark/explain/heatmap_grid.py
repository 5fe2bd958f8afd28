"""A grid of heatmaps: one row per image (the image, then each method's map over it), as a PNG.

Matplotlib's object API (no pyplot), as ``benchmark.plots``: unsigned maps in jet, signed maps (CAM, LRP) in bwr
centred at zero, each at alpha 0.5 over the gray image.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def draw_heatmap_grid(rows: list[dict], path: str | Path, *, title: str, signed: bool = False) -> Path:
    """Draw ``rows`` ({image: (H, W), caption: str, maps: {title: (H, W)}}) to ``path``; each map is titled in its cell
    (a row's maps may differ: the predicted and the true class of that image). Returns the path."""
    width = max((len(row["maps"]) for row in rows), default=0)
    figure = Figure(figsize=(2.4 * (1 + width), 2.9 * max(len(rows), 1) + 0.4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(max(len(rows), 1), 1 + width, squeeze=False)
    for r, row in enumerate(rows):
        image = np.asarray(row["image"], dtype=float)
        axes[r, 0].imshow(image, cmap="gray")
        axes[r, 0].set_xlabel("\n".join(textwrap.wrap(row.get("caption", ""), 34, break_long_words=True, replace_whitespace=False)), fontsize=7)
        for c, (column, heat) in enumerate(row["maps"].items(), start=1):
            heat = np.asarray(heat, dtype=float)
            axes[r, c].imshow(image, cmap="gray")
            if signed:
                limit = float(np.abs(heat).max()) or 1.0
                axes[r, c].imshow(heat, cmap="bwr", vmin=-limit, vmax=limit, alpha=0.5)
            else:
                axes[r, c].imshow(heat, cmap="jet", alpha=0.5)
            axes[r, c].set_title(column, fontsize=8)
    if rows:
        axes[0, 0].set_title("image", fontsize=9)
    for ax in axes.flat:
        if not ax.images:
            ax.set_axis_off()
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100, bbox_inches="tight")
    return path
