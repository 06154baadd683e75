"""A small chat driver for tests: feed one person's messages to an engine, read its replies."""

from __future__ import annotations

from typing import Any

from conversations.incoming import (
    Command,
    Inbound,
    Incoming,
    Location,
    Photo,
    Picked,
    Text,
    Unsupported,
)
from core.messages import Choice, Reply

__all__ = ["Chat"]


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


class Chat:
    """``chat = Chat(engine, channel="web", user_id="u1")``; ``await chat.send("안녕")``."""

    def __init__(
        self,
        engine: Any,
        *,
        channel: str = "web",
        user_id: str = "u1",
        address: str | None = None,
        locale: str | None = None,
        display_name: str | None = None,
    ) -> None:
        self.engine = engine
        self.channel = channel
        self.user_id = user_id
        self.address = address or f"{channel}-{user_id}"
        self.locale = locale
        self.display_name = display_name
        self.last: list[Reply] = []
        self.history: list[list[Reply]] = []

    def inbound(self, payload: Incoming) -> Inbound:
        return Inbound(
            channel=self.channel,
            user_id=self.user_id,
            address=self.address,
            payload=payload,
            locale=self.locale,
            display_name=self.display_name,
        )

    async def deliver(self, payload: Incoming) -> list[Reply]:
        replies = await self.engine.handle(self.inbound(payload))
        self.last = list(replies)
        self.history.append(self.last)
        return self.last

    async def send(self, text: str) -> list[Reply]:
        return await self.deliver(Text(text))

    async def pick(self, choice_id: str) -> list[Reply]:
        return await self.deliver(Picked(choice_id))

    async def command(self, name: str, arg: str = "") -> list[Reply]:
        return await self.deliver(Command(name, arg))

    async def photo(self, ref: str, caption: str | None = None) -> list[Reply]:
        return await self.deliver(Photo(ref, caption))

    async def location(self, latitude: float, longitude: float) -> list[Reply]:
        return await self.deliver(Location(latitude, longitude))

    async def unsupported(self, kind: str = "sticker") -> list[Reply]:
        return await self.deliver(Unsupported(kind))

    async def press(self, label: str) -> list[Reply]:
        """Pick the offered choice whose label is ``label`` (or contains it)."""
        return await self.pick(self.choice_by_label(label).id)

    # --- reading the last answer ----------------------------------------------------
    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.last)

    @property
    def choices(self) -> list[Choice]:
        return [c for r in self.last for c in r.choices]

    @property
    def choice_ids(self) -> list[str]:
        return [c.id for c in self.choices]

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.choices]

    def choice_by_label(self, label: str) -> Choice:
        wanted = _norm(label)
        exact = [c for c in self.choices if _norm(c.label) == wanted]
        partial = [c for c in self.choices if wanted in _norm(c.label)]
        found = exact or partial
        if not found:
            raise AssertionError(f"no choice labelled {label!r} in {self.labels}")
        return found[0]

    def choice_by_id_prefix(self, prefix: str) -> Choice:
        for choice in self.choices:
            if choice.id.startswith(prefix):
                return choice
        raise AssertionError(f"no choice id starting with {prefix!r} in {self.choice_ids}")
