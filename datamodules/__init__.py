"""Chest X-ray data: one reader per dataset (readers/, combined/), found by name, and the one CXRDataModule that
runs them through the pipeline. ``DATAMODULES[name](root, **options)`` builds a DataModule for a dataset."""

from __future__ import annotations

import copy
import inspect
from pathlib import Path

from datamodules import combined  # noqa: F401  (registers the combined readers)
from datamodules.datamodule import CXRDataModule
from datamodules.readers import READERS, DatasetNotFoundError, Reader


def constructor_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The named constructor arguments of ``cls`` and its bases (not self, not **kwargs)."""
    parameters: dict[str, inspect.Parameter] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is not None:
            for name, parameter in inspect.signature(init).parameters.items():
                if name != "self" and parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                    parameters[name] = parameter
    return parameters


class DataModuleFactory:
    """``factory(root, **options)``: a CXRDataModule over one reader; each option goes to the reader or to the
    pipeline (or both, e.g. the phantoms' ``cache_dir``) by the argument names their constructors take."""

    def __init__(self, reader: type[Reader]):
        self.reader = reader
        self.name = reader.name
        self.is_synthetic = reader.is_synthetic

    def signature_classes(self) -> tuple[type, ...]:
        """The classes whose constructors take this dataset's options (benchmark/schema.py checks against them)."""
        return (self.reader, CXRDataModule)

    def locate(self, data_root: str | Path) -> Path:
        return self.reader.locate(data_root)

    def __call__(self, root: str | Path | None = None, **options) -> CXRDataModule:
        own, pipeline = constructor_parameters(self.reader), constructor_parameters(CXRDataModule)
        unknown = set(options) - set(own) - set(pipeline)
        if unknown:
            raise TypeError(f"{self.name}: unknown options {sorted(unknown)}")
        reader = self.reader(root, **{k: v for k, v in options.items() if k in own})
        return CXRDataModule(reader, **{k: v for k, v in options.items() if k in pipeline})

    def __repr__(self) -> str:
        return f"DataModuleFactory({self.reader.__name__})"


DATAMODULES: dict[str, DataModuleFactory] = {name: DataModuleFactory(reader) for name, reader in READERS.items()}


def synthetic_stand_in(name: str) -> tuple[str, dict]:
    """The generated set (name, options) that stands in for dataset ``name`` without data (a suite's
    ``synthetic_without_data_root``, a chain's earlier stages); a synthetic set stands in for itself."""
    reader = get_datamodule_class(name).reader
    if reader.is_synthetic:
        return name, {}
    stand_in, options = reader.synthetic_stand_in
    return stand_in, copy.deepcopy(dict(options))


def get_datamodule_class(name: str) -> DataModuleFactory:
    try:
        return DATAMODULES[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATAMODULES))}") from None


__all__ = ["CXRDataModule", "DATAMODULES", "DatasetNotFoundError", "READERS", "Reader", "get_datamodule_class", "synthetic_stand_in"]
