"""The channel-neutral core: push capability honoured by workers, notifications and campaigns;
news kept for a channel that cannot push reaches the person at their next contact."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conversations import build_engine
from conversations.commands import COMMANDS, by_name, menu_commands
from conversations.incoming import Command, Inbound, Text
from core import commands as cc
from core.bootstrap import Core
from core.campaigns import commands as c
from core.campaigns.model import Segment
from core.domain.model import ProposalStatus
from core.ports import ChannelCapabilities
from tests.campaign_support import RecordingSender, citizen, drain, quiet_core
from tests.support import ManualClock


@pytest.fixture
async def ncore(database_url: str, tmp_path: Path, clock: ManualClock) -> AsyncIterator[Core]:
    instance = await quiet_core(database_url, tmp_path, clock)
    clock.current = clock.current.replace(hour=3)  # 12:00 in Seoul: no quiet hours
    try:
        yield instance
    finally:
        await instance.stop()


def channels(core: Core) -> tuple[RecordingSender, RecordingSender]:
    loud = RecordingSender("loud")
    mute = RecordingSender(
        "mute", capabilities=ChannelCapabilities(push=False, max_buttons=5, button_label_max=8)
    )
    core.register_sender(loud)
    core.register_sender(mute)
    return loud, mute


async def turn(core: Core, engine, user: str, payload) -> list:  # type: ignore[no-untyped-def]
    return await engine.handle(
        Inbound(channel="mute", user_id=user, address=f"mute-{user}", payload=payload)
    )


async def test_news_waits_for_a_channel_that_cannot_push(ncore: Core) -> None:
    loud, mute = channels(ncore)
    engine = build_engine(ncore)
    await turn(ncore, engine, "a", Command("start"))
    pid = (await ncore.views.identity("mute", "a")).person_id  # type: ignore[union-attr]
    other = int(await ncore.execute(cc.EnsureIdentity(channel="loud", external_id="b",
                                                      address="loud-b")))
    tracking = await ncore.execute(cc.SubmitProposal(
        person_id=pid, title="버스 정류장 그늘막",
        body="여름에 너무 덥습니다. 그늘막이 필요합니다.", category="transport", channel="mute"))
    await ncore.execute(cc.FollowProposal(person_id=other, tracking=tracking))
    for status in (ProposalStatus.UNDER_REVIEW, ProposalStatus.ACCEPTED):
        await ncore.execute(cc.ChangeStatus(tracking=tracking, status=status, reason="검토",
                                            actor="slack:U1", source="slack"))
    await drain(ncore)
    assert len(loud.to("loud-b")) == 2  # a channel that can push: at once
    assert mute.sent == []  # one that cannot: nothing sent, nothing lost

    replies = await turn(ncore, engine, "a", Text("메뉴"))
    assert replies[0].text.startswith("새 소식이 2건 있습니다.")
    assert replies[0].text.count(tracking) >= 2
    assert len(replies) > 1  # the answer to what they typed follows
    # The news is handed over once.
    again = await turn(ncore, engine, "a", Text("메뉴"))
    assert "새 소식" not in again[0].text


async def test_campaigns_skip_channels_that_cannot_push(ncore: Core) -> None:
    loud, mute = channels(ncore)
    await citizen(ncore, "only-mute", channel="mute")
    await citizen(ncore, "only-loud", channel="loud")
    both = await citizen(ncore, "both", channel="mute")
    await ncore.execute(cc.EnsureIdentity(channel="loud", external_id="both2", address="loud-x"))
    assert both
    push_id = int(await ncore.execute(c.CreatePush(
        name="안내", message={"ko": "안내입니다.", "en": "A notice."}, segment=Segment(),
        actor="test")))
    dry = await ncore.campaigns.dry_run(push_id)
    assert dry.by_channel == {"loud": 1}
    await ncore.execute(c.StartPush(push_id=push_id, actor="test"))
    await ncore.campaigns.tick()
    await drain(ncore)
    assert [a for a, _ in loud.sent] == ["loud-only-loud"]
    assert mute.sent == []


async def test_dry_run_estimates_the_cost_of_paid_pushes(ncore: Core) -> None:
    paid = RecordingSender("paid", capabilities=ChannelCapabilities(push_cost=15.0))
    ncore.register_sender(paid)
    for name in ("a", "b", "c"):
        await citizen(ncore, name, channel="paid")
    push_id = int(await ncore.execute(c.CreatePush(
        name="안내", message={"ko": "안내입니다.", "en": "A notice."}, segment=Segment(),
        actor="test")))
    dry = await ncore.campaigns.dry_run(push_id)
    assert dry.by_channel == {"paid": 3}
    assert dry.cost == {"paid": 45.0} and dry.total_cost == 45.0 and dry.currency == "KRW"


def test_one_command_registry() -> None:
    names = by_name()
    assert names["propose"].flow == "intake" and names["find"].flow == "lookup"
    assert "back" not in menu_commands() and "start" in menu_commands()
    assert len({spec.name for spec in COMMANDS}) == len(COMMANDS)
