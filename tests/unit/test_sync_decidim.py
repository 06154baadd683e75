"""The Decidim adapter's queries and mutations against a fake executing Decidim's schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from core import commands as c
from core.adapters.forum_decidim import DecidimForum, map_state
from core.adapters.orm_delivery import Delivery
from core.bootstrap import bootstrap
from core.domain.model import ProposalStatus
from core.ports import ForumError, ForumProposal, ForumUnavailable
from tests.conftest import make_settings
from tests.fakes.decidim import FakeDecidim
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


async def test_create_is_found_again_instead_of_duplicated(
    adapter: DecidimForum, decidim: FakeDecidim
) -> None:
    forum_id = await adapter.create_proposal(proposal(), idempotency_key="k1")
    stored = decidim.proposals[int(forum_id)]
    assert stored["title"] == "그늘막 [P-2026-000001]"  # long enough for Decidim's 15 minimum
    again = await adapter.create_proposal(proposal(), idempotency_key="k1")
    assert again == forum_id and len(decidim.proposals) == 1
    assert "CreateProposal" in decidim.operations and "RecentProposals" in decidim.operations


async def test_vote_comment_withdraw(adapter: DecidimForum, decidim: FakeDecidim) -> None:
    forum_id = await adapter.create_proposal(proposal(), idempotency_key="k1")
    await adapter.add_support(forum_id, author_ref="gongnon:x", idempotency_key="s1")
    await adapter.add_support(forum_id, author_ref="gongnon:x", idempotency_key="s1")  # done
    assert decidim.votes[int(forum_id)] == {"gongnon-bot"}
    comment_id = await adapter.add_feedback(
        forum_id, body="좋습니다", author_ref="gongnon:x", idempotency_key="f1"
    )
    assert decidim.comments[int(forum_id)][0]["id"] == int(comment_id)
    await adapter.withdraw(forum_id, author_ref="gongnon:x", idempotency_key="w1")
    status = await adapter.proposal_status(forum_id)
    assert status.status == "withdrawn" and status.version > 0


async def test_changes_map_states_answers_and_comments(
    adapter: DecidimForum, decidim: FakeDecidim
) -> None:
    forum_id = await adapter.create_proposal(proposal(), idempotency_key="k1")
    changes, cursor = await adapter.changes_since(None)
    assert list(changes) == [] and cursor is None  # not answered yet: nothing to tell
    decidim.answer(int(forum_id), "accepted", "예산에 반영하겠습니다.")
    decidim.add_comment(int(forum_id), "저도 찬성")
    changes, cursor = await adapter.changes_since(None)
    kinds = {(ch.kind, ch.status) for ch in changes}
    assert kinds == {("status_changed", "accepted"), ("answered", None), ("comment_added", None)}
    answered = next(ch for ch in changes if ch.kind == "answered")
    assert answered.body == "예산에 반영하겠습니다."
    assert cursor is not None
    again, same = await adapter.changes_since(cursor)
    assert list(again) == [] and same == cursor


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
        assert await sync.relay.drain() == 3
        forum_id = int(next(iter(decidim.proposals)))
        assert decidim.votes[forum_id] == {"gongnon-bot"} and len(decidim.comments[forum_id]) == 1

        decidim.answer(forum_id, "accepted", "내년 예산에 반영합니다.")
        await sync.reconcile()
        view = await core.views.proposal(tracking)
        assert view is not None and view.status is ProposalStatus.ACCEPTED
        assert [f.body for f in view.feedback] == ["꼭 필요합니다", "내년 예산에 반영합니다."]
        async with core.db.read() as s:
            to_alice = (await s.execute(
                select(Delivery).where(Delivery.address == "chat-a")
            )).scalars().all()
        assert len(to_alice) == 2  # the status change and the official answer
        await sync.reconcile()  # nothing new: nothing twice
        async with core.db.read() as s:
            assert len((await s.execute(select(Delivery))).scalars().all()) == 4
    finally:
        await core.stop()
