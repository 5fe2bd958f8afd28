"""Shared fixtures. Tests never touch the network: W&B offline, Hugging Face hub offline."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

TESTS = Path(__file__).parent


@pytest.fixture(autouse=True)
def _no_run_plots(request, monkeypatch):
    """Runs in tests skip drawing their three PNGs (about 1.3 s a run on 2 cores; benchmark/plots.py has its own
    tests in test_plots.py). A test marked ``run_plots`` draws them through the runner, as every real run does."""
    if request.node.get_closest_marker("run_plots") is None:
        monkeypatch.setattr("benchmark.runner.plot_run", lambda *args, **kwargs: {})
SHARED_DATA = (TESTS.parent.parent / "shared" / "data").resolve()


def load_maker(dataset: str):
    """The tests/data/<dataset>/make_data.py module that builds a fake copy of that dataset's layout."""
    path = TESTS / "data" / dataset / "make_data.py"
    spec = importlib.util.spec_from_file_location(f"make_{dataset}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dataset_header(dataset: str, fixture: str, *, folder: str = "data", **defaults):
    """What every tests/test_dataset_<dataset>.py starts with: the fake-data maker, a fixture named ``fixture``
    that lays out the fake dataset under tmp_path/``folder``, and ``dm(root, tmp_path, **options)``, the dataset's
    DataModule at 32 px with the test's cache and split folders (``defaults``: more options; a callable gets the root)."""
    from datamodules import DATAMODULES

    maker = load_maker(dataset)

    @pytest.fixture(name=fixture)
    def root(tmp_path: Path) -> Path:
        return maker.create(tmp_path / folder)

    def dm(root: Path, tmp_path: Path, **options):
        for key, value in {"image_size": 32, **defaults}.items():
            options.setdefault(key, value(root) if callable(value) else value)
        return DATAMODULES[dataset](root, cache_dir=tmp_path / "cache", split_dir=tmp_path / "splits", **options)

    return maker, root, dm


@pytest.fixture
def radiography_root(tmp_path: Path) -> Path:
    return load_maker("covid19_radiography").create(tmp_path / "data")


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available at {SHARED_DATA}")
    return SHARED_DATA


class HalvesDataset(Dataset):
    """A separable toy set for "the loss falls" tests: class 0 has a dark left half, class 1 a bright one."""

    def __init__(self, n: int = 32, size: int = 32):
        generator = torch.Generator().manual_seed(0)
        self.labels = torch.arange(n) % 2
        self.images = torch.randn(n, 1, size, size, generator=generator) * 0.3
        for i, label in enumerate(self.labels):
            self.images[i, :, :, : size // 2] += 1.0 if label else -1.0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": self.labels[i], "index": i}


def train_losses(task, batch: dict, steps: int) -> list[float]:
    """Plain optimisation steps of a task on one batch, for "the loss falls" tests: the loss after each step."""
    optimizer = task.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    losses = []
    for _ in range(steps):
        loss = task.criterion(task(batch["image"]), batch["label"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses

