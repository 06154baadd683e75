"""Deliberation in Slack: the support threshold alerts officials with the discussion's summary,
digests summarise the busiest discussions; Block Kit checked by slack_sdk's models, citizen text
escaped, pseudonyms only (no name, channel or phone number)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bots.slack import render
from core import commands as c
from core.deliberation import commands as dc
from core.deliberation.model import DiscussionSummary
from core.domain.model import ProposalStatus
from core.officials.model import DiscussionAlert
from tests.channels.slack_blockkit import assert_message
from tests.channels.slack_harness import (
    DIGEST,
    TRIAGE,
    Harness,
    citizen,
    harness,
    propose,
    slack_core,
    slack_settings,
)
from tests.fakes.slack_api import FakeSlack
from tests.support import ManualClock

KST_NOV_25 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
KST_NOV_26_9AM = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
PHONE = "010-1234-5678"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(KST_NOV_25)


@pytest.fixture
async def h(database_url: str, tmp_path: Path, clock: ManualClock,
            slack: FakeSlack) -> AsyncIterator[Harness]:
    settings = slack_settings(tmp_path, database_url, slack, support_threshold=3,
                              participation_level="guest")
    async with slack_core(settings, clock) as core, harness(core, slack) as hh:
        yield hh


async def discussion(h: Harness) -> str:
    """A proposal with opinions for and against (one hostile, one with a phone number)."""
    author = await citizen(h.core, "alice")
    tracking = await propose(h.core, author)
    writers = [await citizen(h.core, f"w{i}") for i in range(4)]
    bodies = [("for", "그늘막이 꼭 필요합니다 <!channel>"), ("for", f"연락 주세요 {PHONE}"),
              ("against", "예산을 먼저 봐야 합니다 <http://evil.example|클릭>"),
              ("other", "나무를 심으면 어떨까요")]
    ids = []
    for pid, (stance, body) in zip(writers, bodies, strict=True):
        ids.append(await h.core.execute(c.AddFeedback(tracking=tracking, body=body,
                                                      person_id=pid, stance=stance)))
    await h.core.execute(dc.SupportOpinion(opinion_id=ids[0], person_id=writers[1]))
    await h.core.execute(dc.SupportOpinion(opinion_id=ids[0], person_id=writers[2]))
    await h.core.execute(dc.SupportOpinion(opinion_id=ids[2], person_id=writers[3]))
    return tracking


def posts_to(slack: FakeSlack, channel: str) -> list[dict[str, Any]]:
    return [call for call in slack.calls_of("chat.postMessage") if call["channel"] == channel]


def no_personal_data(text: str) -> None:
    for leak in ("alice", "addr-", "w0", "w1", "web", PHONE, "<!channel>", "<http"):
        assert leak not in text, leak


async def test_threshold_moves_to_review_and_alerts_slack_with_summary(h: Harness) -> None:
    tracking = await discussion(h)
    await h.settle()
    before = len(posts_to(h.slack, TRIAGE))
    for i in range(3):
        await h.core.execute(c.SupportProposal(tracking=tracking,
                                               person_id=await citizen(h.core, f"s{i}")))
    view = await h.core.views.proposal(tracking)
    assert view is not None and view.status is ProposalStatus.UNDER_REVIEW
    await h.settle()
    alerts = [p for p in posts_to(h.slack, TRIAGE)[before:] if "공감 기준 도달" in p["text"]]
    assert len(alerts) == 1
    [alert] = alerts
    blocks = alert["blocks"] if isinstance(alert["blocks"], list) else json.loads(alert["blocks"])
    assert_message({"text": alert["text"], "blocks": blocks})
    text = json.dumps(blocks, ensure_ascii=False)
    assert "공감 3명 (기준 3명)" in text and "검토 중" in text
    assert "의견 4건 (찬성 2 · 반대 1 · 기타 1)" in text
    # the most supported for comes first; citizen text escaped; pseudonyms only
    assert text.index("그늘막이 꼭 필요합니다") < text.index("연락 주세요")
    assert "&lt;!channel&gt;" in text and "&lt;http://evil.example|클릭&gt;" in text
    assert "시민 " in text
    no_personal_data(text)
    # more supports: no second alert
    await h.core.execute(c.SupportProposal(tracking=tracking,
                                           person_id=await citizen(h.core, "s9")))
    await h.settle()
    assert len([p for p in posts_to(h.slack, TRIAGE) if "공감 기준 도달" in p["text"]]) == 1


async def test_digest_summarises_active_discussions(h: Harness, clock: ManualClock) -> None:
    tracking = await discussion(h)
    clock.current = KST_NOV_26_9AM
    assert await h.officials.enqueue_digest("daily")
    await h.settle()
    [post] = posts_to(h.slack, DIGEST)
    blocks = post["blocks"] if isinstance(post["blocks"], list) else json.loads(post["blocks"])
    assert_message({"text": post["text"], "blocks": blocks})
    text = json.dumps(blocks, ensure_ascii=False)
    assert "토론 활발" in text and tracking in text
    assert "의견 4건 (찬성 2 · 반대 1 · 기타 1)" in text
    assert "찬성 최다 공감(2)" in text and "반대 최다 공감(1)" in text
    no_personal_data(text)


def test_alert_message_in_english_and_with_no_opinions() -> None:
    summary = DiscussionSummary(tracking="P-2026-000001", title="Shade <b>", opinions=0,
                                replies=0, by_stance={}, top_for=(), top_against=(),
                                support_count=500)
    message = render.discussion_alert_message(
        DiscussionAlert(summary=summary, support_count=500, threshold=500), "en")
    assert_message(message)
    text = json.dumps(message, ensure_ascii=False)
    assert "Support threshold reached: P-2026-000001" in text and "Shade &lt;b&gt;" in text
    assert "• none" in text
