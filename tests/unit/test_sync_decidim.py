"""The Decidim adapter against a fake executing the schema rebuilt from Decidim's type files."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from graphql import parse, validate
from sqlalchemy import select

from core import commands as c
from core.adapters.forum_decidim import DOCUMENTS, DecidimForum, map_state
from core.adapters.html_text import html_to_text
from core.adapters.orm_delivery import Delivery
from core.bootstrap import bootstrap
from core.domain.model import ProposalStatus
from core.ports import ForumConflict, ForumError, ForumProposal, ForumUnavailable, VoteRefused
from tests.conftest import make_settings
from tests.fakes.decidim import FakeDecidim, schema
from tests.support import ManualClock

TOKEN = "decidim-token"


@pytest.fixture
async def decidim() -> AsyncIterator[FakeDecidim]:
    fake = FakeDecidim(token=TOKEN)
    await fake.start()
    yield fake
    assert fake.invalid == [], "a query did not validate against Decidim's schema"
    await fake.stop()


@pytest.fixture
async def adapter(decidim: FakeDecidim) -> AsyncIterator[DecidimForum]:
    forum = DecidimForum(api_url=decidim.url, token=TOKEN, component_id="29", timeout=2)
    yield forum
    await forum.close()


def proposal(tracking: str = "P-2026-000001", title: str = "그늘막") -> ForumProposal:
    return ForumProposal(
        tracking=tracking, title=title,
        body="버스 정류장에 그늘막을 설치해 주세요. 여름이 덥습니다.",
        category="transport", region=None, author_ref="gongnon:abc",
        created_at=datetime(2026, 11, 26, tzinfo=UTC),
    )


def test_every_document_validates_against_decidims_schema() -> None:
    """Each query and mutation the adapter sends, checked by graphql-core against the schema
    rebuilt field by field from Decidim's Ruby type files (tests/fakes/decidim.py)."""
    rebuilt = schema()
    assert set(DOCUMENTS) == {"CreateProposal", "RecentProposals", "VoteProposal",
                              "WithdrawProposal", "AnswerProposal", "AddComment", "OneProposal",
                              "ProposalChanges"}
    for name, document in DOCUMENTS.items():
        assert validate(rebuilt, parse(document)) == [], name
    # the old document (``$locale: String`` for a ``String!`` input field) is refused
    old = DOCUMENTS["CreateProposal"].replace("$locale: String!", "$locale: String")
    assert validate(rebuilt, parse(old)) != []


def test_decidim_html_becomes_plain_text() -> None:
    assert html_to_text("<p>채택되었습니다.</p><p>예산 &amp; 일정은<br>곧 알려 드립니다.</p>") == (
        "채택되었습니다.\n\n예산 & 일정은\n곧 알려 드립니다."
    )
    assert html_to_text("<ul><li>하나</li><li>둘</li></ul><script>x()</script>") == "• 하나\n\n• 둘"
    assert html_to_text("a &lt;b&gt; c") == "a <b> c"


async def test_create_is_found_again_instead_of_duplicated(
    adapter: DecidimForum, decidim: FakeDecidim
) -> None:
    forum_id = await adapter.create_proposal(proposal(), idempotency_key="k1")
    stored = decidim.proposals[int(forum_id)]
    assert "P-2026" not in stored["title"]  # no visible tracking marker
    assert stored["title"].startswith("그늘막 — 버스 정류장에") and len(stored["title"]) >= 15
    again = await adapter.create_proposal(proposal(), idempotency_key="k1")
    assert again == forum_id and len(decidim.proposals) == 1
    assert "CreateProposal" in decidim.operations and "RecentProposals" in decidim.operations


async def test_sign_in_with_key_and_secret_renews_before_expiry(decidim: FakeDecidim) -> None:
    decidim.token = None  # only signed-in JWTs are accepted
    now = [1_000_000.0]
    decidim.wall_offset = 0.0
    import time as _time

    decidim.wall_offset = now[0] - _time.time()
    forum = DecidimForum(api_url=decidim.url, token=None, component_id="29", timeout=2,
                         api_key="gongnon-key", api_secret="gongnon-secret",
                         now=lambda: now[0])
    try:
        await forum.create_proposal(proposal(), idempotency_key="k1")
        assert decidim.sign_ins == 1
        now[0] += 50 * 60  # 50 minutes: still valid, more than the margin left
        decidim.wall_offset = now[0] - _time.time()
        await forum.proposal_status("101")
        assert decidim.sign_ins == 1
        now[0] += 6 * 60  # 56 minutes: within five minutes of expiry: sign in again first
        decidim.wall_offset = now[0] - _time.time()
        await forum.proposal_status("101")
        assert decidim.sign_ins == 2 and decidim.expired_seen == 0
        forum.auth._expires = now[0] + 3600  # type: ignore[union-attr]  # we think it is fine
        decidim.wall_offset += 2 * 3600  # but Decidim says it expired: 401, sign in, retry
        await forum.proposal_status("101")
        assert decidim.sign_ins == 3 and decidim.expired_seen == 1
    finally:
        await forum.close()
    wrong = DecidimForum(api_url=decidim.url, token=None, component_id="29", timeout=2,
                         api_key="gongnon-key", api_secret="wrong")
    with pytest.raises(ForumError, match="sign-in refused"):
        await wrong.proposal_status("101")
    await wrong.close()


async def test_refused_vote_is_not_a_repeated_one(
    adapter: DecidimForum, decidim: FakeDecidim
) -> None:
    forum_id = await adapter.create_proposal(proposal(), idempotency_key="k1")
    assert await adapter.add_support(forum_id, author_ref="gongnon:x", idempotency_key="s1") == (
        "voted"
    )
    assert decidim.votes[int(forum_id)] == {"gongnon-api"}
    other = await adapter.create_proposal(proposal("P-2026-000002", "주차장 개방 요청"),
                                          idempotency_key="k2")
    decidim.vote_refusals.add(int(other))  # e.g. the vote limit is reached
    with pytest.raises(VoteRefused):
        await adapter.add_support(other, author_ref="gongnon:y", idempotency_key="s2")
    comment_id = await adapter.add_feedback(
        forum_id, body="좋습니다", author_ref="gongnon:x", idempotency_key="f1"
    )
    assert decidim.comments[int(forum_id)][0]["id"] == int(comment_id)
    await adapter.withdraw(forum_id, author_ref="gongnon:x", idempotency_key="w1")
    status = await adapter.proposal_status(forum_id)
    assert status.status == "withdrawn" and status.version > 0


async def test_status_change_answers_on_decidim_compare_and_set(
    adapter: DecidimForum, decidim: FakeDecidim
) -> None:
    forum_id = await adapter.create_proposal(proposal(), idempotency_key="k1")
    version = await adapter.change_status(
        forum_id, status="under_review", from_status="received", reason="검토합니다",
        expected_date=None, idempotency_key="st1",
    )
    stored = decidim.proposals[int(forum_id)]
    assert stored["state"] == "evaluating" and stored["answer"] == "검토합니다" and version > 0
    again = await adapter.change_status(  # a retry after a lost answer: already there
        forum_id, status="under_review", from_status="received", reason="검토합니다",
        expected_date=None, idempotency_key="st1",
    )
    assert again == version
    decidim.answer(int(forum_id), "rejected", "<p>불가</p>")  # an official moved it there
    with pytest.raises(ForumConflict) as conflict:
        await adapter.change_status(
            forum_id, status="accepted", from_status="under_review", reason="",
            expected_date=None, idempotency_key="st2",
        )
    assert conflict.value.status == "not_accepted"
    # no Decidim state for "forwarded": the change stays in Gongnon (version 0)
    assert await adapter.change_status(
        forum_id, status="forwarded", from_status="not_accepted", reason="",
        expected_date=None, idempotency_key="st3",
    ) == 0
    decidim.can_answer = False
    assert await adapter.change_status(
        forum_id, status="accepted", from_status="not_accepted", reason="",
        expected_date=None, idempotency_key="st4",
    ) == 0


async def test_changes_one_per_change_plain_text_and_replies(
    adapter: DecidimForum, decidim: FakeDecidim
) -> None:
    forum_id = await adapter.create_proposal(proposal(), idempotency_key="k1")
    changes, cursor = await adapter.changes_since(None)
    assert list(changes) == [] and cursor is None  # not answered yet: nothing to tell
    decidim.answer(int(forum_id), "accepted", "<p>예산에 <strong>반영</strong>하겠습니다.</p>")
    top = decidim.add_comment(int(forum_id), "<p>저도 찬성</p>")
    decidim.add_comment(int(forum_id), "답글입니다", reply_to=int(top["id"]))
    changes, cursor = await adapter.changes_since(None)
    kinds = [(ch.kind, ch.status) for ch in changes]
    assert kinds == [("status_changed", "accepted"), ("comment_added", None),
                     ("comment_added", None)]  # no second "answered" for the same answer
    assert changes[0].reason == "예산에 반영하겠습니다."
    assert [ch.body for ch in changes[1:]] == ["저도 찬성", "답글입니다"]
    assert cursor is not None
    again, same = await adapter.changes_since(cursor)
    assert list(again) == [] and same == cursor


async def _count(core: Any) -> int:
    async with core.db.read() as s:
        return len((await s.execute(select(Delivery))).scalars().all())


def test_state_mapping_covers_defaults_withdrawal_and_custom_states() -> None:
    assert map_state("evaluating") is ProposalStatus.UNDER_REVIEW
    assert map_state("accepted") is ProposalStatus.ACCEPTED
    assert map_state("rejected") is ProposalStatus.NOT_ACCEPTED
    assert map_state("accepted", withdrawn=True) is ProposalStatus.WITHDRAWN
    assert map_state(None) is None and map_state("not_answered") is None
    assert map_state("partially_accepted") is ProposalStatus.PARTLY_ACCEPTED
    assert map_state("implemented") is ProposalStatus.IMPLEMENTED
    assert map_state("forwarded_to_ministry") is ProposalStatus.FORWARDED
    assert map_state("our_custom_token") is ProposalStatus.UNDER_REVIEW
    assert map_state("x", overrides={"x": "accepted"}) is ProposalStatus.ACCEPTED


async def test_refusals_and_outages(decidim: FakeDecidim) -> None:
    wrong = DecidimForum(api_url=decidim.url, token="nope", component_id="29", timeout=2)
    with pytest.raises(ForumError):
        await wrong.create_proposal(proposal(), idempotency_key="k")
    await wrong.close()
    good = DecidimForum(api_url=decidim.url, token=TOKEN, component_id="29", timeout=2)
    decidim.faults.append("500")
    with pytest.raises(ForumUnavailable):
        await good.create_proposal(proposal(), idempotency_key="k")
    with pytest.raises(ForumError):  # Decidim refuses a body under 15 characters
        await good.create_proposal(
            ForumProposal(tracking="P-2026-000009", title="제목입니다", body="짧아요",
                          category="other", region=None, author_ref="gongnon:a",
                          created_at=datetime(2026, 11, 26, tzinfo=UTC)),
            idempotency_key="k2",
        )
    await good.close()


async def test_decidim_backend_end_to_end(
    database_url: str, tmp_path: Path, clock: ManualClock, decidim: FakeDecidim
) -> None:
    core = await bootstrap(
        make_settings(
            tmp_path, database_url=database_url, forum_backend="decidim", forum_url=decidim.url,
            forum_token=TOKEN, forum_decidim_component_id="29",
        ),
        clock=clock,
    )
    try:
        alice = await core.execute(
            c.EnsureIdentity(channel="telegram", external_id="a", address="chat-a")
        )
        bob = await core.execute(c.EnsureIdentity(channel="web", external_id="b", address="w-b"))
        tracking = await core.execute(c.SubmitProposal(
            person_id=alice, title="도서관 야간 개방", category="culture",
            body="도서관을 밤 10시까지 열어 주시면 좋겠습니다.",
        ))
        await core.execute(c.SupportProposal(person_id=bob, tracking=tracking))
        await core.execute(c.AddFeedback(person_id=bob, tracking=tracking, body="꼭 필요합니다"))
        sync = core.sync
        carol = await core.execute(
            c.EnsureIdentity(channel="telegram", external_id="c", address="chat-c")
        )
        dave = await core.execute(
            c.EnsureIdentity(channel="telegram", external_id="d", address="chat-d")
        )
        await core.execute(c.SupportProposal(person_id=carol, tracking=tracking))
        await core.execute(c.SupportProposal(person_id=dave, tracking=tracking))
        assert await sync.relay.drain() == 5
        forum_id = int(next(iter(decidim.proposals)))
        # three chat supporters, one API user: one vote on Decidim, and the limit is explicit
        assert decidim.votes[forum_id] == {"gongnon-api"} and len(decidim.comments[forum_id]) == 1
        assert decidim.operations.count("VoteProposal") == 1
        info = await sync.status()
        assert info["supports"] == {"voted": 1, "counted_once": 2}
        assert info["limitations"] == ["sync.limit.decidim_supports_once"]
        assert "P-2026" not in decidim.proposals[forum_id]["title"]

        decidim.answer(forum_id, "accepted", "<p>내년 예산에 <b>반영</b>합니다.</p>")
        await sync.reconcile()
        view = await core.views.proposal(tracking)
        assert view is not None and view.status is ProposalStatus.ACCEPTED
        assert view.history[-1].reason == "내년 예산에 반영합니다."  # plain text
        async with core.db.read() as s:
            to_alice = (await s.execute(
                select(Delivery).where(Delivery.address == "chat-a")
            )).scalars().all()
        assert len(to_alice) == 1  # one change, one notification
        assert "<" not in json.dumps([d.payload for d in to_alice], ensure_ascii=False)
        before = await _count(core)
        await sync.reconcile()  # nothing new: nothing twice
        assert await _count(core) == before
    finally:
        await core.stop()
