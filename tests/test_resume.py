"""``run --resume``: a run killed mid-training continues from its last checkpoint and ends with the metrics, best
epoch and CSV log of an uninterrupted run; a last checkpoint of another configuration is never resumed."""

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from benchmark.cli import main
from benchmark.resume import checkpoint_to_resume, write_run_file

REPO = Path(__file__).resolve().parent.parent
RUN = "synthetic/tiny_single_net/seed0"
SAME = ("metrics", "confusion_matrix", "best_epoch", "best_validation_score", "epochs_trained", "n_test_images")


def _suite(tmp_path: Path, *, epochs: int) -> Path:
    """A tiny single-net suite (class-balanced epochs) on 32 px phantoms; the file name says its epochs."""
    method = {"extends": str(REPO / "configs/methods/single_net.yaml"), "title": "tiny single-net", "model": {"nf": 8, "fc_units": 16},
              "optimizer": {"name": "adam", "lr": 1e-3}, "deviations": ["test-sized network"]}
    (tmp_path / "tiny_single_net.yaml").write_text(yaml.safe_dump(method))
    suite = {
        "name": "tiny", "datasets": [{"name": "covid19_radiography", "options": {"patients_per_class": 8}}],
        "synthetic_without_data_root": True, "methods": ["tiny_single_net.yaml"], "seeds": [0],
        "data": {"image_size": 32, "split_seed": 0, "val_fraction": 0.25, "test_fraction": 0.25, "batch_size": 8, "num_workers": 0},
        "trainer": {"max_epochs": epochs, "accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False},
    }
    path = tmp_path / f"suite-{epochs}.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def _args(tmp_path: Path, suite: Path, out: Path, *extra: str) -> list[str]:
    return ["run", str(suite), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-wandb",
            "--leaderboard", str(out / "leaderboard.md"), *extra]


def _result_file(out: Path) -> Path:
    return out / "results" / f"{RUN}.json"


def _last_epoch(path: Path) -> int | None:
    """The epoch a last checkpoint finished, or None while there is none (it is replaced atomically)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)["epoch"]
    except FileNotFoundError:
        return None


def _validation_rows(out: Path) -> list[dict]:
    with open(out / "logs" / RUN / "csv" / "metrics.csv", newline="") as handle:
        return [{k: v for k, v in row.items() if k.startswith("val/") or k == "epoch"} for row in csv.DictReader(handle) if row.get("val/accuracy")]


def _kill_after_epoch_one(tmp_path: Path, suite: Path, out: Path) -> int:
    """Start the suite in a child process, SIGKILL it once a last checkpoint of epoch >= 1 exists; that epoch."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    child = subprocess.Popen([sys.executable, "-m", "benchmark", *_args(tmp_path, suite, out)], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = out / "logs" / RUN / "checkpoints" / "last.ckpt"
    try:
        deadline = time.monotonic() + 300
        while (_last_epoch(last) or 0) < 1:
            assert child.poll() is None, f"the run ended (exit code {child.returncode}) before a last checkpoint of epoch 1"
            assert time.monotonic() < deadline, "no last checkpoint of epoch 1 within 300 s"
            time.sleep(0.02)
        child.kill()  # SIGKILL: no handler runs, nothing is flushed or finished
    finally:
        child.kill()
        child.wait()
    assert not _result_file(out).exists(), "the run finished before it was killed"
    return _last_epoch(last)


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, caplog):
    suite = _suite(tmp_path, epochs=4)
    whole_out, killed_out = tmp_path / "whole", tmp_path / "killed"
    assert main(_args(tmp_path, suite, whole_out)) == 0  # also builds the shared cache the child reads
    whole = json.loads(_result_file(whole_out).read_text())
    assert whole["resumed_from"] is None

    killed_at = _kill_after_epoch_one(tmp_path, suite, killed_out)
    with caplog.at_level("INFO"):
        assert main(_args(tmp_path, suite, killed_out, "--resume")) == 0
    resumed = json.loads(_result_file(killed_out).read_text())

    last = killed_out / "logs" / RUN / "checkpoints" / "last.ckpt"
    assert f"resuming from {last}" in caplog.text
    assert resumed["resumed_from"] == {"checkpoint": str(last), "epoch": killed_at} and killed_at >= 1
    assert {key: resumed[key] for key in SAME} == {key: whole[key] for key in SAME}
    assert (killed_out / "predictions" / f"{RUN}.csv").read_text() == (whole_out / "predictions" / f"{RUN}.csv").read_text()
    assert _validation_rows(killed_out) == _validation_rows(whole_out)  # every epoch once, with the same values
    assert "--resume" not in resumed["command"]


def test_only_a_checkpoint_of_the_same_configuration_is_resumed(tmp_path, caplog):
    out = tmp_path / "runs"
    assert main(_args(tmp_path, _suite(tmp_path, epochs=2), out)) == 0
    first = json.loads(_result_file(out).read_text())
    assert json.loads((out / "logs" / RUN / "run.json").read_text())["config_fingerprint"] == first["config_fingerprint"]

    _result_file(out).unlink()  # as if killed after the last checkpoint: resumed at the end of training
    assert main(_args(tmp_path, _suite(tmp_path, epochs=2), out, "--resume")) == 0
    again = json.loads(_result_file(out).read_text())
    assert again["resumed_from"]["epoch"] == 1
    assert {key: again[key] for key in SAME} == {key: first[key] for key in SAME}

    _result_file(out).unlink()
    caplog.clear()
    with caplog.at_level("INFO"):
        assert main(_args(tmp_path, _suite(tmp_path, epochs=3), out, "--resume")) == 0
    assert "was written with another configuration (trainer.max_epochs 2 -> 3); training from the start" in caplog.text
    other = json.loads(_result_file(out).read_text())
    assert other["resumed_from"] is None and other["epochs_trained"] == 3
    assert json.loads((out / "logs" / RUN / "run.json").read_text())["config_fingerprint"] == other["config_fingerprint"]


def test_without_resume_a_rerun_starts_clean(tmp_path):
    out = tmp_path / "runs"
    suite = _suite(tmp_path, epochs=1)
    assert main(_args(tmp_path, suite, out)) == 0
    _result_file(out).unlink()
    (out / "logs" / RUN / "stale.txt").write_text("from an earlier run")
    assert main(_args(tmp_path, suite, out)) == 0  # a matching last checkpoint exists, but --resume was not given
    assert json.loads(_result_file(out).read_text())["resumed_from"] is None
    assert not (out / "logs" / RUN / "stale.txt").exists()


def test_which_checkpoint_is_resumed(tmp_path, caplog):
    """A last checkpoint is resumed only with a record of the same fingerprint and seed beside it."""
    spec = SimpleNamespace(run_id="d/m/seed0", seed=0, method={"method": "single_net"}, dataset={"name": "d"}, data={"image_size": 32},
                           trainer={"max_epochs": 4}, grid_search=None)
    last = tmp_path / "checkpoints" / "last.ckpt"
    with caplog.at_level("INFO"):
        assert checkpoint_to_resume(tmp_path, spec) is None and "no last checkpoint" in caplog.text
        last.parent.mkdir()
        last.write_bytes(b"")
        assert checkpoint_to_resume(tmp_path, spec) is None and "no readable record of its configuration (run.json" in caplog.text
        write_run_file(tmp_path, spec)
        assert checkpoint_to_resume(tmp_path, spec) == last
        assert checkpoint_to_resume(tmp_path, SimpleNamespace(**{**vars(spec), "seed": 1})) is None and "(seed 0 -> 1)" in caplog.text
        changed = SimpleNamespace(**{**vars(spec), "data": {"image_size": 64}})
        assert checkpoint_to_resume(tmp_path, changed) is None and "(data.image_size 32 -> 64)" in caplog.text
        moved = tmp_path / "moved"
        shutil.copytree(tmp_path / "checkpoints", moved / "checkpoints")
        shutil.copy(tmp_path / "run.json", moved / "run.json")
        assert checkpoint_to_resume(moved, spec) is None and f"it was written in {last.parent}, not {moved / 'checkpoints'}" in caplog.text


@pytest.mark.parametrize("options", [{"balanced_sampling": "undersample", "augmentation": "flip_rotate"}, {"pair_sampling": {"pairs_per_epoch": 8}}])
def test_datamodule_state_continues_the_training_draw(radiography_root, tmp_path, options):
    """The DataModule's checkpoint state: a new DataModule given it draws the next epoch as the old one does
    (sampler epoch, augmentation generators), not the first epoch again."""
    from datamodules import DATAMODULES

    def datamodule():
        dm = DATAMODULES["covid19_radiography"](radiography_root, cache_dir=tmp_path / "cache", split_dir=tmp_path / "splits", image_size=32,
                                                batch_size=4, val_fraction=0.2, test_fraction=0.2, **options)
        dm.setup()
        return dm

    def epoch(loader):
        return [(batch["index"].tolist(), batch["image"]) for batch in loader]

    old = datamodule()
    loader = old.train_dataloader()
    first = epoch(loader)
    state = torch.load(_saved(state := old.state_dict(), tmp_path), weights_only=True)  # as a checkpoint holds it
    second = epoch(loader)
    new = datamodule()
    new.load_state_dict(state)
    resumed = epoch(new.train_dataloader())
    assert [i for i, _ in resumed] == [i for i, _ in second] != [i for i, _ in first]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(resumed, second))


def _saved(state: dict, tmp_path: Path) -> Path:
    path = tmp_path / "state.pt"
    torch.save(state, path)
    return path
