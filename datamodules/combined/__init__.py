"""Combined tasks: the generic composition of readers (compose.py) and the papers' presets (presets.py)."""

from __future__ import annotations

from datamodules.combined.compose import CombinedReader, Component
from datamodules.combined.presets import (
    SiameseCovidxReader, TransferChestXray14CovidReader, TwiceTransferRadiographyReader, WceCovidXray5kCohenReader,
    balanced_multilabel_subset,
)

__all__ = [
    "CombinedReader", "Component", "SiameseCovidxReader", "TransferChestXray14CovidReader", "TwiceTransferRadiographyReader",
    "WceCovidXray5kCohenReader", "balanced_multilabel_subset",
]
