"""Shared fixtures. Tests never touch the network: W&B offline, Hugging Face hub offline."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

TESTS = Path(__file__).parent
SHARED_DATA = (TESTS.parent.parent / "shared" / "data").resolve()


def load_maker(dataset: str):
    """The tests/data/<dataset>/make_data.py module that builds a fake copy of that dataset's layout."""
    path = TESTS / "data" / dataset / "make_data.py"
    spec = importlib.util.spec_from_file_location(f"make_{dataset}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def radiography_root(tmp_path: Path) -> Path:
    return load_maker("covid19_radiography").create(tmp_path / "data")


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available at {SHARED_DATA}")
    return SHARED_DATA
