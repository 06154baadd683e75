"""Channel-neutral outgoing messages: what every channel's renderer turns into its own payload."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import cast

__all__ = ["Choice", "Document", "Image", "Reply", "ReplyKind", "Request"]


class ReplyKind(StrEnum):
    """Why a message is sent: decides priority in the delivery engine."""

    CONVERSATION = "conversation"  # an answer to what the person just did: goes first
    NOTIFICATION = "notification"  # a status change of a proposal the person cares about
    PUSH = "push"  # a campaign message or survey: bulk, quiet hours apply


class Request(StrEnum):
    """What a reply asks the person to send, where the channel can ask natively."""

    PHOTO = "photo"
    LOCATION = "location"
    PHOTO_OR_LOCATION = "photo_or_location"  # either (or both, one after the other)


@dataclass(frozen=True, slots=True)
class Choice:
    """One option. ``id`` is opaque (≤ 48 ASCII bytes), ``label`` is user-facing text."""

    id: str
    label: str


@dataclass(frozen=True, slots=True)
class Image:
    """A picture to show: PNG bytes we made (charts) or a channel-specific reference."""

    png: bytes | None = None
    ref: str | None = None
    alt: str = ""


@dataclass(frozen=True, slots=True)
class Document:
    """A file to hand over (e.g. "my data" as JSON). Sent as a file where the channel can
    (Telegram ``sendDocument``); the web chat offers a download link instead of the bytes."""

    name: str
    mime: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Reply:
    """One message. ``text`` is plain text: renderers escape it for their platform.

    ``heading`` is shown emphasised where the channel can; ``choices`` degrade to a numbered
    list where buttons are missing; ``edit`` asks to replace the message the person answered
    (a button's message) where the channel supports it.
    """

    text: str
    heading: str | None = None
    choices: tuple[Choice, ...] = ()
    request: Request | None = None
    image: Image | None = None
    edit: bool = False
    kind: ReplyKind = ReplyKind.CONVERSATION
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    document: Document | None = None  # conversation replies only: never queued (no bytes in rows)

    def to_dict(self) -> dict[str, object]:
        """The JSON shape the web chat API uses."""
        out: dict[str, object] = {
            "text": self.text,
            "choices": [{"id": c.id, "label": c.label} for c in self.choices],
        }
        if self.heading:
            out["heading"] = self.heading
        if self.request:
            out["request"] = self.request.value
        if self.image and self.image.ref:
            out["image"] = {"url": self.image.ref, "alt": self.image.alt}
        out["kind"] = self.kind.value
        if self.meta.get("invalid"):  # the answer was refused: the page keeps what was typed
            out["invalid"] = True
        if self.meta.get("input") == "choice":  # only the options answer this: no text box
            out["input"] = "choice"
        return out

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Reply:
        raw = cast("Iterable[dict[str, object]]", data.get("choices", ()))
        choices = tuple(Choice(id=str(c["id"]), label=str(c["label"])) for c in raw)
        image = data.get("image")
        return cls(
            text=str(data.get("text", "")),
            heading=data.get("heading"),  # type: ignore[arg-type]
            choices=choices,
            request=Request(str(data["request"])) if data.get("request") else None,
            image=Image(ref=image["url"], alt=image.get("alt", ""))  # type: ignore[index,union-attr]
            if isinstance(image, dict)
            else None,
            kind=ReplyKind(str(data.get("kind", "conversation"))),
        )


def reply_to_json(reply: Reply) -> dict[str, object]:
    """Everything in a reply, JSON-safe (PNG bytes as base64), for queues and outboxes."""
    import base64

    out = reply.to_dict()
    if reply.image is not None:
        out["image"] = {
            "url": reply.image.ref,
            "alt": reply.image.alt,
            "png": base64.b64encode(reply.image.png).decode() if reply.image.png else None,
        }
    if reply.edit:
        out["edit"] = True
    if reply.meta:
        out["meta"] = dict(reply.meta)
    return out


def reply_from_json(data: dict[str, object]) -> Reply:
    import base64
    from dataclasses import replace

    reply = Reply.from_dict(data)
    image = data.get("image")
    if isinstance(image, dict):
        png = image.get("png")
        reply = replace(
            reply,
            image=Image(
                png=base64.b64decode(png) if isinstance(png, str) else None,
                ref=image.get("url"),
                alt=str(image.get("alt") or ""),
            ),
        )
    meta = data.get("meta")
    return replace(
        reply,
        edit=bool(data.get("edit", False)),
        meta={str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {},
    )
