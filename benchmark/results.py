"""One JSON file per run under ``<out>/results/<dataset>/<method>/seed<k>.json``: the leaderboard's only input."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


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
    payload = {"schema_version": SCHEMA_VERSION, "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **result}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(_json_safe(payload), indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def load_results(results_dir: Path) -> list[dict[str, Any]]:
    results = []
    for path in sorted(Path(results_dir).rglob("*.json")):
        data = json.loads(path.read_text())
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{path}: result schema {data.get('schema_version')} is not {SCHEMA_VERSION}; rerun that run")
        data["_file"] = str(path)
        results.append(data)
    return results
