"""Proposal lifecycle through the bus, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from core import commands as c
from core.adapters.orm_delivery import Delivery
from core.bootstrap import Core
from core.domain.errors import AlreadyDone, InvalidField, InvalidTransition, NotFound
from core.domain.model import ProposalStatus, parse_tracking


async def person(core: Core, name: str, channel: str = "web", locale: str = "ko") -> int:
    return await core.execute(
        c.EnsureIdentity(channel=channel, external_id=name, address=f"addr-{name}", locale=locale)
    )


async def submit(core: Core, pid: int, title: str = "버스 정류장 그늘막 설치") -> str:
    return await core.execute(
        c.SubmitProposal(
            person_id=pid,
            title=title,
            body="여름에 버스를 기다리는 시민들이 햇볕에 너무 오래 노출됩니다.",
            category="transport",
            region="seoul",
        )
    )


async def test_identity_is_stable(core: Core) -> None:
    a = await person(core, "alice")
    assert await person(core, "alice") == a
    assert await person(core, "bob") != a


async def test_submit_gives_sequential_tracking_numbers(core: Core) -> None:
    pid = await person(core, "alice")
    first = await submit(core, pid)
    second = await submit(core, pid)
    assert first == "P-2026-000001"
    assert second == "P-2026-000002"
    view = await core.views.proposal(first)
    assert view is not None and view.status is ProposalStatus.RECEIVED
    assert view.history[0].to_status is ProposalStatus.RECEIVED
    mine, total = await core.views.proposals_of(pid)
    assert total == 2 and [p.tracking for p in mine] == [second, first]


async def test_concurrent_submissions_get_distinct_numbers(core: Core) -> None:
    pid = await person(core, "alice")
    numbers = await asyncio.gather(*(submit(core, pid) for _ in range(20)))
    assert len(set(numbers)) == 20


async def test_validation_errors_name_the_field(core: Core) -> None:
    pid = await person(core, "alice")
    with pytest.raises(InvalidField) as err:
        await core.execute(
            c.SubmitProposal(person_id=pid, title="짧", body="x" * 50, category="transport")
        )
    assert err.value.field == "title" and err.value.code == "too_short"
    with pytest.raises(InvalidField):
        await core.execute(
            c.SubmitProposal(person_id=pid, title="충분히 긴 제목", body="x" * 50, category="nope")
        )


async def test_support_once_and_follow(core: Core) -> None:
    author = await person(core, "alice")
    fan = await person(core, "bob")
    tracking = await submit(core, author)
    assert await core.execute(c.SupportProposal(person_id=fan, tracking=tracking)) == 1
    with pytest.raises(AlreadyDone):
        await core.execute(c.SupportProposal(person_id=fan, tracking=tracking))
    rel = await core.views.relation(fan, tracking)
    assert rel.supporting and rel.following and not rel.is_author
    assert await core.execute(c.UnfollowProposal(person_id=fan, tracking=tracking))
    assert not (await core.views.relation(fan, tracking)).following
    with pytest.raises(NotFound):
        await core.execute(c.SupportProposal(person_id=fan, tracking="P-2026-999999"))


async def test_concurrent_supports_count_once(core: Core) -> None:
    author = await person(core, "alice")
    fan = await person(core, "bob")
    tracking = await submit(core, author)
    results = await asyncio.gather(
        *(core.execute(c.SupportProposal(person_id=fan, tracking=tracking)) for _ in range(10)),
        return_exceptions=True,
    )
    assert sum(1 for r in results if r == 1) == 1
    assert all(isinstance(r, AlreadyDone) for r in results if r != 1)
    view = await core.views.proposal(tracking)
    assert view is not None and view.support_count == 1


async def test_status_change_notifies_everyone_who_cares(core: Core) -> None:
    author = await person(core, "alice")
    fan = await person(core, "bob", channel="telegram", locale="en")
    await person(core, "carol")  # does not care
    tracking = await submit(core, author)
    await core.execute(c.FollowProposal(person_id=fan, tracking=tracking))
    moved = await core.execute(
        c.ChangeStatus(
            tracking=tracking,
            status=ProposalStatus.UNDER_REVIEW,
            reason="담당 부서 검토",
            actor="slack:U1",
            source="slack",
        )
    )
    assert moved
    async with core.db.read() as s:
        rows = (await s.execute(select(Delivery).order_by(Delivery.id))).scalars().all()
    assert [(r.channel, r.address) for r in rows] == [
        ("web", "addr-alice"),
        ("telegram", "addr-bob"),
    ]
    assert "검토 중" in rows[0].payload["text"]
    assert "Under review" in rows[1].payload["text"]
    with pytest.raises(InvalidTransition):
        await core.execute(
            c.ChangeStatus(
                tracking=tracking,
                status=ProposalStatus.IMPLEMENTED,
                reason="x",
                actor="slack:U1",
                source="slack",
            )
        )


async def test_forum_versions_never_move_backwards(core: Core) -> None:
    author = await person(core, "alice")
    tracking = await submit(core, author)

    def change(status: ProposalStatus, version: int) -> c.ChangeStatus:
        return c.ChangeStatus(
            tracking=tracking, status=status, reason="forum", actor="forum", source="forum",
            version=version,
        )

    assert await core.execute(change(ProposalStatus.ACCEPTED, 5))
    assert not await core.execute(change(ProposalStatus.UNDER_REVIEW, 3))  # late
    assert not await core.execute(change(ProposalStatus.ACCEPTED, 5))  # repeated
    view = await core.views.proposal(tracking)
    assert view is not None and view.status is ProposalStatus.ACCEPTED


def test_tracking_parsing() -> None:
    assert parse_tracking("p-2026-42") == "P-2026-000042"
    assert parse_tracking(" P2026000042 ") == "P-2026-000042"
    assert parse_tracking("hello") is None


async def test_concurrent_first_contacts_make_one_person(core: Core) -> None:
    from sqlalchemy import func

    from core.adapters.orm import Person

    ids = await asyncio.gather(*(person(core, "dora") for _ in range(10)))
    assert len(set(ids)) == 1
    async with core.db.read() as s:
        assert (await s.execute(select(func.count(Person.id)))).scalar_one() == 1
    known = await core.views.identity("web", "dora")
    assert known is not None and known.person_id == ids[0] and known.locale == "ko"


async def test_first_contacts_are_group_committed_and_consistent(
    core: Core, database_url: str, tmp_path
) -> None:
    """Many concurrent first contacts (with repeats), from two processes' cores on one database:
    every identity maps to exactly one person, and every caller gets that person."""
    from sqlalchemy import func

    from core.adapters.orm import Identity, Person
    from core.bootstrap import bootstrap
    from tests.conftest import make_settings

    other = await bootstrap(make_settings(tmp_path, database_url=database_url), clock=core.clock)
    try:
        names = [f"user{i % 25}" for i in range(100)]
        calls = [person(core if i % 2 else other, name) for i, name in enumerate(names)]
        ids = await asyncio.gather(*calls)
    finally:
        await other.stop()
    by_name: dict[str, set[int]] = {}
    for name, pid in zip(names, ids, strict=True):
        by_name.setdefault(name, set()).add(pid)
    assert all(len(pids) == 1 for pids in by_name.values())
    assert len({next(iter(p)) for p in by_name.values()}) == 25
    async with core.db.read() as s:
        assert (await s.execute(select(func.count(Person.id)))).scalar_one() == 25
        assert (await s.execute(select(func.count(Identity.id)))).scalar_one() == 25
