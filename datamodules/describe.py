"""The last stage: what a result file and the data report record about the data used (one way to count)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from datamodules.lung_regions import LUNG_BOXES_COLUMN, lung_region
from datamodules.source_split import HELD_OUT_DUPLICATE, VAL_SOURCE_DUPLICATE
from datamodules.split_read import resolved


def class_counts(frame: pd.DataFrame, class_names: list[str], multilabel: bool) -> dict[str, dict[str, int]]:
    """Images and patients per class; a multi-label image counts once for every finding of the task it holds."""
    if multilabel:
        frame = frame.assign(label=frame["label"].str.split("|")).explode("label")
        frame = frame[frame["label"].isin(class_names)]
    return {str(label): {"images": int(len(group)), "patients": int(group["patient_id"].nunique())}
            for label, group in frame.groupby("label", sort=True)}


def patients_joined(frames: dict[str, pd.DataFrame]) -> int:
    """Patients that share a split group with another patient because their images are duplicates."""
    frame = pd.concat(frames.values())
    if "group_id" not in frame.columns:
        return 0
    per_group = frame.groupby("group_id")["patient_id"].nunique()
    return int(per_group[per_group > 1].sum())


def lung_crop_regions(dm) -> dict[str, int] | None:
    """With the lung crop (siamese paper 3.3.1): how many train/val/test images were cropped to annotated boxes and
    how many to the central field; None without it."""
    if not getattr(dm, "lung_crop", False):
        return None
    used = set(pd.concat(dm.frames.values())["path"])
    manifest = dm.manifest
    boxes = manifest[LUNG_BOXES_COLUMN] if LUNG_BOXES_COLUMN in manifest.columns else pd.Series("", index=manifest.index)
    counts = {"annotation": 0, "central_field": 0}
    for path, text in zip(manifest["path"], boxes):
        if resolved(path) in used:
            counts[lung_region(text)[1]] += 1
    return counts


def held_out_record(dm) -> dict[str, Any] | None:
    """For a leave-one-source-out split: the held-out sources, the validation, and the images of every source in every
    split of the split file (excluded ones too), with the duplicates kept out for the test and val sources; else None."""
    if not getattr(dm, "held_out", None):
        return None
    split = dm.held_out_rows  # the split file's rows with their sources, read by setup()
    per_source = {str(source): {str(s): int(n) for s, n in group["split"].value_counts().sort_index().items()}
                  for source, group in split.groupby("source", sort=True)}
    val = split.loc[split["split"] == "val", "source"].unique()
    val_source = str(val[0]) if dm.held_out["validation"] == "source" and len(val) == 1 else dm.held_out["val_source"]
    return {"field": dm.source_field, "test": list(dm.held_out["test"]), "validation": dm.held_out["validation"], "val_source": val_source,
            "per_source": per_source, "duplicates_of_held_out": int(dm.excluded.get(HELD_OUT_DUPLICATE, 0)),
            "duplicates_of_val_source": int(dm.excluded.get(VAL_SOURCE_DUPLICATE, 0))}


def describe(dm) -> dict[str, Any]:
    """What a result file records about the data of a set-up DataModule: enough to tell exactly which images were used."""
    counts = {
        split: {"images": len(f), "patients": int(f["patient_id"].nunique()),
                "per_class": {k: v["images"] for k, v in class_counts(f, dm.class_names, dm.multilabel).items()}}
        for split, f in dm.frames.items()
    }
    description = {
        "name": dm.name,
        "synthetic": dm.is_synthetic,
        "root": str(dm.root),
        "classes": dm.class_names,
        "class_map": dm.class_map,
        "multilabel": dm.multilabel,
        "image_size": dm.image_size,
        "split_file": str(dm.split_path),
        "split_sha256": dm.split_sha256,
        "split_seed": dm.split_seed,
        "patients_joined_by_duplicates": patients_joined(dm.frames),
        "counts": counts,
        "excluded": dm.excluded,
        "normalization": dm.input_normalization(),
        "lung_crop": lung_crop_regions(dm),
    }
    held_out = held_out_record(dm)
    if held_out is not None:  # only a LOSO split: other result files keep their keys
        description["held_out"] = held_out
    return {**description, **dm.reader.describe_extra(dm)}
