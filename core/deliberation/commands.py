"""Deliberation's commands (frozen dataclasses); opinions themselves are ``AddFeedback``."""

from __future__ import annotations

from dataclasses import dataclass

from core.commands import Command
from core.deliberation.model import Vote

__all__ = [
    "AddStatement",
    "ModerateStatement",
    "OpenStatements",
    "SupportOpinion",
    "VoteStatement",
    "WithdrawOpinion",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class SupportOpinion(Command):
    """공감 an opinion: once per person; not one's own."""

    opinion_id: int
    person_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WithdrawOpinion(Command):
    """Only the person who wrote it."""

    opinion_id: int
    person_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenStatements(Command):
    """Open statement voting on a proposal: an official (``actor``) or the author (``person_id``).

    ``statements`` are the first statements to vote on (officials usually bring some).
    """

    tracking: str
    actor: str | None = None
    person_id: int | None = None
    statements: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AddStatement(Command):
    """A citizen's own statement: waits for an official unless added by one."""

    tracking: str
    text: str
    person_id: int | None = None
    actor: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModerateStatement(Command):
    statement_id: int
    approve: bool
    actor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VoteStatement(Command):
    statement_id: int
    person_id: int
    vote: Vote
