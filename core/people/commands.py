"""Commands of linked identities: show a code, type it on another channel, unlink."""

from __future__ import annotations

from dataclasses import dataclass

from core.commands import Command

__all__ = ["IssueLinkCode", "RedeemLinkCode", "UnlinkIdentity"]


@dataclass(frozen=True, slots=True, kw_only=True)
class IssueLinkCode(Command):
    """A fresh one-time code for ``person_id`` (earlier unused codes of theirs are spent).
    Returns the 6 digits."""

    person_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RedeemLinkCode(Command):
    """``person_id`` typed ``code`` on ``channel``: join them with the person who was shown it.
    Returns a ``core.people.merge.MergeSummary``."""

    person_id: int
    code: str
    channel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UnlinkIdentity(Command):
    """Take ``identity_id`` away from ``person_id`` into a new person of its own (with none of
    the person's proposals, supports or ballots). The last identity cannot be unlinked."""

    person_id: int
    identity_id: int
