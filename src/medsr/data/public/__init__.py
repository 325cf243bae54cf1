"""Readers that index public datasets already on disk (no network) and load lazily.

LIDC-IDRI (`index_lidc`), NIH ChestX-ray14 (`index_chestxray14`) and the TCIA
LDCT-and-Projection-data low/full-dose pairs (`index_tcia_ldct`, `TciaLdctPairs`).
"""

from __future__ import annotations

from medsr.data.public.chestxray14 import ChestXray14Index, ChestXrayRecord, index_chestxray14
from medsr.data.public.lidc import LidcIndex, LidcSeries, index_lidc
from medsr.data.public.tcia_ldct import (
    LdctPair,
    LdctSeries,
    SlicePair,
    TciaLdctPairs,
    index_tcia_ldct,
)

__all__ = [
    "ChestXray14Index",
    "ChestXrayRecord",
    "LdctPair",
    "LdctSeries",
    "LidcIndex",
    "LidcSeries",
    "SlicePair",
    "TciaLdctPairs",
    "index_chestxray14",
    "index_lidc",
    "index_tcia_ldct",
]
