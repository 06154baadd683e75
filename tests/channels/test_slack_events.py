"""Signed Slack requests through the real route and Bolt: triage buttons, modals, slash
commands, events; signatures, replays, retries, authorization, escaping, Slack outages."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bots.slack import render
from core import commands as c
from core.adapters.orm_delivery import Delivery
from core.commands import Command
from core.domain.errors import NotAllowed
from core.domain.model import ProposalStatus
from core.events import SyncDeadLettered
from tests.channels.slack_harness import (
    OFFICIAL,
    STRANGER,
    TRIAGE,
    Harness,
    citizen,
    harness,
    propose,
    slack_core,
    slack_settings,
)
from tests.fakes.slack_api import (
    FakeSlack,
    block_actions,
    event_callback,
    slash_command,
    view_submission,
)
from tests.support import ManualClock

EVIL_TITLE = "<!channel> 급함 <http://evil.example|클릭>"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def h(database_url: str, tmp_path: Path, clock: ManualClock,
            slack: FakeSlack) -> AsyncIterator[Harness]:
    settings = slack_settings(tmp_path, database_url, slack)
    async with slack_core(settings, clock) as core, harness(core, slack) as hh:
        yield hh


async def new_proposal(h: Harness, **kw: Any) -> str:
    author = await citizen(h.core, "alice")
    tracking = await propose(h.core, author, **kw)
    await h.settle()
    return tracking


def status_values(status: str | None, reason: str, when: str | None = None) -> dict[str, Any]:
    return {
        "status": {"value": {"type": "static_select",
                             "selected_option": {"value": status} if status else None}},
        "reason": {"value": {"type": "plain_text_input", "value": reason}},
        "expected_date": {"value": {"type": "datepicker", "selected_date": when}},
    }


async def open_modal(
    h: Harness, action: str, tracking: str, user: str = OFFICIAL
) -> dict[str, Any]:
    before = len(h.slack.calls_of("views.open"))
    response = await h.post(*block_actions(action_id=action, value=tracking, user=user))
    assert response.status == 200
    await h.settle()
    opened = h.slack.calls_of("views.open")
    assert len(opened) == before + 1
    return opened[-1]["view"]  # type: ignore[no-any-return]


def ephemerals(h: Harness) -> list[str]:
    return [str(call["text"]) for call in h.slack.calls_of("chat.postEphemeral")]


# --- triage cards --------------------------------------------------------------------
async def test_new_proposal_reaches_triage_once_and_never_pings(h: Harness) -> None:
    tracking = await new_proposal(h, title=EVIL_TITLE)
    [post] = h.slack.calls_of("chat.postMessage")
    assert post["channel"] == TRIAGE
    text = json.dumps(post, ensure_ascii=False)
    assert "<!channel>" not in text and "<http" not in text
    assert "&lt;!channel&gt;" in text and tracking in text
    row = await h.post_row(1)
    assert row is not None and row.ts is not None
    await h.settle()  # nothing more to do: posted once
    assert len(h.slack.calls_of("chat.postMessage")) == 1


async def test_triage_post_survives_a_slack_outage(h: Harness, clock: ManualClock) -> None:
    h.slack.fail("chat.postMessage", status=503, retry_after=None, error="service_unavailable",
                 times=3)
    await new_proposal(h)
    [row] = [r for r in await h.queue() if r.kind == "post"]
    assert row.status == "pending" and row.attempts == 1 and "503" in (row.last_error or "")
    for _ in range(3):
        clock.advance(minutes=15)
        await h.settle()
    assert [r.status for r in await h.queue() if r.kind == "post"] == ["done"]
    assert len(h.slack.calls_of("chat.postMessage")) == 4  # 3 refused, 1 posted


async def test_rate_limits_wait_for_retry_after(h: Harness, clock: ManualClock) -> None:
    h.slack.fail("chat.postMessage", status=429, retry_after=0, times=1)
    await new_proposal(h)  # the client's retry handler waits Retry-After and tries again
    assert len(h.slack.calls_of("chat.postMessage")) == 2
    assert [r.status for r in await h.queue()] == ["done"]
    h.slack.fail("chat.postMessage", status=429, retry_after=0, times=3)
    author = await citizen(h.core, "bob")
    await propose(h.core, author, title="두 번째 제안입니다")
    await h.settle()
    row = (await h.queue())[-1]
    assert row.status == "pending" and row.attempts == 0  # pacing is not a failure
    clock.advance(seconds=2)
    await h.settle()
    assert (await h.queue())[-1].status == "done"


# --- the status change flow ------------------------------------------------------------
async def test_change_status_button_modal_updates_card_and_notifies(h: Harness) -> None:
    tracking = await new_proposal(h)
    view = await open_modal(h, render.ACTION_STATUS, tracking)
    response = await h.post(*view_submission(
        view=view, user=OFFICIAL,
        values=status_values("under_review", "담당 부서에서 검토합니다", "2026-12-15")))
    assert response.status == 200 and await response.text() == ""
    await h.settle()
    proposal = await h.core.views.proposal(tracking)
    assert proposal is not None and proposal.status is ProposalStatus.UNDER_REVIEW
    assert proposal.history[-1].actor == f"slack:{OFFICIAL}"
    assert str(proposal.history[-1].expected_date) == "2026-12-15"
    [edit] = h.slack.calls_of("chat.update")
    assert edit["channel"] == TRIAGE and "검토 중" in json.dumps(edit["blocks"], ensure_ascii=False)
    assert ephemerals(h)[-1].startswith("✅ " + tracking)
    async with h.core.db.read() as s:
        deliveries = (await s.execute(select(Delivery))).scalars().all()
    assert [(d.channel, d.address) for d in deliveries] == [("web", "addr-alice")]
    [audit] = await h.audit()
    assert (audit.actor, audit.action, audit.tracking, audit.outcome) == (
        f"slack:{OFFICIAL}", "change_status", tracking, "ok")
    assert audit.detail["status"] == "under_review"


async def test_modal_validation_errors_keep_it_open(h: Harness) -> None:
    tracking = await new_proposal(h)
    view = await open_modal(h, render.ACTION_STATUS, tracking)
    response = await h.post(*view_submission(
        view=view, user=OFFICIAL, values=status_values("under_review", "  ", "2020-01-01")))
    body = await response.json()
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {"reason", "expected_date"}
    await h.settle()
    proposal = await h.core.views.proposal(tracking)
    assert proposal is not None and proposal.status is ProposalStatus.RECEIVED


async def test_answer_resubmitted_is_not_doubled(h: Harness) -> None:
    tracking = await new_proposal(h)
    view = await open_modal(h, render.ACTION_ANSWER, tracking)
    body = view_submission(view=view, user=OFFICIAL,
                           values={"answer": {"value": {"type": "plain_text_input",
                                                        "value": "예산을 검토하겠습니다."}}})
    now = int(time.time())
    assert (await h.post(*body, timestamp=now)).status == 200
    assert (await h.post(*body, timestamp=now - 1)).status == 200  # a double submit
    await h.settle()
    proposal = await h.core.views.proposal(tracking)
    assert proposal is not None and len(proposal.feedback) == 1
    assert sorted(a.outcome for a in await h.audit()) == ["duplicate", "ok"]
    assert any("이미 처리된 요청" in text for text in ephemerals(h))


async def test_assign_via_modal(h: Harness) -> None:
    tracking = await new_proposal(h)
    view = await open_modal(h, render.ACTION_ASSIGN, tracking)
    await h.post(*view_submission(view=view, user=OFFICIAL, values={
        "assignee": {"value": {"type": "plain_text_input", "value": "국토교통부 <!here>"}}}))
    await h.settle()
    proposal = await h.core.views.proposal(tracking)
    assert proposal is not None and proposal.assigned_to == "국토교통부 <!here>"
    card = json.dumps(h.slack.calls_of("chat.update")[-1]["blocks"], ensure_ascii=False)
    assert "국토교통부 &lt;!here&gt;" in card and "<!here>" not in card


# --- authorization -------------------------------------------------------------------
async def test_non_official_is_refused_and_audited(h: Harness) -> None:
    tracking = await new_proposal(h)
    response = await h.post(*block_actions(action_id=render.ACTION_STATUS, value=tracking,
                                           user=STRANGER))
    assert response.status == 200
    await h.settle()
    assert h.slack.calls_of("views.open") == []
    assert "권한 없음" in ephemerals(h)[-1]
    # a forged modal submission is refused too
    view = await open_modal(h, render.ACTION_STATUS, tracking)
    await h.post(*view_submission(view=view, user=STRANGER,
                                  values=status_values("not_accepted", "싫어요")))
    await h.post(*slash_command(text=f"status {tracking} 불채택 싫어요", user=STRANGER,
                                response_url=h.slack.response_url()))
    await h.settle()
    proposal = await h.core.views.proposal(tracking)
    assert proposal is not None and proposal.status is ProposalStatus.RECEIVED
    assert "권한 없음" in h.slack.calls_of("response_url")[-1]["text"]
    refused = [(a.actor, a.action, a.outcome) for a in await h.audit()]
    assert refused == [
        (f"slack:{STRANGER}", "open_status", "refused"),
        (f"slack:{STRANGER}", "change_status", "refused"),
        (f"slack:{STRANGER}", "slash_status", "refused"),
    ]


# --- signatures, replays, retries ----------------------------------------------------
async def test_bad_signatures_and_stale_timestamps_are_refused(h: Harness) -> None:
    tracking = await new_proposal(h)
    body = slash_command(text=f"status {tracking} 검토중 확인", user=OFFICIAL,
                         response_url=h.slack.response_url())
    assert (await h.post(*body, secret="wrong-secret")).status == 401  # noqa: S106
    assert (await h.post(*body, timestamp=int(time.time()) - 400)).status == 401
    unsigned = await h.client.post("/slack/events", data=body[0].encode(),
                                   headers={"Content-Type": body[1]})
    assert unsigned.status == 401
    await h.settle()
    proposal = await h.core.views.proposal(tracking)
    assert proposal is not None and proposal.status is ProposalStatus.RECEIVED
    assert h.slack.calls_of("response_url") == [] and await h.audit() == []


async def test_replayed_request_is_refused(h: Harness) -> None:
    tracking = await new_proposal(h)
    body = slash_command(text=f"status {tracking} 검토중 확인", user=OFFICIAL,
                         response_url=h.slack.response_url())
    now = int(time.time())
    assert (await h.post(*body, timestamp=now)).status == 200
    assert (await h.post(*body, timestamp=now)).status == 401  # same signature again
    await h.settle()
    assert len(h.slack.calls_of("response_url")) == 1
    proposal = await h.core.views.proposal(tracking)
    assert proposal is not None and len(proposal.history) == 2


async def test_event_retries_do_not_double(h: Harness) -> None:
    tracking = await new_proposal(h)
    event = {"type": "app_mention", "user": OFFICIAL, "text": f"<@UBOT> {tracking} 봐 주세요",
             "ts": "1780000100.000100", "channel": TRIAGE, "event_ts": "1780000100.000100"}
    body = event_callback(event=event, event_id="Ev0001")
    now = int(time.time())
    assert (await h.post(*body, timestamp=now)).status == 200
    retry = await h.post(*body, timestamp=now + 1,
                         headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status == 200
    await h.settle()
    replies = [p for p in h.slack.calls_of("chat.postMessage") if p.get("thread_ts")]
    assert len(replies) == 1 and replies[0]["thread_ts"] == "1780000100.000100"
    assert tracking in json.dumps(replies[0]["blocks"])


async def test_url_verification_echoes_the_challenge(h: Harness) -> None:
    body = json.dumps({"token": "x", "challenge": "c-123", "type": "url_verification"})
    response = await h.post(body, "application/json")
    assert response.status == 200 and (await response.json())["challenge"] == "c-123"


# --- slash commands ------------------------------------------------------------------
async def slash(h: Harness, text: str, *, user: str = OFFICIAL, locale: str | None = None) -> str:
    form, content_type = slash_command(text=text, user=user, response_url=h.slack.response_url())
    if locale:
        form += f"&locale={locale}"
    before = len(h.slack.calls_of("response_url"))
    response = await h.post(form, content_type)
    assert response.status == 200
    await h.settle()
    answers = h.slack.calls_of("response_url")
    assert len(answers) == before + 1 and answers[-1]["response_type"] == "ephemeral"
    return json.dumps(answers[-1], ensure_ascii=False)


async def test_slash_commands(h: Harness) -> None:
    tracking = await new_proposal(h, title=EVIL_TITLE)
    assert "/gongnon search" in await slash(h, "help", user=STRANGER)
    assert "search words" in await slash(h, "help", locale="en-US")
    found = await slash(h, "search 급함")
    assert tracking in found and "<!channel>" not in found and "&lt;!channel&gt;" in found
    assert "검색 결과 없음" in await slash(h, "검색 없는단어")
    shown = await slash(h, f"show {tracking}")
    assert "처리 이력" in shown and "<http" not in shown
    assert "전체 제안 1건" in await slash(h, "stats")
    assert "상태 변경: 검토 중" in await slash(h, f"상태 {tracking} 검토 중 부서 검토 시작")
    refused = await slash(h, f"status {tracking} implemented done", locale="en")
    assert "Not possible: Under review → Implemented" in refused
    assert "알 수 없는 명령" in await slash(h, "frobnicate")
    assert "사용법" in await slash(h, "show nothing")
    assert "제안 없음" in await slash(h, "show P-2026-999999")
    proposal = await h.core.views.proposal(tracking)
    assert proposal is not None and proposal.status is ProposalStatus.UNDER_REVIEW
    actions = [(a.action, a.outcome) for a in await h.audit()]
    assert ("change_status", "ok") in actions and ("change_status", "error") in actions


# --- updates from elsewhere, the thread, alerts ---------------------------------------
async def test_changes_from_anywhere_edit_the_card(h: Harness) -> None:
    tracking = await new_proposal(h)
    await h.core.execute(c.ChangeStatus(tracking=tracking, status=ProposalStatus.ACCEPTED,
                                        reason="포럼 결정", actor="forum", source="forum",
                                        version=3))
    await h.settle()
    fan = await citizen(h.core, "bob")
    await h.core.execute(c.SupportProposal(person_id=fan, tracking=tracking))
    await h.settle()
    edits = h.slack.calls_of("chat.update")
    assert len(edits) == 2
    assert "채택" in json.dumps(edits[0]["blocks"], ensure_ascii=False)
    assert "*공감/팔로워*\\n1 / 2" in json.dumps(edits[1]["blocks"], ensure_ascii=False)


async def test_feedback_thread(h: Harness) -> None:
    tracking = await new_proposal(h)
    fan = await citizen(h.core, "bob")
    await h.core.execute(c.AddFeedback(tracking=tracking, person_id=fan, body="<!everyone> 찬성"))
    for _ in range(2):  # opening twice posts each comment once
        await h.post(*block_actions(action_id=render.ACTION_THREAD, value=tracking,
                                    user=OFFICIAL))
        await h.settle()
    await h.core.execute(c.AddFeedback(tracking=tracking, person_id=fan, body="추가 의견입니다"))
    await h.settle()
    card_ts = (await h.post_row(1)).ts  # type: ignore[union-attr]
    replies = [p for p in h.slack.calls_of("chat.postMessage") if p.get("thread_ts") == card_ts]
    assert len(replies) == 2
    assert "&lt;!everyone&gt; 찬성" in replies[0]["blocks"][0]["text"]["text"]
    assert "<!everyone>" not in json.dumps(replies)


@dataclass(frozen=True, slots=True, kw_only=True)
class _GiveUp(Command):
    tracking: str


async def test_sync_dead_letter_alerts_triage(h: Harness) -> None:
    async def give_up(cmd: _GiveUp, uow: Any) -> None:
        uow.emit(SyncDeadLettered(kind="create_proposal", tracking=cmd.tracking, attempts=10,
                                  error="forum said <!channel> 500"))

    h.core.bus.register(_GiveUp, give_up)
    await h.core.execute(_GiveUp(tracking="P-2026-000009"))
    await h.settle()
    [alert] = h.slack.calls_of("chat.postMessage")
    assert alert["channel"] == TRIAGE and "P-2026-000009" in alert["text"]
    assert "&lt;!channel&gt;" in alert["text"] and "<!channel>" not in alert["text"]


async def test_worker_runs_with_the_server(h: Harness, clock: ManualClock) -> None:
    """With workers on, a new proposal is posted without anyone draining the queue."""
    await h.core.start(workers=True)
    author = await citizen(h.core, "carol")
    await propose(h.core, author)
    [post] = await h.slack.wait_for("chat.postMessage", 1, within=5)
    assert post["channel"] == TRIAGE


async def test_no_slack_path_withdraws_a_citizens_proposal(h: Harness) -> None:
    """Withdrawing is the author's right: the slash command, a forged modal submission and a
    direct command all fail, and the refusals are audited."""
    tracking = await new_proposal(h)
    refused = await slash(h, f"status {tracking} 철회 중복이라서")
    assert "상태 변경" not in refused or "✅" not in refused
    view = await open_modal(h, render.ACTION_STATUS, tracking)
    await h.post(*view_submission(view=view, user=OFFICIAL,
                                  values=status_values("withdrawn", "작성자 요청", "")))
    await h.settle()
    with pytest.raises(NotAllowed):
        await h.core.execute(c.ChangeStatus(tracking=tracking, status=ProposalStatus.WITHDRAWN,
                                            reason="관리자 판단", actor="cli", source="cli"))
    proposal = await h.core.views.proposal(tracking)
    assert proposal is not None and proposal.status is ProposalStatus.RECEIVED
    outcomes = [(a.action, a.outcome) for a in await h.audit()]
    assert outcomes and all(o != "ok" for a, o in outcomes if a == "change_status")
