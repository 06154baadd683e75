"""Done when: an official clicks "change status" on a triage message, submits the modal, and the
proposal's author on the web chat and a follower on Telegram both receive the update.

First at the core boundary (recording Senders registered on the core, drained by the delivery
worker), then through the whole server: the real web inbox and the real Telegram sender against
the fake Bot API, the real Slack route and Bolt against the fake Slack API.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bots.server import CORE, create_app
from bots.slack import render
from core import commands as c
from core.delivery import DeliveryWorker
from core.domain.model import ProposalStatus
from core.messages import Reply
from core.ports import ChannelCapabilities, ChannelLimits
from tests.channels.slack_harness import (
    OFFICIAL,
    TRIAGE,
    citizen,
    harness,
    propose,
    slack_core,
    slack_settings,
)
from tests.fakes.slack_api import FakeSlack, block_actions, sign, view_submission
from tests.fakes.telegram_api import FakeTelegram
from tests.support import ManualClock, eventually

FOLLOWER_CHAT = 777001


def status_values(status: str, reason: str) -> dict[str, Any]:
    return {
        "status": {"value": {"type": "static_select", "selected_option": {"value": status}}},
        "reason": {"value": {"type": "plain_text_input", "value": reason}},
        "expected_date": {"value": {"type": "datepicker", "selected_date": None}},
    }


class RecordingSender:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.capabilities = ChannelCapabilities()
        self.limits = ChannelLimits(per_second=100.0)
        self.sent: list[tuple[str, Reply]] = []

    async def send(self, address: str, reply: Reply, *, edit_ref: str | None = None) -> str:
        self.sent.append((address, reply))
        return f"{self.channel}:{len(self.sent)}"


async def test_status_change_reaches_web_and_telegram_at_the_core_boundary(
    database_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    async with FakeSlack() as slack:
        settings = slack_settings(tmp_path, database_url, slack)
        async with slack_core(settings, clock) as core, harness(core, slack) as h:
            web, telegram = RecordingSender("web"), RecordingSender("telegram")
            core.register_sender(web)
            core.register_sender(telegram)
            author = await citizen(core, "alice")
            follower = await citizen(core, str(FOLLOWER_CHAT), channel="telegram", locale="en")
            tracking = await propose(core, author)
            await core.execute(c.FollowProposal(person_id=follower, tracking=tracking))
            await h.settle()
            await h.post(*block_actions(action_id=render.ACTION_STATUS, value=tracking,
                                        user=OFFICIAL))
            await h.settle()
            view = slack.calls_of("views.open")[-1]["view"]
            await h.post(*view_submission(view=view, user=OFFICIAL,
                                          values=status_values("under_review", "부서 검토 시작")))
            await h.settle()
            worker = DeliveryWorker(db=core.db, senders=core.senders, clock=clock)
            assert await worker.run_once() == 2
    assert [(a, "검토 중" in r.text, "부서 검토 시작" in r.text) for a, r in web.sent] == [
        ("addr-alice", True, True)]
    assert [(a, "Under review" in r.text) for a, r in telegram.sent] == [
        (f"addr-{FOLLOWER_CHAT}", True)]


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeSlack, FakeTelegram]]:
    async with FakeSlack() as slack, FakeTelegram() as tg:
        yield slack, tg


async def test_status_change_end_to_end_through_the_server(
    database_url: str, tmp_path: Path, fakes: tuple[FakeSlack, FakeTelegram]
) -> None:
    slack, tg = fakes
    settings = slack_settings(
        tmp_path, database_url, slack,
        telegram_token=tg.token, telegram_api_url=tg.root,
        telegram_webhook_url="https://gongnon.example/telegram/webhook",
        telegram_webhook_secret="e2e-Secret_token-42",  # noqa: S106 telegram_chat_rate_per_second=50.0,
        run_workers=True,
    )
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    try:
        core = client.app[CORE]
        chat = core.webchat
        _token, session = await chat.open_session(locale="ko")
        author = await core.execute(c.EnsureIdentity(channel="web", external_id=session.id,
                                                     address=session.address, locale="ko"))
        follower = await core.execute(c.EnsureIdentity(
            channel="telegram", external_id=str(FOLLOWER_CHAT), address=str(FOLLOWER_CHAT),
            locale="en"))
        tracking = await propose(core, author, title="<!channel> 버스 정류장 그늘막")
        await core.execute(c.FollowProposal(person_id=follower, tracking=tracking))
        [card] = await slack.wait_for("chat.postMessage", 1)
        assert card["channel"] == TRIAGE and "<!channel>" not in json.dumps(card)

        async def post(body: tuple[str, str]) -> int:
            response = await client.post("/slack/events", data=body[0].encode(),
                                         headers={"Content-Type": body[1], **sign(body[0])})
            return response.status

        assert await post(block_actions(action_id=render.ACTION_STATUS, value=tracking,
                                        user=OFFICIAL)) == 200
        [opened] = await slack.wait_for("views.open", 1)
        assert await post(view_submission(view=opened["view"], user=OFFICIAL,
                                          values=status_values("under_review", "부서 검토"))) == 200

        async def author_heard() -> bool:
            items = await chat.items_after(session.address, 0)
            return any("검토 중" in item.reply.text for item in items)

        async def follower_heard() -> bool:
            return any("Under review" in m.text for m in tg.chat(FOLLOWER_CHAT))

        await eventually(author_heard)
        await eventually(follower_heard)
        [edit] = await slack.wait_for("chat.update", 1)
        assert "검토 중" in json.dumps(edit["blocks"], ensure_ascii=False)
        view = await core.views.proposal(tracking)
        assert view is not None and view.status is ProposalStatus.UNDER_REVIEW
        await slack.wait_for("chat.postEphemeral", 1)
    finally:
        await client.close()
