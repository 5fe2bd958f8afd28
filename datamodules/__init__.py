"""Chest X-ray DataModules, one per dataset, found by name."""

from __future__ import annotations

from datamodules.base import CXRDataModule, DatasetNotFoundError
from datamodules.covid19_radiography import Covid19RadiographyDataModule
from datamodules.synthetic import SyntheticDataModule

DATAMODULES: dict[str, type[CXRDataModule]] = {
    cls.name: cls
    for cls in (
        SyntheticDataModule,
        Covid19RadiographyDataModule,
    )
}


def get_datamodule_class(name: str) -> type[CXRDataModule]:
    try:
        return DATAMODULES[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATAMODULES))}") from None


__all__ = ["CXRDataModule", "DATAMODULES", "DatasetNotFoundError", "get_datamodule_class"]
