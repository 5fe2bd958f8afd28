"""Multi-device training through Lightning's own DDP strategy, on 2 CPU processes (gloo), as on a multi-GPU node.

The CLI is started as a subprocess because Lightning's `ddp` strategy re-launches the command line for every rank.
"""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parent.parent


def test_two_process_ddp_run_counts_every_test_image_once(tmp_path):
    tiny = {"model": {"nf": 8, "fc_units": 16}, "optimizer": {"name": "adam", "lr": 1e-3}, "grid_search": None}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({"extends": str(REPO / "configs/methods/single_net.yaml"), **tiny}))
    siamese = {"extends": str(REPO / "configs/methods/siamese.yaml"), **tiny, "task": {"validation_trials": 9},
               "data": {"pair_sampling": {"pairs_per_epoch": 32}}}
    (tmp_path / "tiny_siamese.yaml").write_text(yaml.safe_dump(siamese))
    suite = {
        "name": "ddp", "datasets": [{"name": "synthetic", "options": {"patients_per_class": 7}}], "methods": ["tiny.yaml", "tiny_siamese.yaml"],
        "data": {"image_size": 32, "val_fraction": 0.25, "test_fraction": 0.25, "batch_size": 4},
        "trainer": {"max_epochs": 1, "enable_progress_bar": False}, "logging": {"wandb": False},
    }
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    command = [sys.executable, "-m", "benchmark", "run", str(tmp_path / "suite.yaml"), "--out", str(tmp_path / "runs"),
               "--leaderboard", str(tmp_path / "board.md"), "--cache-dir", str(tmp_path / "cache"),
               "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]

    results = sorted((tmp_path / "runs/results").rglob("*.json"))
    assert [p.parent.name for p in results] == ["tiny", "tiny_siamese"]  # rank 1 ran the same loop but wrote nothing
    board = (tmp_path / "board.md").read_text()
    for path in results:
        result = json.loads(path.read_text())
        assert result["device"].startswith("2 x cpu")
        test_images = result["dataset"]["counts"]["test"]["images"]
        predictions = pd.read_csv(result["predictions_file"])
        # the distributed sampler pads and repeats test images; each must be scored exactly once
        assert result["n_test_images"] == test_images == len(predictions) == predictions["image"].nunique()
        assert board.count(f"| {path.parent.name} | 0 |") == 1  # one row, seed 0
