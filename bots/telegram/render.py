"""``Reply`` → Telegram Bot API calls (pure): HTML-escaped text, keyboards, splits, photos.

Calls are plain Bot API method names with JSON-ready parameters, exactly what goes on the wire
(the Sender hands them to PTB's ``Bot.do_api_request``: no typed objects built and parsed back
on the hot path).
"""

from __future__ import annotations

import base64
import hashlib
import html
from dataclasses import dataclass, field
from typing import Any

from core.i18n import t
from core.messages import Choice, Reply, Request

__all__ = [
    "CALLBACK_DATA_MAX",
    "CAPTION_MAX",
    "TEXT_MAX",
    "TOKEN_PREFIX",
    "Rendered",
    "TelegramCall",
    "callback_data",
    "render",
    "split_text",
    "utf16_len",
]

TEXT_MAX = 4096  # message text after entity parsing, in UTF-16 code units
CAPTION_MAX = 1024
CALLBACK_DATA_MAX = 64  # bytes
TOKEN_PREFIX = "~t:"  # noqa: S105 - a callback-data prefix, not a secret  # callback data that stands for a longer choice id kept server-side
HTML = "HTML"
HEADING_MAX = 256
LABEL_MAX = 64


def utf16_len(text: str) -> int:
    """How Telegram measures text: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def callback_data(choice_id: str) -> tuple[str, str | None]:
    """The ``callback_data`` for a choice, and the choice id to remember if it had to be a token.

    Ids up to 64 bytes travel as they are; longer ones become a stable short token whose
    meaning is kept server-side (never trusted as authority either way: the engine checks
    every picked id against what it offered).
    """
    raw = choice_id.encode()
    if len(raw) <= CALLBACK_DATA_MAX and not choice_id.startswith(TOKEN_PREFIX):
        return choice_id, None
    digest = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).decode()[:32]
    return TOKEN_PREFIX + digest, choice_id


@dataclass(frozen=True, slots=True, kw_only=True)
class TelegramCall:
    """One Bot API call: the method (``sendMessage``, ``editMessageText``, ``sendPhoto``) and
    its parameters as JSON values (a picture to upload as ``bytes``)."""

    method: str
    params: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """A JSON view for golden tests (picture bytes as a digest)."""
        out: dict[str, Any] = {"method": self.method}
        for key, value in self.params.items():
            if isinstance(value, bytes):
                out[key] = {"bytes": len(value), "sha256": hashlib.sha256(value).hexdigest()[:16]}
            else:
                out[key] = value
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Rendered:
    calls: tuple[TelegramCall, ...]
    tokens: dict[str, str] = field(default_factory=dict)  # callback token → choice id


def split_text(text: str, limit: int = TEXT_MAX) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` UTF-16 units, at line ends where possible,
    else at spaces, else anywhere (never inside a character)."""
    pieces: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        cut = _prefix_fitting(rest, limit)
        window = rest[:cut]
        at = window.rfind("\n")
        if at < cut // 2:
            at = window.rfind(" ")
        if at < cut // 2:
            pieces.append(window)
            rest = rest[cut:]
        else:
            pieces.append(window[:at])
            rest = rest[at + 1 :]
    pieces.append(rest)
    return [p for p in pieces if p.strip()]


def _prefix_fitting(text: str, limit: int) -> int:
    """The number of characters of ``text`` whose UTF-16 length fits in ``limit``."""
    if len(text) == utf16_len(text):
        return min(len(text), limit)
    units = 0
    for index, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _columns(labels: list[str]) -> int:
    """Short labels (regions, yes/no) share a row; long ones get a row each."""
    widest = max((len(label) for label in labels), default=0)
    return 3 if widest <= 6 else 2 if widest <= 12 else 1


def _inline_keyboard(choices: tuple[Choice, ...]) -> tuple[dict[str, Any], dict[str, str]]:
    tokens: dict[str, str] = {}
    buttons: list[dict[str, str]] = []
    for choice in choices:
        data, remembered = callback_data(choice.id)
        if remembered is not None:
            tokens[data] = remembered
        buttons.append({"text": _label(choice.label), "callback_data": data})
    width = _columns([b["text"] for b in buttons])
    rows = [buttons[i : i + width] for i in range(0, len(buttons), width)]
    return {"inline_keyboard": rows}, tokens


def _label(text: str) -> str:
    one_line = " ".join(text.split()) or "·"
    return one_line if len(one_line) <= LABEL_MAX else one_line[: LABEL_MAX - 1] + "…"


def _location_keyboard(choices: tuple[Choice, ...], locale: str) -> dict[str, Any]:
    """A reply keyboard: share-location first, then each choice by its label (the engine takes
    a typed label as that choice)."""
    rows: list[list[dict[str, Any]]] = [
        [{"text": t("telegram.location_button", locale), "request_location": True}]
    ]
    rows += [[{"text": _label(choice.label)}] for choice in choices]
    return {"keyboard": rows, "resize_keyboard": True, "one_time_keyboard": True}


def _plain(reply: Reply, locale: str) -> tuple[str, str]:
    """(heading, body) as plain text, with the channel's hints added."""
    heading = " ".join((reply.heading or "").split())[:HEADING_MAX]
    body = reply.text
    if reply.request is Request.PHOTO:
        body = (
            f"{body}\n\n{t('telegram.photo_hint', locale)}"
            if body.strip()
            else t("telegram.photo_hint", locale)
        )
    elif reply.request in (Request.LOCATION, Request.PHOTO_OR_LOCATION):
        hint = t("telegram.location_hint", locale)
        if reply.request is Request.PHOTO_OR_LOCATION:
            hint = t("telegram.photo_hint", locale) + "\n" + hint
        body = f"{body}\n\n{hint}" if body.strip() else hint
    if not heading and not body.strip() and reply.choices:
        body = t("telegram.choose", locale)
    return heading, body


def _chunks_html(heading: str, body: str, limit: int) -> list[str]:
    """Split heading + body under ``limit`` and escape each piece; the heading goes in <b>."""
    if not heading:
        return [_esc(piece) for piece in split_text(body, limit)]
    full = f"{heading}\n{body}" if body.strip() else heading
    pieces = split_text(full, limit)
    first = pieces[0]
    if first.startswith(heading):
        pieces[0] = f"<b>{_esc(heading)}</b>{_esc(first[len(heading) :])}"
        return [pieces[0]] + [_esc(p) for p in pieces[1:]]
    return [_esc(p) for p in pieces]


def _photo_source(reply: Reply) -> bytes | str | None:
    image = reply.image
    if image is None:
        return None
    if image.png:
        return image.png
    ref = image.ref or ""
    if ref.startswith("telegram:"):
        return ref.removeprefix("telegram:")
    if ref.startswith("https://") or ref.startswith("http://"):
        return ref
    return None


def render(reply: Reply, *, chat_id: int, locale: str, edit_ref: str | None = None) -> Rendered:
    """The calls that show ``reply`` in ``chat_id``. ``edit_ref`` edits that bot message.

    Every piece of text is HTML-escaped (``parse_mode=HTML``), so nothing a citizen typed can
    become markup; texts longer than Telegram allows are split at line boundaries; choices
    become an inline keyboard on the last message (a reply keyboard when asking for a location).
    """
    heading, body = _plain(reply, locale)
    tokens: dict[str, str] = {}
    markup: dict[str, Any] | None = None
    if reply.request in (Request.LOCATION, Request.PHOTO_OR_LOCATION):
        markup = _location_keyboard(reply.choices, locale)
    elif reply.choices:
        markup, tokens = _inline_keyboard(reply.choices)
    calls: list[TelegramCall] = []
    if reply.document is not None:  # the file first, the words (and buttons) after it
        calls.append(TelegramCall(
            method="sendDocument", params={"chat_id": chat_id, "document": reply.document}
        ))
    photo = _photo_source(reply)
    if photo is not None:
        caption = _chunks_html(heading, body, CAPTION_MAX)
        if len(caption) <= 1:
            params: dict[str, Any] = {"chat_id": chat_id, "photo": photo}
            if caption:
                params.update(caption=caption[0], parse_mode=HTML)
            if markup is not None:
                params["reply_markup"] = markup
            return Rendered(calls=(TelegramCall(method="sendPhoto", params=params),), tokens=tokens)
        alt = " ".join((reply.image.alt if reply.image else "").split())[:CAPTION_MAX]
        params = {"chat_id": chat_id, "photo": photo}
        if alt:
            params.update(caption=_esc(alt), parse_mode=HTML)
        calls.append(TelegramCall(method="sendPhoto", params=params))
    texts = _chunks_html(heading, body, TEXT_MAX)
    if not texts and markup is None and not calls:
        texts = [_esc(t("telegram.choose", locale))]
    can_edit = (
        edit_ref is not None
        and edit_ref.isdigit()
        and not calls
        and not (markup is not None and "keyboard" in markup)  # reply keyboards can't be edited in
    )
    for index, text in enumerate(texts):
        last = index == len(texts) - 1
        params = {"chat_id": chat_id, "text": text, "parse_mode": HTML}
        if last and markup is not None:
            params["reply_markup"] = markup
        if index == 0 and can_edit:
            params["message_id"] = int(edit_ref)  # type: ignore[arg-type]
            calls.append(TelegramCall(method="editMessageText", params=params))
        else:
            calls.append(TelegramCall(method="sendMessage", params=params))
    return Rendered(calls=tuple(calls), tokens=tokens)
