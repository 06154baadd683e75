"""Reply → the web chat's JSON (pure). Text stays plain: the page inserts it as text, never HTML."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from core.messages import Reply

__all__ = ["error_body", "render_replies", "render_reply", "sse_event"]

UPLOAD_URL = "/webchat/files/"
DOWNLOAD_URL = "/webchat/mydata"  # "my data" as a file, fresh, for the session's person only


def _image(reply: Reply) -> dict[str, str] | None:
    image = reply.image
    if image is None:
        return None
    if image.png:
        url = "data:image/png;base64," + base64.b64encode(image.png).decode("ascii")
    elif image.ref and image.ref.startswith("web:"):
        url = UPLOAD_URL + image.ref.partition(":")[2]
    elif image.ref and image.ref.startswith(("https://", "/")):
        url = image.ref
    else:
        return None  # another channel's file reference: nothing the browser can load
    return {"url": url, "alt": image.alt}


def render_reply(reply: Reply) -> dict[str, Any]:
    """The JSON of one reply: ``Reply.to_dict()`` with images the browser can show."""
    out = reply.to_dict()
    out.pop("image", None)
    image = _image(reply)
    if image is not None:
        out["image"] = image
    if reply.document is not None:  # never the bytes: a link the session may open
        out["download"] = {"name": reply.document.name, "url": DOWNLOAD_URL}
    return out


def render_replies(replies: Sequence[Reply]) -> list[dict[str, Any]]:
    return [render_reply(r) for r in replies]


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def sse_event(event_id: int, replies: Sequence[Reply], *, event: str = "message") -> bytes:
    """One server-sent event: ``id``, ``event`` and a single ``data`` line of JSON."""
    data = json.dumps({"id": event_id, "replies": render_replies(replies)}, ensure_ascii=False)
    # json.dumps escapes newlines inside strings, so the data field is one line.
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n".encode()
