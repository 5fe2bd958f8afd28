"""The typed config schema: typos and bad values in suites and methods are errors naming the file, the key and the
value, before anything is trained or written; valid files come back with their effective settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from benchmark.cli import main
from benchmark.config import ConfigError, load_method, load_suite
from benchmark.schema import METHOD_SCHEMAS, DataConfig, TrainerConfig
from lightning_modules import TASKS

REPO = Path(__file__).resolve().parents[1]


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def _suite(tmp_path: Path, *, method: dict | None = None, **suite) -> Path:
    """A one-method suite on the phantoms; ``method`` is written as tmp/method.yaml extending the quick single-net."""
    method_file = "method.yaml"
    _write(tmp_path / method_file, {"extends": str(REPO / "configs/methods/single_net_quick.yaml"), **(method or {})})
    content = {"datasets": ["covid19_radiography"], "synthetic_without_data_root": True, "methods": [method_file], "data": {"image_size": 32}}
    content.update(suite)
    return _write(tmp_path / "suite.yaml", content)


def _run_fails(tmp_path: Path, suite: Path, capsys, *extra: str) -> str:
    out = tmp_path / "runs"
    code = main(["run", str(suite), "--out", str(out), "--leaderboard", str(tmp_path / "leaderboard.md"), "--cache-dir", str(tmp_path / "cache"), *extra])
    error = capsys.readouterr().err
    assert code == 2, error
    assert not out.exists() and not (tmp_path / "cache").exists() and not (tmp_path / "leaderboard.md").exists()  # nothing written
    line = [line for line in error.splitlines() if line.startswith("error: ")]
    assert line, error
    return line[0]


@pytest.mark.parametrize(
    ("suite", "method", "expected"),
    [
        ({"data": {"image_sise": 64}}, None, ["suite.yaml", "data", "`image_sise`", "did you mean `image_size`"]),
        ({"seed": [3]}, None, ["suite.yaml", "`seed`", "did you mean `seeds`"]),
        ({}, {"optimiser": {"name": "adam", "lr": 0.5}}, ["method.yaml", "`optimiser`", "did you mean `optimizer`"]),
        ({}, {"model": {"fc_unit": 8}}, ["method.yaml", "model", "`fc_unit`", "did you mean `fc_units`"]),
        ({"grid_search": {"optimizer.lrr": [1e-3, 1e-4]}}, {"grid_search": None}, ["grid_search", "`lrr`", "did you mean `lr`"]),
        ({"datasets": [{"name": "covid19_radiography", "options": {"patients_per_clas": 4}}]}, None, ["suite.yaml", "`patients_per_clas`", "did you mean `patients_per_class`"]),
    ],
)
def test_typos_are_errors_with_the_closest_key(tmp_path, capsys, suite, method, expected):
    line = _run_fails(tmp_path, _suite(tmp_path, method=method, **suite), capsys)
    for part in expected:
        assert part in line, line


@pytest.mark.parametrize(
    ("suite", "method", "key", "value"),
    [
        ({}, {"optimizer": {"lr": "abc"}}, "optimizer.lr", "'abc'"),
        ({"data": {"batch_size": -1}}, None, "data.batch_size", "-1"),
        ({"data": {"image_size": 0}}, None, "data.image_size", "0"),
        ({"data": {"val_fraction": 1.5}}, None, "data.val_fraction", "1.5"),
        ({"trainer": {"max_epochs": -3}}, None, "trainer.max_epochs", "-3"),
        ({}, {"data": {"augmentation": "flips"}}, "data.augmentation", "'flips'"),
        ({}, {"loss": {"name": "cross_entropy", "beta": 0.75}}, "loss", "`beta`"),
        ({}, {"start_weights": {"fil": "x.pt"}}, "start_weights", "did you mean `file`"),
    ],
)
def test_wrong_types_and_ranges_name_the_file_key_and_value(tmp_path, capsys, suite, method, key, value):
    line = _run_fails(tmp_path, _suite(tmp_path, method=method, **suite), capsys)
    assert ("method.yaml" if method else "suite.yaml") in line and f"{key}" in line and value in line, line


def test_command_line_overrides_are_validated(tmp_path, capsys):
    line = _run_fails(tmp_path, _suite(tmp_path), capsys, "--max-epochs", "-1")
    assert "command line" in line and "trainer.max_epochs" in line and "-1" in line


def test_fractions_must_leave_a_train_split(tmp_path):
    with pytest.raises(ConfigError, match=r"val_fraction \+ test_fraction must be below 1"):
        load_suite(_suite(tmp_path, data={"val_fraction": 0.5, "test_fraction": 0.5}))


def test_a_missing_start_weights_file_fails_before_training(tmp_path, capsys):
    line = _run_fails(tmp_path, _suite(tmp_path, method={"start_weights": str(tmp_path / "absent.pt")}), capsys)
    assert "absent.pt" in line


def test_effective_settings_have_every_default_filled(tmp_path):
    spec = load_suite(_suite(tmp_path, trainer={"max_epochs": 2})).runs[0]
    assert set(spec.data) == set(DataConfig.model_fields) and spec.data["image_size"] == 32 and spec.data["batch_size"] == 16
    assert set(spec.trainer) == set(TrainerConfig.model_fields) and spec.trainer["max_epochs"] == 2
    assert spec.method["model"] == {"nf": 32, "fc_units": 256, "dropout": [0.5, 0.2, 0.2]}
    assert spec.method["optimizer"]["name"] == "adam" and spec.method["optimizer"]["lr"] == 1e-3 and spec.method["optimizer"]["betas"] == [0.9, 0.999]
    assert spec.method["monitor"] == {"metric": "val/accuracy", "mode": "max"}


def test_a_child_that_changes_the_optimizer_kind_does_not_inherit_the_parents_keys(tmp_path):
    _write(tmp_path / "parent.yaml", {"method": "single_net", "optimizer": {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.999]}})
    _write(tmp_path / "child.yaml", {"extends": "parent.yaml", "optimizer": {"name": "sgd", "momentum": 0.9}})
    assert load_method(tmp_path / "child.yaml")["optimizer"] == {"name": "sgd", "lr": 1e-3, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False}
    _write(tmp_path / "loop.yaml", {"extends": "loop.yaml", "method": "single_net"})
    with pytest.raises(ConfigError, match="loops back"):
        load_method(tmp_path / "loop.yaml")


def test_every_method_declares_its_schema_and_every_shipped_config_validates():
    assert set(METHOD_SCHEMAS) == set(TASKS)
    shared = REPO.parent / "shared" / "data"
    for suite in sorted((REPO / "configs").glob("*.yaml")):
        if "test: each" in suite.read_text():  # its runs are the dataset's sources: read from the data itself
            if shared.is_dir():
                assert load_suite(suite, data_root=shared).runs
            continue
        assert load_suite(suite, data_root=REPO).runs
    for method in sorted((REPO / "configs/methods").glob("*.yaml")):
        load_method(method)


def test_a_typo_in_a_chain_is_an_error_naming_the_stage_key(tmp_path):
    base = {"method": "classifier", "model": {"backbone": "resnet10t"}}
    _write(tmp_path / "typo.yaml", {**base, "stages": [{"name": "cxr14", "dataset": "chestxray14", "phases": [{"epoch": 3}]}]})
    with pytest.raises(ConfigError, match=r"stages\.0\.phases\.0.*`epoch` \(did you mean `epochs`\?\)"):
        load_method(tmp_path / "typo.yaml")
    _write(tmp_path / "start.yaml", {**base, "stages": [{"name": "a", "start": "imagenett", "phases": [{"epochs": 1}]}]})
    with pytest.raises(ConfigError, match="start must be random, imagenet or a mapping"):
        load_method(tmp_path / "start.yaml")
    _write(tmp_path / "keep.yaml", {**base, "stages": [{"name": "a", "keep_outputs": {"normal": "No Finding"}, "phases": [{"epochs": 1}]}]})
    with pytest.raises(ConfigError, match="keep_outputs needs start: stage or chexnet"):
        load_method(tmp_path / "keep.yaml")
    _write(tmp_path / "order.yaml", {**base, "stages": [{"name": "a", "phases": [{"epochs": 1}]}, {"name": "b", "dataset": "chestxray14", "phases": [{"epochs": 1}]}]})
    with pytest.raises(ConfigError, match="only the last stage may leave out `dataset`"):
        load_method(tmp_path / "order.yaml")
    _write(tmp_path / "include.yaml", {**base, "stages": [{"from": "order.yaml", "stage": "zz"}]})
    with pytest.raises(ConfigError, match=r"order.yaml has no stage 'zz' \(its stages: \['a', 'b'\]\)"):
        load_method(tmp_path / "include.yaml")
