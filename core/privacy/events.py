"""Events of the privacy feature."""

from __future__ import annotations

from dataclasses import dataclass

from core.events import Event

__all__ = ["PersonErased"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonErased(Event):
    """A person was erased. ``touched``: (proposal id, tracking) they wrote, commented on or
    supported (the forum anonymises each); ``conversations``: (channel, external id) whose
    conversation state is dropped after commit (the ids live only in this event, in memory)."""

    person_id: int
    touched: tuple[tuple[int, str], ...]
    conversations: tuple[tuple[str, str], ...]
    web_sessions: tuple[str, ...] = ()
    web_uploads: tuple[tuple[str, str], ...] = ()  # (upload id, content type): files to delete
