"""Kept for importers: the DataModule is datamodules/datamodule.py, the reader base datamodules/readers/base.py."""

from datamodules.datamodule import CXRDataModule
from datamodules.readers.base import DatasetNotFoundError

__all__ = ["CXRDataModule", "DatasetNotFoundError"]
