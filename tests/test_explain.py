"""End to end: ``python -m benchmark explain`` and a suite's ``explain:`` section on tiny phantom runs (issue 12).

The probes are checked on themselves: a model trained on phantoms whose COVID-19 images all carry a corner square
(``synthetic_shortcut``) is flagged, the same model on the clean phantoms is not.
"""

import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from benchmark.cli import main

REPO = Path(__file__).resolve().parent.parent
TINY_SINGLE_NET = {"extends": str(REPO / "configs/methods/single_net.yaml"), "model": {"nf": 8, "fc_units": 16}, "optimizer": {"name": "adam", "lr": 3e-3},
                   "deviations": ["test-sized network"]}
TINY_SIAMESE = {"extends": str(REPO / "configs/methods/siamese.yaml"), "model": {"nf": 8, "fc_units": 16}, "task": {"validation_trials": 9},
                "optimizer": {"name": "adam", "lr": 1e-3}, "data": {"pair_sampling": {"pairs_per_epoch": 32}}, "deviations": ["test-sized network"]}
TINY_ACNN = {"extends": str(REPO / "configs/methods/wce_acnn.yaml"), "model": {"backbone": "acnn", "backbone_options": {"depth": 2}, "head": "fcn"},
             "optimizer": {"name": "adam", "lr": 1e-3}, "deviations": ["test-sized network"]}  # COVID-19 vs non-COVID
TINY_DENSENET = {"extends": str(REPO / "configs/methods/transfer_covid_scratch_quick.yaml"), "deviations": ["test-sized run"]}  # linear head
EXPLAIN = {"heatmaps": ["gradcam", "lrp"], "images": 1, "probe_images": 12, "bootstrap_resamples": 200}


def _write(path: Path, data: dict) -> str:
    path.write_text(yaml.safe_dump(data))
    return path.name


def _suite(tmp_path: Path, *, datasets, methods: dict, epochs: int, explain=EXPLAIN, size: int = 32, cap_chains: bool = True) -> Path:
    names = [_write(tmp_path / f"{name}.yaml", config) for name, config in methods.items()]
    suite = {"name": "tiny", "datasets": datasets, "synthetic_without_data_root": True, "methods": names, "seeds": [0],
             "logging": {"wandb": False}, "data": {"image_size": size, "split_seed": 0, "val_fraction": 0.2, "test_fraction": 0.3, "batch_size": 16},
             "trainer": {"accelerator": "cpu", "enable_progress_bar": False, "max_epochs": epochs}}
    if cap_chains:
        suite["phantoms"] = {"max_epochs": epochs, "limit_train_batches": 4}  # chains: every phase capped
    if explain:
        suite["explain"] = explain
    return tmp_path / _write(tmp_path / "suite.yaml", suite)


def _run(tmp_path: Path, suite: Path, *extra: str) -> None:
    args = ["run", str(suite), "--out", str(tmp_path / "runs"), "--leaderboard", str(tmp_path / "leaderboard.md"), "--cache-dir", str(tmp_path / "cache")]
    assert main(args + list(extra)) == 0


def _explanation(tmp_path: Path, run_id: str) -> dict:
    return json.loads((tmp_path / "runs/explain" / run_id / "explain.json").read_text())


def test_planted_shortcut_is_flagged_and_the_clean_phantoms_are_not(tmp_path):
    datasets = [{"name": "synthetic", "options": {"patients_per_class": 24}}, {"name": "synthetic_shortcut", "options": {"patients_per_class": 24}}]
    _run(tmp_path, _suite(tmp_path, datasets=datasets, methods={"tiny_acnn": TINY_ACNN}, epochs=10, cap_chains=False))
    clean, marked = (_explanation(tmp_path, f"{name}/tiny_acnn/seed0") for name in ("synthetic", "synthetic_shortcut"))
    assert marked["probes"]["verdict"]["flagged"] and "lungs blacked out" in marked["probes"]["verdict"]["reasons"][0]
    assert not clean["probes"]["verdict"]["flagged"]
    assert marked["probes"]["lung_mask"]["lungs_out"]["value"] > clean["probes"]["lung_mask"]["lungs_out"]["value"]
    for record in (clean, marked):
        assert record["sample"]["lung_regions"] == {"central_field": record["sample"]["images"]}  # phantoms have no annotated boxes
        for method in ("gradcam", "lrp"):
            png = tmp_path / "runs" / record["heatmaps"][method]["png"]
            assert Image.open(png).size[0] > 100
        assert (tmp_path / "runs" / record["latent"]["png"]).is_file()
        assert record["probes"]["source"]["auroc"] is None  # one source: no source probe
        assert record["probes"]["text"]["class"] == "non-COVID" and record["probes"]["lung_mask"]["fill"]["kind"] == "mean"
    assert marked["probes"]["text"]["mean_drop"] > clean["probes"]["text"]["mean_drop"]  # the word lies where the marker does
    board = (tmp_path / "leaderboard.md").read_text()
    assert "## Explanations and shortcut probes" in board and board.count("**flagged**") == 1
    assert f"runs/{marked['heatmaps']['gradcam']['png']}" in board


def test_explain_command_for_each_kind_of_method_and_resume_explains_kept_runs(tmp_path, capsys):
    methods = {"tiny_single_net": TINY_SINGLE_NET, "tiny_siamese": TINY_SIAMESE, "tiny_densenet": TINY_DENSENET}
    datasets = [{"name": "covid19_radiography", "options": {"patients_per_class": 8}}]
    _run(tmp_path, _suite(tmp_path, datasets=datasets, methods=methods, epochs=1, explain=None))
    assert not (tmp_path / "runs/explain").exists()
    for method in methods:
        result = tmp_path / f"runs/results/synthetic/{method}/seed0.json"
        assert main(["explain", str(result), "--method", "gradcam", "gradcam++", "cam", "lrp", "--images", "1", "--probe-images", "6",
                     "--no-wandb", "--cache-dir", str(tmp_path / "cache")]) == 0
        record = _explanation(tmp_path, f"synthetic/{method}/seed0")
        heat = record["heatmaps"]
        assert heat["gradcam"]["png"] and heat["gradcam++"]["png"] and heat["lrp"]["png"]
        assert ("png" in heat["cam"]) == (method == "tiny_densenet"), heat["cam"]  # CAM needs global pooling + one linear layer
        assert record["probes"]["lung_mask"]["full"]["metric"] == "balanced_accuracy"
    assert "written:" in capsys.readouterr().out
    # the suite with explain: on and --resume trains nothing and explains what has no explanation of its configuration
    (tmp_path / "runs/explain/synthetic/tiny_siamese/seed0/explain.json").unlink()
    trained = {m: (tmp_path / f"runs/results/synthetic/{m}/seed0.json").stat().st_mtime_ns for m in methods}
    _run(tmp_path, _suite(tmp_path, datasets=datasets, methods=methods, epochs=1), "--resume")
    assert trained == {m: (tmp_path / f"runs/results/synthetic/{m}/seed0.json").stat().st_mtime_ns for m in methods}
    assert _explanation(tmp_path, "synthetic/tiny_siamese/seed0")["settings"]["probe_images"] == EXPLAIN["probe_images"]


def test_multilabel_run_maps_each_finding_asked(tmp_path):
    methods = {"tiny_cxr14": {"extends": str(REPO / "configs/methods/transfer_cxr14_resnet50_quick.yaml"), "deviations": ["test-sized run"]}}
    datasets = [{"name": "chestxray14", "options": {"patients": 40}}]
    _run(tmp_path, _suite(tmp_path, datasets=datasets, methods=methods, epochs=1, explain=None))
    result = next((tmp_path / "runs/results").rglob("seed0.json"))
    findings = json.loads(result.read_text())["dataset"]["classes"][:2]
    assert main(["explain", str(result), "--findings", *findings, "--probe-images", "4", "--no-latent",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    run_id = json.loads(result.read_text())["run_id"]
    record = _explanation(tmp_path, run_id)
    assert list((tmp_path / "runs/logs" / run_id / "explain/wandb").glob("offline-run-*"))  # W&B offline: a run of job type explain
    assert record["heatmaps"]["gradcam"]["columns"] == findings
    assert record["probes"]["lung_mask"]["full"]["metric"] == "auroc" and "skipped" in record["probes"]["text"]


def test_unknown_heatmap_method_is_a_clear_error(tmp_path, capsys):
    assert main(["explain", str(tmp_path / "missing.json"), "--method", "saliency"]) == 2
    assert "saliency" in capsys.readouterr().err
