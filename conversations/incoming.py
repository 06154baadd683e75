"""Typed inbound messages: every channel's parser turns its platform payload into these."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Command",
    "Inbound",
    "Incoming",
    "Location",
    "Photo",
    "Picked",
    "Text",
    "Unsupported",
]


@dataclass(frozen=True, slots=True)
class Text:
    """Something the person typed."""

    text: str


@dataclass(frozen=True, slots=True)
class Picked:
    """A button or quick reply pressed: the ``Choice.id`` we offered."""

    choice_id: str


@dataclass(frozen=True, slots=True)
class Command:
    """A slash command: ``/start p_P-2026-000001`` → ``Command("start", "p_P-2026-000001")``."""

    name: str
    arg: str = ""


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Photo:
    """A picture; ``ref`` is a channel file reference such as ``telegram:<file_id>``."""

    ref: str
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class Unsupported:
    """Something we cannot take (sticker, voice, document, …): answered politely."""

    kind: str


Incoming = Text | Picked | Command | Location | Photo | Unsupported


@dataclass(frozen=True, slots=True, kw_only=True)
class Inbound:
    """One message from one person on one channel."""

    channel: str
    user_id: str  # the platform's stable user id
    address: str  # where replies go (chat id, web inbox id)
    payload: Incoming
    locale: str | None = None  # the platform's language hint (``en-US``)
    display_name: str | None = None
