"""Campaign command handlers: the only code that writes surveys, ballots, consent and pushes."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from datetime import datetime, time
from functools import partial
from zoneinfo import ZoneInfo

from core.adapters.orm_campaigns import Push, Survey
from core.campaigns import commands as c
from core.campaigns import events as e
from core.campaigns.counting import count_results, load_definition
from core.campaigns.errors import (
    AlreadyVoted,
    NotInvited,
    PushNotFound,
    PushStateError,
    SurveyClosed,
    SurveyNotFound,
    SurveyNotOpenYet,
)
from core.campaigns.model import Segment, check_answer, quiet_until
from core.campaigns.repository import CampaignRepository
from core.campaigns.results import format_results
from core.delivery import DeliveryRepository
from core.domain.errors import AlreadyDone, InvalidField
from core.domain.model import CATEGORIES, REGIONS
from core.domain.participation import Level
from core.i18n import LOCALES, t
from core.messagebus import MessageBus
from core.messages import Choice, Image, Reply, ReplyKind
from core.participation import require as require_level
from core.unit_of_work import UnitOfWork

__all__ = ["QuietHours", "register", "render_push", "voter_key"]

NAME_MAX, MESSAGE_MAX = 200, 1000
PERSON_BATCH = 1000


class QuietHours:
    """Settings' quiet hours in the configured zone; ``until(now)`` is None outside them."""

    __slots__ = ("end", "start", "tz")

    def __init__(self, *, start: time | None, end: time | None, tz: ZoneInfo) -> None:
        self.start, self.end, self.tz = start, end, tz

    def until(self, now: datetime) -> datetime | None:
        return quiet_until(now, start=self.start, end=self.end, tz=self.tz)


def voter_key(salt: bytes, survey_id: int, person_id: int) -> str:
    """The participation key: without the survey's salt it names nobody."""
    return hmac.new(salt, f"{survey_id}:{person_id}".encode(), hashlib.sha256).hexdigest()


def _repo(uow: UnitOfWork) -> CampaignRepository:
    return uow.repo(CampaignRepository)


async def _survey(uow: UnitOfWork, survey_id: int, *, for_update: bool = False) -> Survey:
    survey = await _repo(uow).survey(survey_id, for_update=for_update)
    if survey is None:
        raise SurveyNotFound(str(survey_id), survey=survey_id)
    return survey


async def _push(uow: UnitOfWork, push_id: int) -> Push:
    push = await _repo(uow).push(push_id, for_update=True)
    if push is None:
        raise PushNotFound(str(push_id), push=push_id)
    return push


# --- surveys and ballots -------------------------------------------------------------


async def create_survey(cmd: c.CreateSurvey, uow: UnitOfWork) -> int:
    d = cmd.definition
    now = uow.now()
    opens_at = max(d.opens_at, now) if d.opens_at.year > 1 else now
    if d.closes_at <= now:
        raise InvalidField("closes_at", "in_past")
    survey_id = await _repo(uow).add_survey(
        slug=d.slug,
        kind=d.kind,
        title=d.title.ko[:200],
        definition=d.to_json(),
        anonymous=d.anonymous,
        live_results=d.live_results,
        allow_change=d.allow_change and not d.anonymous,
        audience=d.audience,
        opens_at=opens_at,
        closes_at=d.closes_at,
        status="open",
        voter_salt=os.urandom(32),
        ballot_count=0,
        created_by=cmd.actor[:128],
        created_at=now,
    )
    if survey_id is None:
        raise AlreadyDone("slug taken", slug=d.slug)
    uow.emit(e.SurveyCreated(survey_id=survey_id, slug=d.slug))
    return survey_id


async def cast_ballot(
    cmd: c.CastBallot, uow: UnitOfWork, *, participation: Level = Level.GUEST
) -> str:
    survey = await _survey(uow, cmd.survey_id)
    now = uow.now()
    if survey.status != "open" or now >= survey.closes_at or survey.voter_salt is None:
        raise SurveyClosed("closed", survey=survey.id)
    if now < survey.opens_at:
        raise SurveyNotOpenYet("not yet", survey=survey.id)
    await require_level(uow, cmd.person_id, participation)
    if survey.audience == "targeted" and not await _repo(uow).invited(survey.id, cmd.person_id):
        raise NotInvited("not sent to this person", survey=survey.id)
    definition = load_definition(survey)
    answers = {q.id: check_answer(q, cmd.answers.get(q.id)) for q in definition.questions}
    key = voter_key(survey.voter_salt, survey.id, cmd.person_id)
    repo = _repo(uow)
    if await repo.claim_participation(survey.id, key):
        identified = not survey.anonymous
        await repo.add_ballot(
            survey_id=survey.id,
            answers=answers,
            person_id=cmd.person_id if identified else None,
            channel=cmd.channel if identified else None,
            at=now if identified else None,
            voter_key=key if identified else None,
        )
        uow.emit(e.BallotCast(survey_id=survey.id, changed=False))
        return "cast"
    if survey.anonymous or not survey.allow_change:
        raise AlreadyVoted("already", survey=survey.id)
    ballot_id = await repo.participation_ballot(survey.id, key)
    if ballot_id is None:
        raise AlreadyVoted("already", survey=survey.id)
    await repo.change_ballot(ballot_id, answers, cmd.channel, now)
    uow.emit(e.BallotCast(survey_id=survey.id, changed=True))
    return "changed"


async def close_survey(cmd: c.CloseSurvey, uow: UnitOfWork) -> bool:
    await _survey(uow, cmd.survey_id)
    closed = await _repo(uow).set_survey_status(
        cmd.survey_id, from_status="open", to_status="closing", closed_at=uow.now()
    )
    if closed:
        uow.emit(e.SurveyClosed(survey_id=cmd.survey_id))
    return closed


async def _participants(uow: UnitOfWork, survey: Survey) -> set[int]:
    """Who took part, found by recomputing each person's key (possible only before close)."""
    repo = _repo(uow)
    assert survey.voter_salt is not None
    found: set[int] = set()
    after = 0
    while ids := await repo.person_ids(after=after, limit=PERSON_BATCH):
        keys = {voter_key(survey.voter_salt, survey.id, pid): pid for pid in ids}
        found.update(keys[k] for k in await repo.participated(survey.id, list(keys)))
        after = ids[-1]
    return found


async def publish_results(cmd: c.PublishResults, uow: UnitOfWork, *, quiet: QuietHours) -> int:
    """Queue the final results to every participant who has not opted out, then wipe the salt."""
    survey = await _survey(uow, cmd.survey_id, for_update=True)
    if survey.status != "closing":
        return 0
    repo = _repo(uow)
    results = await count_results(uow.session, survey)
    people = {p for p in await _participants(uow, survey) if await repo.consent(p) is not False}
    deliveries = uow.repo(DeliveryRepository)
    now = uow.now()
    not_before = quiet.until(now)
    seen: set[int] = set()
    for recipient in await uow.persons.recipients(people):
        if recipient.person_id in seen:  # one message per person, on their first channel
            continue
        seen.add(recipient.person_id)
        reply = Reply(
            text=format_results(results, recipient.locale, final=True),
            image=Image(png=cmd.chart, alt=results.title.get(recipient.locale))
            if cmd.chart
            else None,
            kind=ReplyKind.PUSH,
            meta={"survey_id": str(survey.id), "event": "results"},
        )
        await deliveries.enqueue(
            dedupe_key=f"results:{survey.id}:p{recipient.person_id}",
            channel=recipient.channel,
            address=recipient.address,
            reply=reply,
            person_id=recipient.person_id,
            now=now,
            not_before=not_before,
        )
    await repo.set_survey_status(survey.id, from_status="closing", to_status="closed",
                                 voter_salt=None)
    uow.emit(e.SurveyResultsPublished(survey_id=survey.id, participants_notified=len(seen)))
    return len(seen)


# --- consent and topics ----------------------------------------------------------------


async def set_consent(cmd: c.SetConsent, uow: UnitOfWork) -> bool:
    repo = _repo(uow)
    if await repo.consent(cmd.person_id) is cmd.opted_in:
        return False
    await repo.record_consent(
        person_id=cmd.person_id, opted_in=cmd.opted_in, channel=cmd.channel,
        source=" ".join(cmd.source.split())[:200] or "-", now=uow.now(),
    )
    cancelled = 0
    if not cmd.opted_in:  # at once: nothing queued for this person goes out any more
        cancelled = await repo.move_deliveries(
            person_id=cmd.person_id, from_status=("pending", "held"), to_status="opted_out",
            lease_until=None,
        )
    uow.emit(e.ConsentChanged(person_id=cmd.person_id, opted_in=cmd.opted_in,
                              cancelled_deliveries=cancelled))
    return True


async def set_subscription(cmd: c.SetSubscription, uow: UnitOfWork) -> bool:
    vocabulary = {"category": CATEGORIES, "region": REGIONS}.get(cmd.kind)
    if vocabulary is None or cmd.topic not in vocabulary:
        raise InvalidField("topic", "unknown")
    return await _repo(uow).set_subscription(
        person_id=cmd.person_id, kind=cmd.kind, topic=cmd.topic, on=cmd.on, now=uow.now()
    )


# --- pushes ------------------------------------------------------------------------------


def _check_segment(segment: Segment) -> None:
    if any(x not in CATEGORIES for x in segment.topics):
        raise InvalidField("segment", "unknown_topic")
    if any(x not in REGIONS for x in segment.regions):
        raise InvalidField("segment", "unknown_region")
    if any(x not in LOCALES for x in segment.locales):
        raise InvalidField("segment", "unknown_locale")
    if any(not x.isascii() or not x.isalnum() or len(x) > 16 for x in segment.channels):
        raise InvalidField("segment", "unknown_channel")


def _clean_message(message: dict[str, str], *, required: bool) -> dict[str, str]:
    out = {loc: text.strip() for loc, text in message.items() if loc in LOCALES and text.strip()}
    if required and "ko" not in out:
        raise InvalidField("message", "too_short", min=1, max=MESSAGE_MAX)
    for text in out.values():
        if len(text) > MESSAGE_MAX:
            raise InvalidField("message", "too_long", min=1, max=MESSAGE_MAX, length=len(text))
    return out


async def create_push(cmd: c.CreatePush, uow: UnitOfWork) -> int:
    name = " ".join(cmd.name.split())
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidField("name", "too_long" if name else "too_short", min=1, max=NAME_MAX)
    message = _clean_message(cmd.message, required=cmd.survey_id is None)
    _check_segment(cmd.segment)
    now = uow.now()
    if cmd.survey_id is not None:
        survey = await _survey(uow, cmd.survey_id)
        if survey.status != "open" or survey.closes_at <= now:
            raise SurveyClosed("closed", survey=survey.id)
    if cmd.scheduled_at is not None and cmd.scheduled_at <= now:
        raise InvalidField("scheduled_at", "in_past")
    return await _repo(uow).add_push(
        name=name, survey_id=cmd.survey_id, message=message, segment=cmd.segment.to_json(),
        status="draft", scheduled_at=cmd.scheduled_at, cursor=0, enqueued=0, fanout_done=False,
        created_by=cmd.actor[:128], created_at=now,
    )


def _change(uow: UnitOfWork, push: Push, change: str, actor: str) -> None:
    uow.emit(e.PushChanged(push_id=push.id, change=change, actor=actor))


async def start_push(cmd: c.StartPush, uow: UnitOfWork) -> str:
    push = await _push(uow, cmd.push_id)
    now = uow.now()
    if push.status not in ("draft", "scheduled"):
        raise PushStateError(push.status, status=push.status)
    if push.status == "draft" and push.scheduled_at is not None and push.scheduled_at > now:
        push.status = "scheduled"
    else:
        push.status, push.started_at = "running", now
    _change(uow, push, push.status, cmd.actor)
    return push.status


async def pause_push(cmd: c.PausePush, uow: UnitOfWork) -> None:
    push = await _push(uow, cmd.push_id)
    if push.status not in ("running", "scheduled"):
        raise PushStateError(push.status, status=push.status)
    push.status = "paused"
    await _repo(uow).move_deliveries(push_id=push.id, from_status=("pending",), to_status="held")
    _change(uow, push, "paused", cmd.actor)


async def resume_push(cmd: c.ResumePush, uow: UnitOfWork, *, quiet: QuietHours) -> str:
    push = await _push(uow, cmd.push_id)
    if push.status != "paused":
        raise PushStateError(push.status, status=push.status)
    now = uow.now()
    if push.started_at is None and push.scheduled_at is not None and push.scheduled_at > now:
        push.status = "scheduled"
    else:
        push.status, push.started_at = "running", push.started_at or now
    await _repo(uow).move_deliveries(
        push_id=push.id, from_status=("held",), to_status="pending",
        next_attempt_at=quiet.until(now) or now, lease_until=None, lease_owner=None,
    )
    _change(uow, push, "resumed", cmd.actor)
    return push.status


async def cancel_push(cmd: c.CancelPush, uow: UnitOfWork) -> int:
    push = await _push(uow, cmd.push_id)
    if push.status in ("done", "cancelled"):
        raise PushStateError(push.status, status=push.status)
    push.status, push.finished_at = "cancelled", uow.now()
    cancelled = await _repo(uow).move_deliveries(
        push_id=push.id, from_status=("pending", "held"), to_status="cancelled", lease_until=None
    )
    _change(uow, push, "cancelled", cmd.actor)
    return cancelled


def render_push(push: Push, survey: Survey | None, locale: str) -> Reply:
    """The message one recipient sees, in their language, with the survey button if any."""
    text = push.message.get(locale) or push.message.get("ko") or ""
    choices: tuple[Choice, ...] = ()
    heading = None
    if survey is not None:
        definition = load_definition(survey)
        heading = definition.title.get(locale)
        if not text:
            text = definition.intro.get(locale) if definition.intro else ""
        choices = (Choice(id=f"sv:{survey.id}:start", label=t("campaign.push.start", locale)),)
    footer = t("campaign.push.footer", locale)
    return Reply(
        text=f"{text}\n\n{footer}".strip(),
        heading=heading,
        choices=choices,
        kind=ReplyKind.PUSH,
        meta={"push_id": str(push.id)},
    )


async def fan_out_push(
    cmd: c.FanOutPush,
    uow: UnitOfWork,
    *,
    quiet: QuietHours,
    unpushable: Callable[[], Sequence[str]] = tuple,
) -> int:
    push = await _push(uow, cmd.push_id)
    if push.status != "running" or push.fanout_done:
        return -1
    repo = _repo(uow)
    survey = await repo.survey(push.survey_id) if push.survey_id is not None else None
    targets = await repo.targets(Segment.from_json(push.segment), after=push.cursor,
                                 limit=cmd.batch, unpushable=unpushable())
    now = uow.now()
    not_before = quiet.until(now)
    deliveries = uow.repo(DeliveryRepository)
    rendered: dict[str, Reply] = {}
    queued = 0
    if survey is not None and survey.audience == "targeted":
        # who may answer a targeted survey: written with the deliveries, in this batch
        await repo.invite(survey.id, {target.person_id for target in targets}, now)
    for target in targets:
        reply = rendered.get(target.locale) or render_push(push, survey, target.locale)
        rendered[target.locale] = reply
        queued += await deliveries.enqueue(
            dedupe_key=f"push:{push.id}:p{target.person_id}",
            channel=target.channel,
            address=target.address,
            reply=reply,
            now=now,
            person_id=target.person_id,
            push_id=push.id,
            not_before=not_before,
        )
    if targets:
        push.cursor = targets[-1].person_id
    push.enqueued += queued
    if len(targets) < cmd.batch:
        push.fanout_done = True
    return queued


async def finish_push(cmd: c.FinishPush, uow: UnitOfWork) -> bool:
    push = await _push(uow, cmd.push_id)
    if push.status != "running" or not push.fanout_done:
        return False
    if await _repo(uow).open_deliveries(push.id):
        return False
    push.status, push.finished_at = "done", uow.now()
    uow.emit(e.PushFinished(push_id=push.id))
    return True


async def test_push(cmd: c.TestPush, uow: UnitOfWork) -> bool:
    push = await _push(uow, cmd.push_id)
    survey = await _repo(uow).survey(push.survey_id) if push.survey_id is not None else None
    reply = render_push(push, survey, cmd.locale)
    prefix = t("campaign.push.test_prefix", cmd.locale)
    now = uow.now()
    return await uow.repo(DeliveryRepository).enqueue(
        dedupe_key=f"pushtest:{push.id}:{cmd.channel}:{cmd.address}:{now.timestamp()}"[:200],
        channel=cmd.channel,
        address=cmd.address,
        reply=Reply(text=f"{prefix}\n{reply.text}", heading=reply.heading, choices=reply.choices,
                    kind=ReplyKind.NOTIFICATION, meta={"push_id": str(push.id), "test": "1"}),
        now=now,
    )


async def hold_for_quiet_hours(cmd: c.HoldForQuietHours, uow: UnitOfWork) -> int:
    return await _repo(uow).defer_pushes(cmd.until)


async def set_progress_ref(cmd: c.SetProgressRef, uow: UnitOfWork) -> None:
    push = await _push(uow, cmd.push_id)
    push.progress_ref = cmd.ref


def register(
    bus: MessageBus,
    *,
    quiet: QuietHours,
    unpushable: Callable[[], Sequence[str]] = tuple,
    participation: Level = Level.GUEST,
) -> None:
    """``unpushable()``: the channels whose Sender cannot message a person unasked; a push
    reaches people through their other channels, or not at all."""
    bus.register(c.CreateSurvey, create_survey)
    bus.register(c.CastBallot, partial(cast_ballot, participation=participation))
    bus.register(c.CloseSurvey, close_survey)
    bus.register(c.PublishResults, partial(publish_results, quiet=quiet))
    bus.register(c.SetConsent, set_consent)
    bus.register(c.SetSubscription, set_subscription)
    bus.register(c.CreatePush, create_push)
    bus.register(c.StartPush, start_push)
    bus.register(c.PausePush, pause_push)
    bus.register(c.ResumePush, partial(resume_push, quiet=quiet))
    bus.register(c.CancelPush, cancel_push)
    bus.register(c.FanOutPush, partial(fan_out_push, quiet=quiet, unpushable=unpushable))
    bus.register(c.FinishPush, finish_push)
    bus.register(c.TestPush, test_push)
    bus.register(c.SetProgressRef, set_progress_ref)
    bus.register(c.HoldForQuietHours, hold_for_quiet_hours)
