"""One JSON file per run under ``<out>/results/<dataset>/<method>/seed<k>.json``: the leaderboard's only input.

Every result carries ``config`` (the effective configuration it was trained with) and its ``config_fingerprint``:
``--resume`` reuses a result only when the fingerprint matches, and the leaderboard never pools two fingerprints.
Files are written atomically (a unique temporary file renamed into place), so readers never see torn JSON.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from datamodules.atomic import atomic_write_text

SCHEMA_VERSION = 1
# words about a method, and its search space (a draw's values are in the settings), not settings of a run
DESCRIPTIVE_METHOD_KEYS = ("title", "paper", "profile", "deviations", "file", "search_space")
PATH_DATASET_KEYS = ("root", "data_root")  # where the data lies, not what it is (the split hash says that)
# what the leaderboard reads from every result; a file without one of them is skipped and named
REQUIRED_KEYS = ("dataset.name", "dataset.image_size", "dataset.split_sha256", "dataset.classes", "dataset.counts",
                 "dataset.split_file", "dataset.split_seed", "method.id", "seed", "metrics", "parameter_count", "start_weights")

log = logging.getLogger(__name__)


def table_key(result: dict) -> tuple:
    """Results compared with each other share this: dataset, image size, split file and class list."""
    dataset = result["dataset"]
    return (dataset["name"], dataset["image_size"], dataset["split_sha256"], tuple(dataset["classes"]))


def result_path(out_dir: Path, run_id: str) -> Path:
    return Path(out_dir) / "results" / f"{run_id}.json"


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Write one result atomically: concurrent writers never share a temporary file, readers never see a torn one."""
    payload = {"schema_version": SCHEMA_VERSION, "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **result}
    atomic_write_text(path, json.dumps(_json_safe(payload), indent=2, sort_keys=False) + "\n")


def effective_config(spec) -> dict[str, Any]:
    """The settings a run's numbers depend on (not its seed, logging, descriptions or data paths), as JSON values."""
    config = {
        "method": {k: v for k, v in spec.method.items() if k not in DESCRIPTIVE_METHOD_KEYS},
        "dataset": {k: v for k, v in spec.dataset.items() if k not in PATH_DATASET_KEYS},
        "data": _data_settings(spec.data),
        "trainer": spec.trainer,
        "grid_search": spec.grid_search,
    }
    if getattr(spec, "stages", None):  # a chain: every stage's resolved dataset and settings
        config["stages"] = [{**stage, "dataset": {k: v for k, v in stage["dataset"].items() if k not in PATH_DATASET_KEYS},
                             "data": _data_settings(stage["data"])} for stage in spec.stages]
    return json.loads(json.dumps(_json_safe(config), sort_keys=True, default=str))


def _data_settings(data: dict) -> dict:
    """Data settings as fingerprinted: an unset ``held_out`` (a patient split) is left out, so the fingerprints of
    runs written before source splits existed still match."""
    return {k: v for k, v in data.items() if not (k == "held_out" and v is None)}


def fingerprint(config: dict[str, Any]) -> str:
    """First 16 hex digits of the sha256 of a configuration's canonical JSON."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_fingerprint(spec) -> str:
    """The fingerprint of a spec's effective configuration: equal fingerprints = the same training setup."""
    return fingerprint(effective_config(spec))


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{"trainer": {"max_epochs": 2}}`` -> ``{"trainer.max_epochs": 2}`` (lists stay values)."""
    if not isinstance(config, dict) or (prefix and not config):
        return {prefix: config} if prefix else {}
    flat = {}
    for key, value in config.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def changed_keys(old: dict, new: dict) -> list[str]:
    """The dotted keys whose values differ between two configurations (a key one side lacks counts)."""
    old, new = flatten(old), flatten(new)
    return [key for key in sorted(old.keys() | new.keys()) if old.get(key, ...) != new.get(key, ...)]


def config_changes(old: dict, new: dict) -> list[str]:
    """Dotted keys whose values differ, as ``"trainer.max_epochs 4 -> 2"`` (``unset`` where a side lacks the key)."""
    flat_old, flat_new = flatten(old), flatten(new)
    show = lambda flat, key: json.dumps(flat[key], sort_keys=True, default=str) if key in flat else "unset"
    return [f"{key} {show(flat_old, key)} -> {show(flat_new, key)}" for key in changed_keys(old, new)]


def result_problem(data: Any) -> str | None:
    """Why a parsed result file cannot be used (wrong schema, a key the leaderboard reads is missing), or None."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if data.get("schema_version") != SCHEMA_VERSION:
        return f"result schema {data.get('schema_version')} is not {SCHEMA_VERSION}; rerun that run"
    missing = [key for key in REQUIRED_KEYS if not _has(data, key)]
    return f"missing key {missing[0]!r}" if missing else None


def _has(data: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def read_result(path: Path) -> tuple[dict | None, str | None]:
    """(the result, None), or (None, why it is unusable): unreadable, not JSON, wrong schema or missing keys."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        return None, f"unreadable ({error.__class__.__name__}: {error})"
    except json.JSONDecodeError as error:
        return None, f"not valid JSON ({error})"
    problem = result_problem(data)
    return (None, problem) if problem else (data, None)


def read_results(results_dir: Path) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Every usable result under ``results_dir``, and (file, reason) for each one skipped (also logged as a warning)."""
    results, skipped = [], []
    for path in sorted(Path(results_dir).rglob("*.json")):
        data, problem = read_result(path)
        if problem:
            log.warning("skipped result file %s: %s", path, problem)
            skipped.append((str(path), problem))
            continue
        data["_file"] = str(path)
        results.append(data)
    return results, skipped


def load_results(results_dir: Path) -> list[dict[str, Any]]:
    """The usable results under ``results_dir``; unusable files are named in a warning and skipped, never raised."""
    return read_results(results_dir)[0]


def resume_reason(path: Path, spec) -> str | None:
    """Why ``--resume`` must run ``spec`` again although ``path`` may hold its result; None when the result is reusable."""
    if not Path(path).exists():
        return "no result yet"
    try:
        stored = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "result file is unreadable"
    problem = result_problem(stored)
    if problem:
        return f"result file is unusable ({problem})"
    if not stored.get("config_fingerprint"):
        return "result has no fingerprint (written by an older version)"
    if stored["config_fingerprint"] == config_fingerprint(spec):
        return None
    return f"configuration changed: {changes_text(config_changes(stored.get('config') or {}, effective_config(spec)))}"


def changes_text(changes: list[str]) -> str:
    """The first four changes of ``config_changes`` and how many more, for a log line."""
    shown = ", ".join(changes[:4]) + (f", and {len(changes) - 4} more" if len(changes) > 4 else "")
    return shown or "fingerprint differs"


def read_predictions(result: dict) -> pd.DataFrame:
    path = Path(result.get("predictions_file") or "")
    if not path.is_file() and result.get("_file"):  # a store moved as a whole: predictions/ beside results/
        store = Path(result["_file"]).parent
        while store.name != "results" and store != store.parent:
            store = store.parent
        path = store.parent / "predictions" / f"{result['run_id']}.csv"
    return pd.read_csv(path).sort_values("image", kind="stable").reset_index(drop=True)


def prediction_arrays(runs: list[dict], classes: list[str], multilabel: bool, images: pd.Series | None = None):
    """(list of per-seed score arrays, labels, patients, images) aligned on the image paths of the first run."""
    frames = [read_predictions(r) for r in sorted(runs, key=lambda r: r["seed"])]
    reference = frames[0] if images is None else None
    order = images if images is not None else reference["image"]
    scores = []
    for frame in frames:
        if sorted(frame["image"]) != sorted(order):
            raise ValueError("the runs' test predictions cover different images")
        frame = frame.set_index("image").loc[list(order)].reset_index()
        scores.append(frame[[f"score_{c}" for c in classes]].to_numpy(dtype=float))
        reference = frame if reference is None else reference
    if multilabel:
        labels = np.array([[int(c in str(label).split("|")) for c in classes] for label in reference["label"]])
    else:
        labels = reference["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    return scores, labels, reference["patient_id"].astype(str).to_numpy(), order


def read_records(paths, *, kind: str, required: tuple[str, ...], what: str) -> list[dict[str, Any]]:
    """Every usable JSON record of ``kind`` (this schema version, with the ``required`` keys) among ``paths``, each
    with ``_file``; a torn or foreign file is named in a warning (as ``what``) and skipped."""
    records = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            log.warning("skipped %s %s: unreadable (%s)", what, path, error)
            continue
        if not isinstance(data, dict) or data.get("kind") != kind or data.get("schema_version") != SCHEMA_VERSION or any(k not in data for k in required):
            log.warning("skipped %s %s: not an %s of schema %s", what, path, what, SCHEMA_VERSION)
            continue
        data["_file"] = str(path)
        records.append(data)
    return records
