"""Web chat requests (JSON bodies) → typed values; bad input raises ``BadInput``."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from conversations.incoming import Command, Incoming, Location, Picked, Text

__all__ = [
    "CHOICE_MAX_BYTES",
    "TEXT_MAX",
    "BadInput",
    "MessageRequest",
    "SessionRequest",
    "clean_text",
    "parse_json",
    "parse_last_event_id",
    "parse_message",
    "parse_session",
]

TEXT_MAX = 5000
CHOICE_MAX_BYTES = 48
TOKEN_MAX = 256
_CHOICE_RE = re.compile(r"^[\x21-\x7e]{1,48}$")  # printable ASCII, no spaces
_START_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_COMMAND_RE = re.compile(r"^/([A-Za-z_]{1,32})(?:\s+(\S.*))?$", re.DOTALL)


class BadInput(ValueError):
    """A request we cannot take. ``key`` is ``web.error.<code>``; ``status`` the HTTP status;
    ``retry_after`` (seconds) becomes a ``Retry-After`` header."""

    def __init__(
        self, code: str, *, status: int = 400, retry_after: float | None = None,
        **params: object,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.params = params
        # 429/503: whole seconds for the Retry-After header (at least 1)
        self.retry_after = None if retry_after is None else max(1, math.ceil(retry_after))

    @property
    def key(self) -> str:
        return f"web.error.{self.code}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRequest:
    """``POST /webchat/session``: resume ``token`` (if any), in ``locale``, from a deep link."""

    token: str | None = None
    locale: str | None = None
    start: str = ""
    greet: bool = True  # False: resume quietly (the page restored its own transcript)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRequest:
    """``POST /webchat/message``: what the person sent in session ``token``."""

    token: str
    payload: Incoming


def parse_json(raw: bytes, *, allow_empty: bool = False) -> dict[str, Any]:
    """A JSON object from a request body."""
    if not raw.strip():
        if allow_empty:
            return {}
        raise BadInput("bad_json")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadInput("bad_json") from exc
    if not isinstance(data, dict):
        raise BadInput("bad_json")
    return data


def clean_text(text: str) -> str:
    """Drop control characters (keeping newlines and tabs) and normalise line endings."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())


def _token(data: dict[str, Any], *, required: bool) -> str | None:
    token = data.get("session")
    if token is None or token == "":
        if required:
            raise BadInput("missing_session")
        return None
    if not isinstance(token, str) or len(token) > TOKEN_MAX:
        raise BadInput("unknown_session", status=401)
    return token


def parse_session(data: dict[str, Any]) -> SessionRequest:
    locale = data.get("locale")
    if locale is not None and not isinstance(locale, str):
        locale = None
    start = data.get("start") or ""
    if not isinstance(start, str) or (start and not _START_RE.match(start)):
        raise BadInput("bad_start")
    greet = data.get("greet", True) is not False
    return SessionRequest(
        token=_token(data, required=False), locale=locale, start=start, greet=greet
    )


def _text(value: Any) -> Incoming:
    if not isinstance(value, str):
        raise BadInput("missing_message")
    if len(value) > TEXT_MAX:
        raise BadInput("too_long", max=TEXT_MAX, length=len(value))
    text = clean_text(value).strip()
    if not text:
        raise BadInput("empty_text")
    command = _COMMAND_RE.match(text)
    if command:
        return Command(command.group(1).lower(), (command.group(2) or "").strip())
    return Text(text)


def _choice(value: Any) -> Incoming:
    if not isinstance(value, str) or not _CHOICE_RE.match(value):
        raise BadInput("bad_choice")
    return Picked(value)


def _location(value: Any) -> Incoming:
    if not isinstance(value, dict):
        raise BadInput("bad_location")
    lat, lon = value.get("latitude"), value.get("longitude")
    ok = all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for v in (lat, lon)
    )
    if not ok:
        raise BadInput("bad_location")
    assert isinstance(lat, int | float) and isinstance(lon, int | float)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise BadInput("bad_location")
    return Location(float(lat), float(lon))


def parse_message(data: dict[str, Any]) -> MessageRequest:
    token = _token(data, required=True)
    assert token is not None
    if data.get("choice") is not None:
        payload = _choice(data["choice"])
    elif data.get("location") is not None:
        payload = _location(data["location"])
    elif "text" in data:
        payload = _text(data["text"])
    else:
        raise BadInput("missing_message")
    return MessageRequest(token=token, payload=payload)


def parse_last_event_id(*values: str | None) -> int | None:
    """The first usable SSE cursor among ``Last-Event-ID`` and the ``after`` query value."""
    for value in values:
        if value and value.isascii() and value.isdigit() and len(value) <= 18:
            return int(value)
    return None
