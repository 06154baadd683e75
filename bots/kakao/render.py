"""Replies → Open Builder's SkillResponse (``version: "2.0"``). Pure: no I/O.

Limits kept (Kakao i Open Builder, "응답 타입별 JSON 포맷"; sources cited in
``tests/fakes/kakao.py``): at most 3 outputs; ``simpleText.text`` ≤ 1000 characters (longer
text is split over outputs; only what does not fit in 3 is cut, with "…"); at most 10
``quickReplies`` with labels ≤ 14 characters (longer labels get a numbered list in the text,
and typing the number or the full label picks it); a ``basicCard`` (title ≤ 50, description
≤ 230, thumbnail) where a reply has a heading, a short text and an image; ``simpleImage`` for
charts and photos at a URL we serve. Text is never markup on Kakao: it is sent as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from core.messages import Choice, Image, Reply

__all__ = [
    "LABEL_MAX",
    "MAX_OUTPUTS",
    "MAX_QUICK_REPLIES",
    "TEXT_MAX",
    "callback_waiting",
    "render",
    "split_text",
]

MAX_OUTPUTS = 3
MAX_QUICK_REPLIES = 10
TEXT_MAX = 1000
LABEL_MAX = 14
MESSAGE_TEXT_MAX = 1000
CARD_TITLE_MAX = 50
CARD_DESCRIPTION_MAX = 230
ALT_MAX = 100
ImageUrl = Callable[[Image], str | None]


@dataclass(frozen=True, slots=True)
class _Text:
    text: str


@dataclass(frozen=True, slots=True)
class _Picture:
    url: str
    alt: str


@dataclass(frozen=True, slots=True)
class _Card:
    title: str
    description: str
    url: str


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def short_label(text: str, limit: int = LABEL_MAX) -> str:
    one_line = " ".join(text.split())
    return _cut(one_line, limit)


def split_text(text: str, limit: int = TEXT_MAX) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, broken at a paragraph, a line or a
    space where one is near."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def _parts(reply: Reply, image_url: ImageUrl) -> list[_Text | _Picture | _Card]:
    text = reply.text.strip()
    url = image_url(reply.image) if reply.image is not None else None
    if url and reply.heading and len(text) <= CARD_DESCRIPTION_MAX:
        return [_Card(_cut(reply.heading, CARD_TITLE_MAX), text, url)]
    parts: list[_Text | _Picture | _Card] = []
    if url:
        alt = reply.image.alt if reply.image is not None else ""
        parts.append(_Picture(url, _cut(alt or reply.heading or "image", ALT_MAX)))
    elif reply.image is not None and reply.image.alt:
        text = f"{text}\n\n{reply.image.alt}".strip()
    if reply.heading:
        text = f"{reply.heading}\n\n{text}".strip()
    if text:
        parts.append(_Text(text))
    return parts


def _pack(parts: list[_Text | _Picture | _Card]) -> list[_Text | _Picture | _Card]:
    """At most three outputs: texts side by side are joined, then split at 1000 characters;
    when that is still too many, pictures give way to their alt text, and the last text is cut."""
    merged: list[_Text | _Picture | _Card] = []
    for part in parts:
        if isinstance(part, _Text) and merged and isinstance(merged[-1], _Text):
            merged[-1] = _Text(f"{merged[-1].text}\n\n{part.text}")
        else:
            merged.append(part)
    out: list[_Text | _Picture | _Card] = []
    for part in merged:
        if isinstance(part, _Text):
            out.extend(_Text(piece) for piece in split_text(part.text))
        else:
            out.append(part)
    if len(out) > MAX_OUTPUTS:
        flat = [p if isinstance(p, _Text) else _Text(_alt(p)) for p in out]
        return _pack_texts(flat)
    return out


def _alt(part: _Picture | _Card) -> str:
    return part.alt if isinstance(part, _Picture) else f"{part.title}\n\n{part.description}"


def _pack_texts(parts: list[_Text]) -> list[_Text | _Picture | _Card]:
    joined = "\n\n".join(p.text for p in parts)
    pieces = split_text(joined)
    if len(pieces) > MAX_OUTPUTS:
        last = " ".join(pieces[MAX_OUTPUTS - 1 :])
        pieces = [*pieces[: MAX_OUTPUTS - 1], _cut(last, TEXT_MAX)]
    return [_Text(p) for p in pieces]


def _output(part: _Text | _Picture | _Card) -> dict[str, Any]:
    if isinstance(part, _Text):
        return {"simpleText": {"text": part.text}}
    if isinstance(part, _Picture):
        return {"simpleImage": {"imageUrl": part.url, "altText": part.alt}}
    return {
        "basicCard": {
            "title": part.title,
            "description": part.description,
            "thumbnail": {"imageUrl": part.url},
        }
    }


def _quick_replies(
    choices: Sequence[Choice], block_id: str | None
) -> tuple[list[dict[str, Any]], str]:
    """The quick replies, and a numbered list for the text when a label had to be shortened
    (or there are more choices than quick replies)."""
    numbered = any(len(" ".join(c.label.split())) > LABEL_MAX for c in choices) or (
        len(choices) > MAX_QUICK_REPLIES
    )
    replies: list[dict[str, Any]] = []
    for n, choice in enumerate(choices[:MAX_QUICK_REPLIES], start=1):
        full = " ".join(choice.label.split())
        label = short_label(f"{n}. {full}" if numbered else full)
        item: dict[str, Any] = {"label": label, "messageText": _cut(full, MESSAGE_TEXT_MAX)}
        if block_id:
            item.update(action="block", blockId=block_id, extra={"c": choice.id})
        else:
            item["action"] = "message"
        replies.append(item)
    listing = ""
    if numbered:
        listing = "\n".join(f"{n}. {c.label}" for n, c in enumerate(choices, start=1))
    return replies, listing


def render(
    replies: Sequence[Reply], *, image_url: ImageUrl = lambda _i: None,
    block_id: str | None = None,
) -> dict[str, Any]:
    """The SkillResponse for one turn's replies (choices come from the last reply that has
    them: the engine puts the screen's choices there)."""
    choices: tuple[Choice, ...] = ()
    for reply in replies:
        if reply.choices:
            choices = reply.choices
    quick, listing = _quick_replies(choices, block_id)
    parts: list[_Text | _Picture | _Card] = []
    for reply in replies:
        parts.extend(_parts(reply, image_url))
    if listing:
        parts.append(_Text(listing))
    if not parts:
        parts.append(_Text("…"))
    template: dict[str, Any] = {"outputs": [_output(p) for p in _pack(parts)]}
    if quick:
        template["quickReplies"] = quick
    return {"version": "2.0", "template": template}


def callback_waiting(text: str) -> dict[str, Any]:
    """The immediate answer to a turn that will take longer: the real one goes to the
    request's ``callbackUrl``. ``data.text`` is shown while waiting (where enabled)."""
    return {"version": "2.0", "useCallback": True, "data": {"text": _cut(text, TEXT_MAX)}}
