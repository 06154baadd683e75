"""Block Kit builders: golden JSON, escaping of citizen text, Slack's size limits."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bots.slack import render
from bots.slack.slash import parse_slash, parse_status
from core.domain.model import (
    FeedbackKind,
    FeedbackView,
    ProposalStatus,
    ProposalSummary,
    ProposalView,
    StatusChangeView,
)
from core.officials.model import Alert, Digest, MovedEntry, Outcome, OverdueEntry, SupportedEntry

GOLDEN = Path(__file__).with_name("slack_golden")
TZ = ZoneInfo("Asia/Seoul")
AT = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
EVIL = "<!channel> 긴급 <@U123> <!subteam^S1> <http://evil.example|여기> & <!here> <!everyone>"


def golden(name: str, value: object) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    if os.environ.get("GONGNON_UPDATE_GOLDEN") == "1" or not path.exists():
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


BODY = "여름에 버스를 기다리는 시민들이 햇볕에 너무 오래 노출됩니다."


def proposal(*, title: str = "버스 정류장 그늘막 설치", body: str = BODY,
             status: ProposalStatus = ProposalStatus.RECEIVED,
             history: tuple[StatusChangeView, ...] = (), assigned_to: str | None = None,
             feedback: tuple[FeedbackView, ...] = ()) -> ProposalView:
    return ProposalView(
        id=1, tracking="P-2026-000001", title=title, body=body, category="transport",
        region="seoul", status=status, author_id=1, created_at=AT, updated_at=AT,
        support_count=3, follower_count=4, assigned_to=assigned_to, history=history,
        feedback=feedback,
    )


def all_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def assert_no_live_markup(value: object) -> None:
    text = all_text(value)
    for live in ("<!channel>", "<!here>", "<!everyone>", "<@U123>", "<!subteam", "<http"):
        assert live not in text


def test_triage_card_golden() -> None:
    view = proposal(
        status=ProposalStatus.UNDER_REVIEW,
        assigned_to="국토교통부 대중교통과",
        history=(
            StatusChangeView(None, ProposalStatus.RECEIVED, "", None, "person:1", "web", AT),
            StatusChangeView(ProposalStatus.RECEIVED, ProposalStatus.UNDER_REVIEW, "담당 부서 검토",
                             date(2026, 12, 15), "slack:U1", "slack", AT),
        ),
        feedback=(FeedbackView(1, FeedbackKind.COMMENT, "좋아요", AT),),
    )
    message = render.triage_message(view, "ko", TZ)
    golden("triage_card_ko", message)
    golden("triage_card_en", render.triage_message(view, "en", TZ))
    actions = message["blocks"][-1]
    assert [e["action_id"] for e in actions["elements"]] == [
        render.ACTION_STATUS, render.ACTION_ASSIGN, render.ACTION_ANSWER, render.ACTION_THREAD
    ]
    assert all(e["value"] == "P-2026-000001" for e in actions["elements"])


def test_citizen_text_never_pings_or_links() -> None:
    view = proposal(title=EVIL[:100], body=EVIL * 3,
                    feedback=(FeedbackView(7, FeedbackKind.COMMENT, EVIL, AT),))
    messages = [
        render.triage_message(view, "ko", TZ),
        render.detail_message(view, "ko", TZ),
        render.thread_reply(view, view.feedback[0], "ko", TZ),
        render.status_modal(view, "ko", {"channel": "C1"}),
        render.search_message(EVIL, [view.summary], "ko"),
        render.alert_message(Alert(kind="create", tracking=None, attempts=3, error=EVIL), "ko"),
    ]
    for message in messages:
        assert_no_live_markup(message)
    card = messages[0]
    assert "&lt;!channel&gt;" in card["text"]
    assert "&lt;http://evil.example|여기&gt; &amp;" in card["blocks"][2]["text"]["text"]


def test_status_modal_offers_only_allowed_transitions() -> None:
    modal = render.status_modal(proposal(), "ko", {"channel": "CTRIAGE", "locale": "ko"})
    golden("status_modal_ko", modal)
    options = modal["blocks"][1]["element"]["options"]
    assert [o["value"] for o in options] == ["under_review", "forwarded", "not_accepted"]
    assert json.loads(modal["private_metadata"])["tracking"] == "P-2026-000001"
    assert len(modal["title"]["text"]) <= 24
    accepted = render.status_modal(proposal(status=ProposalStatus.ACCEPTED), "en", {})
    assert [o["value"] for o in accepted["blocks"][1]["element"]["options"]] == [
        "under_review", "implemented"
    ]
    assert render.official_statuses(ProposalStatus.IMPLEMENTED) == []


def test_assign_and_answer_modals() -> None:
    golden("assign_modal_ko", render.assign_modal(proposal(assigned_to="복지부"), "ko", {}))
    golden("answer_modal_en", render.answer_modal(proposal(), "en", {}))


def _digest(n: int) -> Digest:
    items = tuple(
        ProposalSummary(f"P-2026-{i:06d}", f"제안 {i} " + "가" * 70, "transport",
                        ProposalStatus.RECEIVED, AT, i)
        for i in range(1, n + 1)
    )
    return Digest(
        period="daily", start=date(2026, 11, 25), end=date(2026, 11, 26), category=None,
        new=items, new_total=n + 5,
        supported=tuple(SupportedEntry(proposal=p, gained=2) for p in items[:5]),
        moved=tuple(MovedEntry(tracking=p.tracking, title=p.title, category=p.category,
                               from_status=ProposalStatus.RECEIVED,
                               to_status=ProposalStatus.UNDER_REVIEW, at=AT) for p in items),
        moved_total=n,
        overdue=tuple(OverdueEntry(proposal=p, idle_days=20) for p in items),
        overdue_total=n, overdue_days=14, by_category=(("transport", n),),
    )


def test_small_digest_golden() -> None:
    messages = render.digest_messages(_digest(2), "ko")
    assert len(messages) == 1
    golden("digest_daily_ko", messages)


def test_long_digest_is_split_under_slack_limits() -> None:
    messages = render.digest_messages(_digest(100), "ko")
    assert len(messages) > 1
    for message in messages:
        assert len(message["blocks"]) <= 50
        assert len(all_text(message["blocks"])) < 12_000
        for block in message["blocks"]:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= 3000
    joined = all_text(messages)
    assert all(f"P-2026-{i:06d}" in joined for i in range(1, 101))
    assert "외 5건" in joined  # 105 new in all, 100 listed
    assert messages[1]["text"].endswith(f"(2/{len(messages)})")


def test_empty_digest_says_quiet() -> None:
    empty = Digest(period="weekly", start=date(2026, 11, 16), end=date(2026, 11, 23),
                   category="welfare", new=(), new_total=0, supported=(), moved=(),
                   moved_total=0, overdue=(), overdue_total=0, overdue_days=14)
    [message] = render.digest_messages(empty, "en")
    assert message["text"] == "Weekly digest 2026-11-16 to 2026-11-22 · Welfare & health"
    assert "No activity" in all_text(message)


def test_outcome_messages_use_labels_and_never_show_keys() -> None:
    done = render.outcome_message(
        Outcome(ok=True, key="slack.done.status",
                params={"tracking": "P-2026-000001", "status": "under_review"}), "ko")
    assert done["text"].startswith("✅ P-2026-000001 상태 변경: 검토 중")
    bad = render.outcome_message(
        Outcome(ok=False, key="slack.error.invalid_transition",
                params={"current": "received", "new": "implemented"}), "en")
    assert bad["text"] == "⚠️ Not possible: Received → Implemented"
    unknown = render.outcome_message(Outcome(ok=False, key="slack.error.nope"), "ko")
    assert "slack." not in unknown["text"]


def test_slash_parsing_in_both_languages() -> None:
    assert parse_slash("").verb == "help"
    assert parse_slash("검색 버스 정류장").words == "버스 정류장"
    assert parse_slash("show p2026-7").tracking == "P-2026-000007"
    req = parse_slash("상태 P-2026-1 검토 중 담당 부서에서 검토합니다")
    assert (req.tracking, req.status, req.reason) == (
        "P-2026-000001", ProposalStatus.UNDER_REVIEW, "담당 부서에서 검토합니다")
    req = parse_slash("status P-2026-000002 partly_accepted budget")
    assert req.status is ProposalStatus.PARTLY_ACCEPTED and req.reason == "budget"
    assert parse_slash("status P-2026-000002 accepted").problem == "slack.slash.usage_status"
    assert parse_slash("status P-2026-000002 maybe later").problem == "slack.slash.bad_status"
    assert parse_slash("frobnicate").problem == "slack.slash.unknown"
    assert parse_status("Not accepted") is ProposalStatus.NOT_ACCEPTED
    assert parse_status("불채택") is ProposalStatus.NOT_ACCEPTED
    assert parse_status("nonsense") is None


@pytest.mark.parametrize("locale", ["ko", "en"])
def test_help_and_stats(locale: str) -> None:
    assert "/gongnon" in render.help_message(locale)["text"]
    stats = render.stats_message(
        {"total": 3, "by_status": {"received": 2, "accepted": 1}, "supports": 9}, locale)
    assert "3" in stats["text"] and len(stats["blocks"]) == 1
