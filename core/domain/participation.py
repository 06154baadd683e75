"""Participation levels, in order: guest < messenger < verified (see core.participation), and
the refusal of an action a person's level does not reach."""

from __future__ import annotations

from enum import StrEnum

from core.domain.errors import DomainError

__all__ = ["Level", "NeedsParticipation", "higher"]


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


class NeedsParticipation(DomainError):
    """This action counts only for people at ``required``; the person is at ``level``."""

    key = "error.participation.messenger"

    def __init__(self, *, required: Level, level: Level) -> None:
        super().__init__(f"needs {required}, has {level}", required=required.value,
                         level=level.value)
        self.required = required
        self.level = level
        self.key = f"error.participation.{required.value}"
