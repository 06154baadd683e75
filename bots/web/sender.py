"""The web channel's Sender: pushed messages go to the session's inbox and wake its streams."""

from __future__ import annotations

from core.messages import Reply
from core.ports import ChannelCapabilities, ChannelLimits, Unreachable
from core.webchat import CHANNEL, UnknownAddress, WebChat

__all__ = ["WebSender"]


class WebSender:
    """Delivery workers call ``send``; the browser picks the message up over SSE (now or later)."""

    __slots__ = ("chat",)

    channel = CHANNEL
    capabilities = ChannelCapabilities(
        buttons=True,
        max_buttons=12,
        button_label_max=40,
        text_max=5000,
        edit=False,
        push=True,
        photo_intake=True,
        location_intake=True,
        images=True,
        keeps_typed_text=True,
        documents=True,  # a download link served to the session (bots/web/routes.py)
    )
    limits = ChannelLimits(per_second=500.0)  # our own database: no platform limit

    def __init__(self, *, chat: WebChat) -> None:
        self.chat = chat

    async def send(self, address: str, reply: Reply, *, edit_ref: str | None = None) -> str | None:
        try:
            item_id = await self.chat.put(address, reply)
        except UnknownAddress as exc:
            raise Unreachable("web session is gone") from exc
        return f"{CHANNEL}:{item_id}"
