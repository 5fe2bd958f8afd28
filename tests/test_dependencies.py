"""pyproject.toml declares exactly what the runtime packages import (grad-cam: declared for the coming Grad-CAM work)."""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parent.parent
RUNTIME = ("benchmark", "datamodules", "lightning_modules", "registry")
NOT_IMPORTED_YET = set()  # grad-cam is used since issue 12 (lightning_modules/explain/heatmaps.py)
PART_OF = {"pydantic-core": "pydantic"}  # pydantic pins its own pydantic-core; schema.py imports its error class


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_distributions() -> set[str]:
    modules = set()
    for package in RUNTIME:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules.add(node.module.split(".")[0])
    third_party = modules - set(sys.stdlib_module_names) - set(RUNTIME)
    owners = packages_distributions()
    return {PART_OF.get(name, name) for name in (_normal(owners[module][0]) for module in third_party)}


def test_runtime_imports_are_declared_and_declared_packages_are_imported():
    declared = {_normal(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0])
                for requirement in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    imported = _imported_distributions()
    assert imported - declared == set()
    assert declared - imported == NOT_IMPORTED_YET
