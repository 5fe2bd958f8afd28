"""Grid search on the validation split (siamese paper, Table 2), then the final run with the best point."""

import json
from pathlib import Path

import pytest
import yaml

from benchmark.cli import main
from benchmark.config import ConfigError, RunSpec, apply, load_suite, parse_grid, points

REPO = Path(__file__).resolve().parent.parent


def test_parse_grid_separates_axes_from_search_settings():
    axes, overrides = parse_grid({"optimizer.lr": [1e-3, 1e-4], "data.batch_size": [8, 16], "trainer": {"max_epochs": 20}, "task": {"pairs_per_epoch": 5000}})
    assert axes == {"optimizer.lr": [1e-3, 1e-4], "data.batch_size": [8, 16]}
    assert overrides == {"trainer": {"max_epochs": 20}, "task": {"pairs_per_epoch": 5000}}
    assert len(points(axes)) == 4 and points(axes)[1] == {"optimizer.lr": 1e-3, "data.batch_size": 16}
    for bad, message in [({"optimizer.lr": 1e-3}, "non-empty list"), ({"data.split_seed": [0, 1]}, "shared split"),
                         ({"foo.bar": [1]}, "must start with"), ({"trainer": {"max_epochs": 2}}, "no axis"), ({"lr": [1]}, "unknown grid_search key")]:
        with pytest.raises(ConfigError, match=message):
            parse_grid(bad)


def test_apply_sets_values_and_search_settings_on_a_copy():
    spec = RunSpec("s", {"name": "synthetic"}, {"id": "m", "optimizer": {"name": "adam", "lr": 1e-4}, "scheduler": None}, 0, {"batch_size": 16}, {"max_epochs": 50})
    point = apply(spec, {"optimizer.lr": 1e-3, "data.batch_size": 8, "scheduler.name": "step"}, {"trainer": {"max_epochs": 20}, "task": {"pairs_per_epoch": 5000}})
    assert point.method["optimizer"] == {"name": "adam", "lr": 1e-3} and point.method["scheduler"] == {"name": "step"}
    assert point.data["batch_size"] == 8 and point.trainer["max_epochs"] == 20 and point.method["task"] == {"pairs_per_epoch": 5000}
    assert spec.method["optimizer"]["lr"] == 1e-4 and spec.data["batch_size"] == 16 and spec.trainer["max_epochs"] == 50  # untouched


def _suite(tmp_path, *, grid_search=True):
    method = {
        "extends": str(REPO / "configs/methods/single_net.yaml"), "title": "tiny single-net", "model": {"nf": 8, "fc_units": 16},
        "optimizer": {"name": "adam", "lr": 1e-3}, "data": {"batch_size": 8}, "trainer": {"max_epochs": 1},
        "grid_search": {"optimizer.lr": [1e-2, 1e-3], "data.batch_size": [8], "trainer": {"max_epochs": 2}},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(method))
    suite = {
        "name": "tiny", "datasets": [{"name": "covid19_radiography", "options": {"patients_per_class": 8}}], "synthetic_without_data_root": True,
        "methods": ["tiny.yaml"], "seeds": [0], "grid_search": grid_search, "logging": {"wandb": False},
        "data": {"image_size": 32, "split_seed": 0, "val_fraction": 0.25, "test_fraction": 0.25},
        "trainer": {"accelerator": "cpu", "enable_progress_bar": False},
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def test_the_method_grid_runs_only_where_the_suite_enables_it(tmp_path):
    assert load_suite(_suite(tmp_path, grid_search=False)).runs[0].grid_search is None
    assert load_suite(_suite(tmp_path)).runs[0].grid_search["optimizer.lr"] == [1e-2, 1e-3]
    merged = load_suite(_suite(tmp_path, grid_search={"optimizer.lr": [1e-4, 1e-5]})).runs[0].grid_search
    assert merged["optimizer.lr"] == [1e-4, 1e-5] and merged["trainer"] == {"max_epochs": 2}


def test_two_point_grid_search_end_to_end(tmp_path, caplog):
    args = ["run", str(_suite(tmp_path)), "--out", str(tmp_path / "runs"), "--leaderboard", str(tmp_path / "leaderboard.md"), "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    result = json.loads((tmp_path / "runs/results/synthetic/tiny/seed0.json").read_text())
    search = result["grid_search"]
    assert search["metric"] == "val/accuracy" and search["reused"] is False
    assert [p["values"] for p in search["points"]] == [{"optimizer.lr": 0.01, "data.batch_size": 8}, {"optimizer.lr": 0.001, "data.batch_size": 8}]
    assert all(p["best_validation_score"] is not None and p["epochs_trained"] == 2 for p in search["points"])  # search settings used
    best = max(search["points"], key=lambda p: p["best_validation_score"])
    assert search["chosen"] == best["values"]
    assert result["method"]["optimizer"]["lr"] == search["chosen"]["optimizer.lr"]  # the final run uses the chosen point
    assert result["epochs_trained"] == 1  # with the method's own settings
    assert not list((tmp_path / "runs/predictions").rglob("*grid*"))  # grid points never touch the test split
    assert "Grid search on the validation split (2 points" in (tmp_path / "leaderboard.md").read_text()
    with caplog.at_level("INFO"):
        assert main(args) == 0  # a second run reuses the recorded search
    assert "reusing" in caplog.text
    assert json.loads((tmp_path / "runs/results/synthetic/tiny/seed0.json").read_text())["grid_search"]["reused"] is True


def _imports(path: Path) -> set[str]:
    """Every module a source file imports, at the top or inside a function."""
    import ast

    tree = ast.parse(path.read_text())
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module} | \
        {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}


def test_config_grid_search_and_runner_import_one_way():
    imports = {name: _imports(REPO / f"benchmark/{name}.py") for name in ("config", "grid_search", "runner")}
    assert not imports["config"] & {"benchmark.grid_search", "benchmark.runner"}
    assert "benchmark.runner" not in imports["grid_search"]
