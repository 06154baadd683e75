"""Switching to English: every later text of every flow is English."""

from __future__ import annotations

import re

from bots.server import conversation_engine
from core import commands as c
from core.bootstrap import Core
from core.domain.model import ProposalStatus
from core.ports import ChannelCapabilities, ChannelLimits
from tests.support_chat import Chat

HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
# Texts that are bilingual on purpose: the language picker itself.
BILINGUAL = ("언어를 골라 주세요. Please choose a language.", "Language / 언어", "한국어")


class _RichSender:
    channel = "tg"
    capabilities = ChannelCapabilities(photo_intake=True, location_intake=True, max_buttons=8)
    limits = ChannelLimits(per_second=30)

    async def send(self, address: str, reply: object, *, edit_ref: str | None = None) -> None:
        raise AssertionError("not used")


def _assert_english(chat: Chat) -> None:
    for reply in chat.last:
        for text in [reply.text, *(choice.label for choice in reply.choices)]:
            for allowed in BILINGUAL:
                text = text.replace(allowed, "")
            assert not HANGUL.search(text), text


async def test_language_switch_makes_every_text_english(core: Core) -> None:
    core.register_sender(_RichSender())  # type: ignore[arg-type]
    author = await core.execute(c.EnsureIdentity(channel="web", external_id="a", address="a"))
    other = await core.execute(
        c.SubmitProposal(person_id=author, title="Longer library hours", body="Please open the "
                         "library until 22:00 on weekdays.", category="culture")
    )
    await core.execute(
        c.ChangeStatus(tracking=other, status=ProposalStatus.UNDER_REVIEW, reason="Reviewing",
                       actor="slack:U1", source="slack")
    )
    chat = Chat(conversation_engine(core), channel="tg", user_id="5")
    await chat.command("start")
    assert "무엇을 도와드릴까요?" in chat.text
    await chat.press("Language")
    await chat.press("English")
    assert "I will speak English from now on." in chat.text
    _assert_english(chat)

    steps: list[tuple[str, object]] = [
        ("command", "help"), ("send", "zzz"), ("unsupported", "voice"),
        ("command", "new"), ("send", "no"), ("send", "Shade at bus stops"), ("send", "short"),
        ("send", "Bus stops need shade in the summer heat."), ("send", "pick?"),
        ("pick", "nav:more"), ("send", "Other"), ("send", "Skip"),
        ("send", "a caption instead of a photo"), ("photo", "telegram:AgAD"),
        ("location", (37.5, 127.0)), ("press", "Edit title"), ("send", "Shade at every bus stop"),
        ("press", "Submit"), ("command", "mine"), ("send", "1"), ("press", "History"),
        ("press", "Back to proposal"), ("press", "Leave a comment"), ("send", "x" * 1001),
        ("send", "Great idea"), ("pick", f"p:{other}:support"), ("pick", f"p:{other}:support"),
        ("pick", f"p:{other}:unfollow"), ("command", "following"), ("command", "lookup"),
        ("send", "library"), ("send", "nothing-matches"), ("send", "P-2026-"),
        ("send", other), ("command", "new"), ("send", "cancel"), ("command", "nope"),
        ("pick", "stale:button"), ("command", "start", ), ("command", "language"),
    ]
    for kind, arg in steps:
        if kind == "location":
            lat, lon = arg  # type: ignore[misc]
            await chat.location(lat, lon)
        else:
            await getattr(chat, kind)(arg)
        _assert_english(chat)
    assert "Submitted. Your tracking number is P-2026-000002." in "\n".join(
        r.text for turn in chat.history for r in turn
    )
    await chat.press("한국어")
    assert "한국어로 안내해 드리겠습니다." in chat.text
