"""Campaign pushes: segments, consent, quiet hours, schedule, pause/resume/cancel, reports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from core.adapters.orm_campaigns import ConsentEvent
from core.adapters.orm_delivery import Delivery
from core.bootstrap import Core
from core.campaigns import commands as c
from core.campaigns.errors import PushStateError
from core.campaigns.model import Segment
from core.domain.errors import InvalidField
from tests.campaign_support import SURVEY_YAML, RecordingSender, citizen, drain, quiet_core
from tests.support import ManualClock

MESSAGE = {"ko": "버스 정류장 설문에 참여해 주세요.", "en": "Please take our bus stop survey."}


@pytest.fixture
async def qcore(database_url: str, tmp_path: Path, clock: ManualClock) -> AsyncIterator[Core]:
    instance = await quiet_core(database_url, tmp_path, clock)
    try:
        yield instance
    finally:
        await instance.stop()


def web(core: Core) -> RecordingSender:
    sender = RecordingSender("web")
    core.register_sender(sender)
    core.register_sender(RecordingSender("telegram"))
    return sender


async def push(core: Core, segment: Segment, *, survey: bool = True, **extra) -> int:  # type: ignore[no-untyped-def]
    survey_id = None
    if survey:
        survey_id = await core.campaigns.create_survey_from_yaml(SURVEY_YAML,
                                                                           actor="test")
    return int(await core.execute(c.CreatePush(name="정류장 설문", message=MESSAGE,
                                               segment=segment, actor="test",
                                               survey_id=survey_id, **extra)))


async def statuses(core: Core, push_id: int) -> dict[str, str]:
    async with core.db.read() as s:
        rows = await s.execute(select(Delivery.address, Delivery.status)
                               .where(Delivery.push_id == push_id))
        return dict(rows.all())


async def test_segment_consent_and_quiet_hours(qcore: Core, clock: ManualClock) -> None:
    sender = web(qcore)
    await citizen(qcore, "a", topics=("transport",))
    await citizen(qcore, "b", topics=("transport", "welfare"), locale="en")
    await citizen(qcore, "c", topics=("welfare",))  # other topic
    await citizen(qcore, "d", consent=None, topics=("transport",))  # never consented
    await citizen(qcore, "e", consent=False, topics=("transport",))  # opted out
    await citizen(qcore, "f", channel="telegram", topics=("transport",))  # other channel
    gone = await citizen(qcore, "g", topics=("transport",))
    await qcore.mark_unreachable("web", "web-g", "blocked")
    assert gone
    push_id = await push(qcore, Segment(topics=("transport",), channels=("web",)))
    clock.current = clock.current.replace(hour=13)  # 22:00 in Seoul: quiet
    dry = await qcore.campaigns.dry_run(push_id)
    assert dry.audience == 2 and dry.by_locale == {"ko": 1, "en": 1}
    assert dry.quiet_until is not None and dry.quiet_until.hour == 23  # 08:00 KST in UTC
    assert dry.previews["ko"].choices[0].id.startswith("sv:")
    assert "수신거부" in dry.previews["ko"].text and "STOP" in dry.previews["en"].text
    assert await qcore.execute(c.StartPush(push_id=push_id, actor="test")) == "running"
    await qcore.campaigns.tick()
    assert sorted(await statuses(qcore, push_id)) == ["web-a", "web-b"]
    await drain(qcore)
    assert sender.sent == []  # quiet hours: nothing pushed
    clock.advance(hours=9, minutes=30)  # 07:30 KST: still quiet
    await qcore.campaigns.tick()
    await drain(qcore)
    assert sender.sent == []
    clock.advance(minutes=31)  # 08:01 KST
    await drain(qcore)
    assert sorted(a for a, _ in sender.sent) == ["web-a", "web-b"]
    english = sender.to("web-b")[0]
    assert english.text.startswith("Please take") and english.choices[0].label == "Take the survey"
    await qcore.campaigns.tick()
    progress = await qcore.campaigns.progress(push_id)
    assert progress.status == "done" and progress.counts["sent"] == 2 and progress.share == 1.0


async def test_quiet_hours_hold_rows_queued_before_they_began(
    qcore: Core, clock: ManualClock
) -> None:
    sender = web(qcore)
    await citizen(qcore, "a")
    push_id = await push(qcore, Segment(), survey=False)
    clock.current = clock.current.replace(hour=11, minute=59)  # 20:59 KST
    await qcore.execute(c.StartPush(push_id=push_id, actor="test"))
    await qcore.campaigns.tick()
    clock.advance(minutes=2)  # 21:01 KST: quiet hours began with the row still queued
    await qcore.campaigns.tick()
    await drain(qcore)
    assert sender.sent == []
    async with qcore.db.read() as s:
        due = (await s.execute(select(Delivery.next_attempt_at))).scalar_one()
    assert due.hour == 23 and due.minute == 0


async def test_opting_out_cancels_queued_messages_at_once(core: Core) -> None:
    sender = web(core)
    stays = await citizen(core, "stays")
    leaves = await citizen(core, "leaves")
    push_id = await push(core, Segment())
    await core.execute(c.StartPush(push_id=push_id, actor="test"))
    await core.campaigns.tick()
    assert await core.execute(c.SetConsent(person_id=leaves, opted_in=False, channel="web",
                                           source="STOP"))
    await drain(core)
    assert [a for a, _ in sender.sent] == ["web-stays"]
    await core.campaigns.tick()
    progress = await core.campaigns.progress(push_id)
    assert progress.status == "done"
    assert progress.counts == {"sent": 1, "opted_out": 1}
    async with core.db.read() as s:
        ledger = (await s.execute(select(ConsentEvent).order_by(ConsentEvent.id))).scalars().all()
    assert [(e.person_id, e.action, e.source) for e in ledger][-1] == (leaves, "opt_out", "STOP")
    assert stays in {e.person_id for e in ledger}
    # the same answer twice changes nothing and records nothing
    assert not await core.execute(c.SetConsent(person_id=leaves, opted_in=False, channel="web",
                                               source="STOP"))


async def test_pause_resume_and_cancel(core: Core) -> None:
    sender = web(core)
    for name in "abcde":
        await citizen(core, name, regions=("busan",))
    await citizen(core, "seoul", regions=("seoul",))
    service = core.campaigns
    push_id = await push(core, Segment(regions=("busan",)))
    await core.execute(c.StartPush(push_id=push_id, actor="test"))
    await service.tick()
    await core.execute(c.PausePush(push_id=push_id, actor="test"))
    assert set((await statuses(core, push_id)).values()) == {"held"}
    await drain(core)
    assert sender.sent == []
    with pytest.raises(PushStateError):
        await core.execute(c.PausePush(push_id=push_id, actor="test"))
    assert await core.execute(c.ResumePush(push_id=push_id, actor="test")) == "running"
    await drain(core)
    await service.tick()
    assert len(sender.sent) == 5 and (await service.progress(push_id)).status == "done"
    with pytest.raises(PushStateError):
        await core.execute(c.CancelPush(push_id=push_id, actor="test"))

    other = await push(core, Segment(regions=("busan",)), survey=False)
    await core.execute(c.StartPush(push_id=other, actor="test"))
    await service.tick()
    assert await core.execute(c.CancelPush(push_id=other, actor="test")) == 5
    await drain(core)
    assert len(sender.sent) == 5
    progress = await service.progress(other)
    assert progress.status == "cancelled" and progress.counts == {"cancelled": 5}


async def test_scheduled_push_starts_on_time(core: Core, clock: ManualClock) -> None:
    sender = web(core)
    await citizen(core, "a")
    push_id = await push(core, Segment(), survey=False,
                         scheduled_at=clock.now() + timedelta(hours=2))
    assert await core.execute(c.StartPush(push_id=push_id, actor="test")) == "scheduled"
    await core.campaigns.tick()
    await drain(core)
    assert sender.sent == []
    clock.advance(hours=2, seconds=1)
    await core.campaigns.tick()
    await drain(core)
    assert [a for a, _ in sender.sent] == ["web-a"]


async def test_test_send_goes_only_to_the_campaigner(core: Core) -> None:
    sender = web(core)
    await citizen(core, "a")
    push_id = await push(core, Segment())
    assert await core.execute(c.TestPush(push_id=push_id, channel="web", address="me"))
    await drain(core)
    assert [a for a, _ in sender.sent] == ["me"]
    assert sender.sent[0][1].text.startswith("[테스트 발송]")
    assert (await core.campaigns.progress(push_id)).status == "draft"


async def test_bad_push_requests_are_refused(core: Core, clock: ManualClock) -> None:
    for segment, field in ((Segment(topics=("nope",)), "segment"),
                           (Segment(locales=("fr",)), "segment")):
        with pytest.raises(InvalidField) as err:
            await push(core, segment, survey=False)
        assert err.value.field == field
    with pytest.raises(InvalidField) as err:
        await core.execute(c.CreatePush(name="x", message={"en": "only english"},
                                        segment=Segment(), actor="t"))
    assert err.value.field == "message"
    with pytest.raises(InvalidField):
        await push(core, Segment(), survey=False, scheduled_at=clock.now() - timedelta(hours=1))
