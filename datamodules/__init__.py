"""Chest X-ray DataModules, one per dataset, found by name."""

from __future__ import annotations

from datamodules.agchung import ActualmedCovidDataModule, Figure1CovidDataModule
from datamodules.base import CXRDataModule, DatasetNotFoundError
from datamodules.chestxray14 import ChestXray14DataModule
from datamodules.chexpert import CheXpertDataModule
from datamodules.cohen_covid import CohenCovidDataModule
from datamodules.combined import PRESETS as COMBINED_PRESETS
from datamodules.combined import CombinedDataModule
from datamodules.covid19_radiography import Covid19RadiographyDataModule
from datamodules.covidx import COVIDxDataModule
from datamodules.covidx_ray_5k import CovidXray5kDataModule
from datamodules.kermany_pneumonia import KermanyPneumoniaDataModule
from datamodules.synthetic import SyntheticDataModule

DATAMODULES: dict[str, type[CXRDataModule]] = {
    cls.name: cls
    for cls in (
        SyntheticDataModule,
        Covid19RadiographyDataModule,
        COVIDxDataModule,
        CohenCovidDataModule,
        KermanyPneumoniaDataModule,
        ChestXray14DataModule,
        CheXpertDataModule,
        Figure1CovidDataModule,
        ActualmedCovidDataModule,
        CovidXray5kDataModule,
        CombinedDataModule,
        *COMBINED_PRESETS,
    )
}


def get_datamodule_class(name: str) -> type[CXRDataModule]:
    try:
        return DATAMODULES[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATAMODULES))}") from None


__all__ = ["CXRDataModule", "DATAMODULES", "DatasetNotFoundError", "get_datamodule_class"]
