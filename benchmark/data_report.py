"""What a dataset holds once read: images and patients per split and class, sources, views, unreadable files.

The JSON keys are stable (see README, "Data report"): ``dataset``, ``root``, ``synthetic``, ``classes``,
``split_file``, ``splits`` ({split: {images, patients, per_class: {class: {images, patients}}}}),
``sources``, ``views``, ``problems`` ([{path, problem}]), ``problem_count``, ``excluded``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datamodules import get_datamodule_class


def data_report(name: str, *, root: Path | None, image_size: int, cache_dir: Path, split_dir: Path, split_seed: int = 0) -> dict[str, Any]:
    cls = get_datamodule_class(name)
    if root is None and not cls.is_synthetic:
        from datamodules.base import DatasetNotFoundError

        raise DatasetNotFoundError(f"{name}: give the dataset's folder with --root DIR")
    if root is not None and not cls.is_synthetic:
        root = cls.locate(root)
    datamodule = cls(root, image_size=image_size, cache_dir=cache_dir, split_dir=split_dir, split_seed=split_seed)
    datamodule.prepare_data()
    datamodule.setup()
    splits = {}
    for split, frame in datamodule.frames.items():
        per_class = {
            label: {"images": int(len(group)), "patients": int(group["patient_id"].nunique())}
            for label, group in frame.groupby("label", sort=True)
        }
        splits[split] = {"images": int(len(frame)), "patients": int(frame["patient_id"].nunique()), "per_class": per_class}
    manifest = datamodule.manifest
    problems = datamodule._cache.problems
    return {
        "dataset": name,
        "root": str(datamodule.root),
        "synthetic": datamodule.is_synthetic,
        "classes": datamodule.class_names,
        "split_file": str(datamodule.split_path),
        "splits": splits,
        "sources": {k: int(v) for k, v in manifest["source"].value_counts().sort_index().items()},
        "views": {k: int(v) for k, v in manifest["view"].value_counts().sort_index().items()},
        "problems": problems.to_dict(orient="records"),
        "problem_count": int(len(problems)),
        "excluded": datamodule.excluded,
    }


def format_report(report: dict[str, Any]) -> str:
    title = f"{report['dataset']}{' (SYNTHETIC phantoms)' if report['synthetic'] else ''} at {report['root']}"
    lines = [title, f"split file: {report['split_file']}", ""]
    lines.append(f"{'split':<7}{'class':<22}{'images':>8}{'patients':>10}")
    for split, info in report["splits"].items():
        for label, counts in info["per_class"].items():
            lines.append(f"{split:<7}{label:<22}{counts['images']:>8}{counts['patients']:>10}")
        lines.append(f"{split:<7}{'(all)':<22}{info['images']:>8}{info['patients']:>10}")
    lines.append("")
    lines.append("sources: " + ", ".join(f"{k or '(none)'} {v}" for k, v in report["sources"].items()))
    lines.append("views: " + ", ".join(f"{k or '(none)'} {v}" for k, v in report["views"].items()))
    lines.append(f"problems: {report['problem_count']}")
    lines += [f"  {p['path']}: {p['problem']}" for p in report["problems"]]
    return "\n".join(lines)
