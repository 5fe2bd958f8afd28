"""Dataset readers (stage 1: native files -> manifest), one file per dataset, found by name in ``READERS``."""

from __future__ import annotations

from registry import Registry

READERS: Registry = Registry("dataset")

# importing a reader module registers its readers (after READERS exists)
from datamodules.readers import (  # noqa: E402,F401
    agchung, chestxray14, chexpert, cohen_covid, covid19_radiography, covidx, covidx_ray_5k, kermany_pneumonia, synthetic,
    synthetic_chestxray14,
)
from datamodules.readers.base import DatasetNotFoundError, Reader  # noqa: E402

__all__ = ["READERS", "DatasetNotFoundError", "Reader"]
