"""Digests: content, chart upload (files_upload_v2 on the fake), per-category routes, once per
period across two schedulers on one database, resuming after a failure, the CLI, the charts."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bots.slack import render
from bots.slack.cli import _cmd_send, send_digest
from bots.slack.routes import SlackMount
from core import charts
from core import commands as c
from core.adapters.orm import Proposal
from core.bootstrap import Core
from core.domain.model import ProposalStatus
from core.officials.digest import build_digest, window
from tests.channels.slack_harness import (
    DIGEST,
    Harness,
    citizen,
    harness,
    propose,
    slack_core,
    slack_settings,
)
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.support import ManualClock

KST_NOV_1 = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)  # 10:00 in Seoul
KST_NOV_25 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
KST_NOV_26_9AM = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(KST_NOV_1)


@pytest.fixture
async def h(database_url: str, tmp_path: Path, clock: ManualClock,
            slack: FakeSlack) -> AsyncIterator[Harness]:
    settings = slack_settings(tmp_path, database_url, slack,
                              slack_digest_routes="transport=CTRANSPORT,culture=CCULTURE")
    async with slack_core(settings, clock) as core, harness(core, slack) as hh:
        yield hh


async def activity(core: Core, clock: ManualClock) -> dict[str, str]:
    """An old proposal nobody touched, then a day with two new ones, a support, a change."""
    alice = await citizen(core, "alice")
    old = await propose(core, alice, title="오래된 제안 <!channel>", category="welfare")
    clock.current = KST_NOV_25
    bus = await propose(core, alice, title="버스 정류장 그늘막", category="transport")
    school = await propose(core, alice, title="학교 급식 개선", category="education")
    fan = await citizen(core, "bob")
    await core.execute(c.SupportProposal(person_id=fan, tracking=bus))
    await core.execute(c.ChangeStatus(tracking=bus, status=ProposalStatus.UNDER_REVIEW,
                                      reason="검토", actor="slack:U1", source="slack"))
    clock.current = KST_NOV_26_9AM
    return {"old": old, "bus": bus, "school": school}


def posts_to(slack: FakeSlack, channel: str) -> list[dict[str, Any]]:
    return [p for p in slack.calls_of("chat.postMessage") if p["channel"] == channel]


async def test_daily_digest_content_chart_and_routes(h: Harness, clock: ManualClock) -> None:
    numbers = await activity(h.core, clock)
    await h.settle()  # the triage cards
    assert set(h.core.scheduler.jobs()) >= {"officials:digest:daily", "officials:digest:weekly"}
    await h.officials.run_digest_job("daily")
    await h.settle()
    [digest] = posts_to(h.slack, DIGEST)
    text = json.dumps(digest, ensure_ascii=False)
    assert digest["text"] == "일간 요약 2026-11-25"
    assert "신규 2건 · 상태 변경 1건 · 답변 지연 1건" in text
    assert numbers["bus"] in text and numbers["school"] in text and numbers["old"] in text
    assert "+1 (누적 1)" in text and "접수 → 검토 중" in text and "24일째 변동 없음" in text
    assert "<!channel>" not in text
    [url] = h.slack.calls_of("files.getUploadURLExternal")
    [upload] = h.slack.calls_of("upload")
    [done] = h.slack.calls_of("files.completeUploadExternal")
    assert url["filename"] == "gongnon-daily-2026-11-25.png"
    assert upload["size"] == int(url["length"]) > 1000
    assert done["channel_id"] == DIGEST and done["files"][0]["title"] == "일간 요약 2026-11-25"
    png = h.slack.uploads[done["files"][0]["id"]]
    assert png.startswith(b"\x89PNG")
    [routed] = posts_to(h.slack, "CTRANSPORT")
    routed_text = json.dumps(routed, ensure_ascii=False)
    assert numbers["bus"] in routed_text and numbers["school"] not in routed_text
    assert posts_to(h.slack, "CCULTURE") == []  # nothing happened in culture: no message


async def test_digest_is_sent_once_from_two_schedulers(
    database_url: str, tmp_path: Path, clock: ManualClock, slack: FakeSlack
) -> None:
    settings = slack_settings(tmp_path, database_url, slack)
    async with slack_core(settings, clock) as one, slack_core(settings, clock) as two:
        mounts = []
        for core in (one, two):
            mount = SlackMount(settings)
            await mount.start(web.Application(), core)
            mounts.append(mount)
        try:
            await activity(one, clock)
            jobs = [core.officials.run_digest_job for core in (one, two)]
            for _ in range(3):  # both processes fire, several times
                await asyncio.gather(*(job(p) for job in jobs for p in ("daily", "weekly")))
            await asyncio.gather(*(core.officials.worker.run_until_idle()  # type: ignore[union-attr]
                                   for core in (one, two)))
        finally:
            for mount in mounts:
                await mount.stop(web.Application())
    digests = posts_to(slack, DIGEST)
    assert sorted(p["text"] for p in digests) == [
        "일간 요약 2026-11-25", "주간 요약 2026-11-16 ~ 2026-11-22"]
    assert len(slack.calls_of("files.completeUploadExternal")) == 1  # the week had no new ones


async def test_long_digest_splits_and_resumes_after_a_failure(
    h: Harness, clock: ManualClock
) -> None:
    clock.current = KST_NOV_25
    alice = await citizen(h.core, "alice")
    async with h.core.db.write() as session:  # many rows at once: test data, not the flow
        session.add_all(
            Proposal(tracking=f"P-2026-{i:06d}", title=f"제안 {i:02d} " + "가나다라마바사" * 12,
                     body="본문입니다 " * 3, category="transport", author_id=alice,
                     created_at=clock.now(), updated_at=clock.now())
            for i in range(1, 96)
        )
    clock.current = KST_NOV_26_9AM
    start, end = window("daily", clock.now(), h.core.settings.tz)
    data = await build_digest(h.core.db, period="daily", start=start, end=end,
                              tz=h.core.settings.tz, overdue_days=14)
    parts = render.digest_messages(data, "ko")
    assert data.new_total == 95 and len(parts) >= 2
    h.slack.fail("chat.postMessage", status=500, retry_after=None, error="internal_error",
                 after=1)
    assert await h.officials.enqueue_digest("daily")
    assert not await h.officials.enqueue_digest("daily")
    await h.settle()
    # the first part went out, then Slack failed once; nothing is resent, the rest follows
    clock.advance(minutes=10)
    await h.settle()
    sent = posts_to(h.slack, DIGEST)
    assert len(sent) == len(parts) + 1  # one refused attempt
    texts = [p["text"] for p in sent]
    assert texts.count(parts[0]["text"]) == 1 and texts.count(parts[1]["text"]) == 2
    for message in sent:
        assert len(message["blocks"]) <= 50
    assert len(h.slack.calls_of("files.completeUploadExternal")) == 1


async def test_cli_sends_once_unless_forced(h: Harness, clock: ManualClock) -> None:
    settings = h.core.settings
    assert await send_digest(settings, period="weekly") == (0, "weekly digest sent")
    code, message = await send_digest(settings, period="weekly")
    assert code == 0 and "already sent" in message
    assert await send_digest(settings, period="weekly", force=True) == (0, "weekly digest sent")
    assert len(posts_to(h.slack, DIGEST)) == 2


def test_cli_refuses_without_slack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bots.cli import _parser

    args = _parser().parse_args(["digest", "send", "--period", "daily"])
    assert args.handler is _cmd_send and args.period == "daily"
    assert _cmd_send(make_settings(tmp_path), argparse.Namespace(period="daily", force=False)) == 2
    assert "GONGNON_SLACK_DIGEST_CHANNEL" in capsys.readouterr().out


def test_bar_chart_png_with_korean_labels() -> None:
    from PIL import Image

    assert charts.font_path().name == "NanumGothic.ttf"
    png = charts.bar_chart("분야별 신규 제안", ["교통·주택", "복지·보건"], [5, 2.5],
                           horizontal=True)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width == 700
    votes = charts.bar_chart("투표 결과", ["찬성", "반대", "기권"], [10, 3, 1])
    vertical = Image.open(io.BytesIO(votes))
    assert vertical.height == 400
    assert charts.bar_chart("빈 차트", [], []).startswith(b"\x89PNG")
    with pytest.raises(ValueError):
        charts.bar_chart("x", ["a"], [1, 2])
