"""Participation levels, in order: guest < messenger < verified (see core.participation)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Level", "higher"]


class Level(StrEnum):
    GUEST = "guest"
    MESSENGER = "messenger"
    VERIFIED = "verified"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Level.GUEST: 0, Level.MESSENGER: 1, Level.VERIFIED: 2}


def higher(a: str, b: str) -> str:
    return a if Level(a).rank >= Level(b).rank else b
