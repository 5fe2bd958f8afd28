"""The shortcut probes of one run, in the numbers the leaderboard shows (issue 12).

- Lung-mask test: the probe metric (balanced accuracy; macro AUROC for a multi-label task) on the full images, on the
  lungs alone and without the lungs (only the border and any text remain). The masked part is filled with the
  training images' mean intensity (``mask_fill: mean``, the default) or black (``black``, as the issue words it).
  Deviation: black pushes the images so far from the training data that models collapse to one class, which hides
  the shortcut: on the planted-shortcut phantoms a model that reads the corner marker scores balanced accuracy 0.5
  with the lungs black and 1.0 with the lungs mean-filled (tests/test_explain.py).
- Text test (twice-transfer paper, section 9.1, the "SEDUTO" experiment generalised): the word burnt into a corner of
  every correctly classified normal image of the sample; how often and how far the prediction moves.
- Source probe: a linear classifier on the frozen penultimate features predicting each image's source (AUROC).
- Grad-CAM energy: the share of the positive Grad-CAM heat of the predicted class inside the lung regions.
- Verdict: flagged when the model still separates the classes without any lung pixel, or its features encode the
  source (benchmark/explain/probes.py shortcut_verdict).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmark.explain import probes

NORMAL_NAMES = ("normal", "no finding", "non-covid")  # the class the text test burns into, first found


def normal_class(class_names: list[str]) -> int | None:
    """The index of the class a normal film has (normal, No Finding, else non-COVID), or None."""
    lowered = [c.lower() for c in class_names]
    return next((lowered.index(n) for n in NORMAL_NAMES if n in lowered), None)


def run_probes(scorer, sample, scores: np.ndarray, features: np.ndarray, settings: dict, *, class_names: list[str],
               multilabel: bool, fill_mean: float, gradcam: np.ndarray) -> dict[str, Any]:
    """Every probe of one run; ``fill_mean``: the training images' mean intensity in [0, 1] (the masks' default fill);
    ``gradcam``: the predicted class's Grad-CAM of every sampled image."""
    options = {"multilabel": multilabel, "resamples": settings["bootstrap_resamples"], "seed": settings["seed"]}
    metric = lambda s: probes.probe_metric(s, sample.targets, sample.patients, class_names, **options)
    fill = 0 if settings["mask_fill"] == "black" else int(round(255 * float(np.mean(fill_mean))))
    masked = lambda keep: scorer(probes.mask_images(sample.pixels, sample.masks, keep=keep, fill=fill))
    lungs = {
        "full": metric(scores),
        "lungs_only": metric(masked("lungs")),
        "lungs_out": metric(masked("outside_lungs")),
        "regions": sample.region_counts(),
        "fill": {"kind": settings["mask_fill"], "value": fill},
    }
    result = {"lung_mask": lungs, "text": _text_probe(scorer, sample, scores, settings["word"], class_names, multilabel),
              "source": probes.source_probe(features, np.asarray(sample.sources), sample.patients, seed=settings["seed"]),
              "gradcam_energy": {k: v for k, v in probes.energy_inside(gradcam, sample.masks).items() if k != "per_image"}}
    source_auroc = (result["source"] or {}).get("auroc")
    result["verdict"] = probes.shortcut_verdict(lungs_out=lungs["lungs_out"], source_auroc=source_auroc)
    return result


def _text_probe(scorer, sample, scores: np.ndarray, word: str, class_names: list[str], multilabel: bool) -> dict:
    if multilabel:
        return {"skipped": "multi-label task: no single normal class"}
    normal = normal_class(class_names)
    if normal is None:
        return {"skipped": f"no normal class among {class_names}"}
    chosen = np.flatnonzero((sample.targets == normal) & (scores.argmax(1) == normal))
    burnt = probes.burn_text(sample.pixels[chosen], word)
    shift = probes.text_shift(scores[chosen], scorer(burnt) if len(chosen) else scores[chosen], normal)
    return {"word": word, "class": class_names[normal], **shift}
