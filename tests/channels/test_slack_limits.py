"""Every Slack message at its maximum sizes, full of hostile characters, validates with
slack_sdk's Block Kit models (``Block.parse(...).validate_json()``, ``View``) and Slack's
documented limits (https://api.slack.com/reference/block-kit/blocks): escape first, cut after.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bots.slack import render
from bots.slack.campaigns import campaign_modal
from core.domain.model import (
    FeedbackKind,
    FeedbackView,
    ProposalStatus,
    ProposalSummary,
    ProposalView,
    StatusChangeView,
)
from core.officials.model import Alert, Digest, MovedEntry, Outcome, OverdueEntry, SupportedEntry

TZ = ZoneInfo("Asia/Seoul")
AT = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
HOSTILE = "<&>" * 2000 + "<!channel>&amp;<@U1>"  # 6,000+ characters that triple when escaped
SLACK_BLOCKS_MAX = 50
MESSAGE_TEXT_MAX = 40_000
FIELD_TEXT_MAX = 2000


def _view(status: ProposalStatus = ProposalStatus.UNDER_REVIEW) -> ProposalView:
    history = tuple(
        StatusChangeView(from_status=ProposalStatus.RECEIVED, to_status=status, reason=HOSTILE,
                         expected_date=date(2027, 1, 1), actor=HOSTILE, source="slack",
                         at=AT + timedelta(minutes=i))
        for i in range(30)
    )
    feedback = tuple(
        FeedbackView(id=i, kind=kind, body=HOSTILE, at=AT, by_author=i % 2 == 0)
        for i, kind in enumerate([FeedbackKind.COMMENT, FeedbackKind.OFFICIAL_ANSWER] * 5)
    )
    return ProposalView(
        id=1, tracking="P-2026-999999", title=HOSTILE, body=HOSTILE, category="transport",
        region="seoul", status=status, author_id=1, created_at=AT, updated_at=AT,
        support_count=10**9, follower_count=10**9, assigned_to=HOSTILE[:200],
        history=history, feedback=feedback,
    )


def _summary(i: int) -> ProposalSummary:
    return ProposalSummary(tracking=f"P-2026-{i:06d}", title=HOSTILE, category="transport",
                           status=ProposalStatus.RECEIVED, created_at=AT, support_count=10**9)


def _digest() -> Digest:
    many = tuple(_summary(i) for i in range(200))
    return Digest(
        period="weekly", start=date(2026, 11, 19), end=date(2026, 11, 26), category="transport",
        new=many, new_total=10**6,
        supported=tuple(SupportedEntry(proposal=p, gained=10**6) for p in many),
        moved=tuple(MovedEntry(tracking=p.tracking, title=HOSTILE, category="transport",
                               from_status=ProposalStatus.RECEIVED,
                               to_status=ProposalStatus.ACCEPTED, at=AT) for p in many),
        moved_total=10**6,
        overdue=tuple(OverdueEntry(proposal=p, idle_days=999) for p in many),
        overdue_total=10**6, overdue_days=14,
    )


def messages(locale: str) -> Iterator[tuple[str, dict[str, Any]]]:
    view = _view()
    yield "triage", render.triage_message(view, locale, TZ)
    yield "detail", render.detail_message(view, locale, TZ)
    for feedback in view.feedback[:2]:
        yield f"reply-{feedback.kind.value}", render.thread_reply(view, feedback, locale, TZ)
    yield "alert", render.alert_message(
        Alert(kind=HOSTILE, tracking=HOSTILE, attempts=10**6, error=HOSTILE), locale)
    yield "outcome", render.outcome_message(
        Outcome(ok=False, key="slack.outcome.not_allowed",
                params={"tracking": HOSTILE, "status": "accepted", "current": "received",
                        "new": HOSTILE}), locale)
    yield "help", render.help_message(locale)
    yield "search", render.search_message(HOSTILE, [_summary(i) for i in range(200)], locale)
    yield "search-none", render.search_message(HOSTILE, [], locale)
    yield "stats", render.stats_message(
        {"total": 10**9, "supports": 10**9,
         "by_status": {s.value: 10**9 for s in ProposalStatus}}, locale)
    for i, part in enumerate(render.digest_messages(_digest(), locale)):
        yield f"digest-{i}", part


def modals(locale: str) -> Iterator[tuple[str, dict[str, Any]]]:
    view = _view()
    origin = {"channel": "C" * 20, "ts": "1" * 20}
    yield "status", render.status_modal(view, locale, origin)
    yield "assign", render.assign_modal(view, locale, origin)
    yield "answer", render.answer_modal(view, locale, origin)
    yield "campaign", campaign_modal(locale)


def _check_documented_limits(name: str, blocks: list[dict[str, Any]]) -> None:
    assert len(blocks) <= SLACK_BLOCKS_MAX, name
    for block in blocks:
        for field in block.get("fields") or ():
            assert len(field["text"]) <= FIELD_TEXT_MAX, name
        if block["type"] == "context":
            assert len(block["elements"]) <= 10, name
            for element in block["elements"]:
                assert len(element.get("text", "")) <= FIELD_TEXT_MAX, name


def _no_broken_entities(text: str) -> None:
    """A cut never leaves half an entity (``&am…``, ``&l…``) behind."""
    assert not re.search(r"&(?:a|am|amp|l|lt|g|gt)(?![a-z;])", text), text[-12:]


@pytest.mark.parametrize("locale", ["ko", "en"])
def test_every_message_validates_at_maximum_size(locale: str) -> None:
    seen = 0
    for name, message in messages(locale):
        assert 0 < len(message["text"]) <= MESSAGE_TEXT_MAX, name
        blocks = message.get("blocks") or []
        _check_documented_limits(name, blocks)
        for block in blocks:
            Block.parse(block).validate_json()  # type: ignore[union-attr]
        rendered = json.dumps(message, ensure_ascii=False)
        for live in ("<!channel>", "<@U1>", "<!here>"):
            assert live not in rendered, name
        for block in blocks:
            text = (block.get("text") or {}).get("text") or ""
            _no_broken_entities(text)
        seen += 1
    assert seen >= 12


@pytest.mark.parametrize("locale", ["ko", "en"])
def test_every_modal_validates(locale: str) -> None:
    for name, modal in modals(locale):
        View(**modal).validate_json()
        _check_documented_limits(name, modal["blocks"])
        for block in modal["blocks"]:
            Block.parse(block).validate_json()  # type: ignore[union-attr]


def test_escape_first_cut_after() -> None:
    assert render.fit("<" * 10, 8) == "&lt;…"  # "&lt;&lt;…" would be 9 > 8
    assert len(render.fit("&" * 3000, render.SECTION_MAX)) <= render.SECTION_MAX
    _no_broken_entities(render.fit("a&" * 100, 17))
    assert render.fit("가나다", 10) == "가나다"
