"""The campaign service for adapters: surveys, results, CSV, dry runs, progress, ticks."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from core.adapters.orm_campaigns import ConsentState, Push, Subscription, Survey
from core.adapters.orm_delivery import Delivery
from core.campaigns import commands as c
from core.campaigns.counting import count_results, export_csv, load_definition
from core.campaigns.errors import PushNotFound, PushStateError, SurveyNotFound
from core.campaigns.handlers import QuietHours, render_push, voter_key
from core.campaigns.loader import parse_survey
from core.campaigns.model import Segment, SurveyInfo
from core.campaigns.repository import audience_persons, pick_targets
from core.campaigns.results import Results, chart_series
from core.kernel import Kernel
from core.messages import Reply

__all__ = ["CampaignService", "DryRun", "Progress", "SurveyInfo"]

log = logging.getLogger(__name__)

FANOUT_BATCH = 500
REPORT_STATUSES = ("sent", "failed", "unreachable", "opted_out", "cancelled")


@dataclass(frozen=True, slots=True, kw_only=True)
class DryRun:
    audience: int
    by_channel: dict[str, int]
    by_locale: dict[str, int]
    previews: dict[str, Reply]
    quiet_until: datetime | None
    cost: dict[str, float] = field(default_factory=dict)  # channel → estimated cost
    currency: str = "KRW"

    @property
    def total_cost(self) -> float:
        return sum(self.cost.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    push_id: int
    name: str
    status: str
    audience: int  # known once fan-out is done; an estimate before
    enqueued: int
    counts: dict[str, int] = field(default_factory=dict)  # delivery status → count
    scheduled_at: datetime | None = None
    progress_ref: str | None = None

    @property
    def finished(self) -> int:
        return sum(self.counts.get(s, 0) for s in REPORT_STATUSES)

    @property
    def waiting(self) -> int:
        return sum(v for k, v in self.counts.items() if k not in REPORT_STATUSES)

    @property
    def share(self) -> float:
        return self.finished / self.audience if self.audience else 1.0 if self.done else 0.0

    @property
    def done(self) -> bool:
        return self.status in ("done", "cancelled")


class CampaignService:
    """What bots and the CLI use (``core.campaigns``); writes go through commands."""

    def __init__(self, core: Kernel, *, quiet: QuietHours) -> None:
        self.core = core
        self.quiet = quiet
        self._tick_lock = asyncio.Lock()

    # --- surveys -----------------------------------------------------------------------
    async def create_survey_from_yaml(self, text: str, *, actor: str) -> int:
        """Raises ``SurveyErrors`` (every problem with its line) or a domain error."""
        definition = parse_survey(text, tz=self.core.settings.tz, now=self.core.clock.now())
        survey_id = await self.core.execute(c.CreateSurvey(definition=definition, actor=actor))
        return int(survey_id)

    async def _survey_row(self, ref: int | str) -> Survey:
        async with self.core.db.read() as s:
            column = Survey.id if isinstance(ref, int) or str(ref).isdigit() else Survey.slug
            value = int(ref) if column is Survey.id else str(ref)
            row = (await s.execute(select(Survey).where(column == value))).scalar_one_or_none()
        if row is None:
            raise SurveyNotFound(str(ref), survey=ref)
        return row

    async def survey(self, ref: int | str) -> SurveyInfo:
        row = await self._survey_row(ref)
        return SurveyInfo(id=row.id, status=row.status, definition=load_definition(row),
                          ballots=row.ballot_count)

    async def has_voted(self, survey_id: int, person_id: int) -> bool:
        row = await self._survey_row(survey_id)
        if row.voter_salt is None:
            return False
        from core.adapters.orm_campaigns import Participation

        key = voter_key(row.voter_salt, row.id, person_id)
        async with self.core.db.read() as s:
            found = await s.execute(
                select(Participation.voter_key).where(
                    Participation.survey_id == row.id, Participation.voter_key == key
                )
            )
            return found.first() is not None

    async def invited(self, survey_id: int, person_id: int) -> bool:
        """Whether a push sent this (targeted) survey to this person."""
        from core.adapters.orm_campaigns import SurveyInvitation

        async with self.core.db.read() as s:
            found = await s.execute(
                select(SurveyInvitation.person_id).where(
                    SurveyInvitation.survey_id == survey_id,
                    SurveyInvitation.person_id == person_id,
                )
            )
            return found.first() is not None

    async def results(self, ref: int | str) -> Results:
        row = await self._survey_row(ref)
        async with self.core.db.read() as s:
            return await count_results(s, row)

    async def export_csv(self, ref: int | str) -> str:
        row = await self._survey_row(ref)
        async with self.core.db.read() as s:
            return await export_csv(s, row, tz=self.core.settings.tz)

    async def charts(
        self, results: Results, locale: str, *, first_only: bool = False
    ) -> list[bytes]:
        """Bar-chart PNGs of the results (made in a thread: matplotlib is slow)."""
        from core.charts import bar_chart

        series = chart_series(results, locale)[: 1 if first_only else None]
        return [
            await asyncio.to_thread(bar_chart, title, labels, values, horizontal=True)
            for title, labels, values in series
        ]

    # --- consent and topics ------------------------------------------------------------
    async def consent_of(self, person_id: int) -> bool | None:
        async with self.core.db.read() as s:
            return (
                await s.execute(
                    select(ConsentState.opted_in).where(ConsentState.person_id == person_id)
                )
            ).scalar_one_or_none()

    async def subscriptions_of(self, person_id: int) -> set[tuple[str, str]]:
        async with self.core.db.read() as s:
            rows = await s.execute(
                select(Subscription.kind, Subscription.topic).where(
                    Subscription.person_id == person_id
                )
            )
            return {(r.kind, r.topic) for r in rows}

    # --- pushes ------------------------------------------------------------------------
    async def _push_row(self, push_id: int) -> Push:
        async with self.core.db.read() as s:
            row = await s.get(Push, push_id)
        if row is None:
            raise PushNotFound(str(push_id), push=push_id)
        return row

    async def audience_size(self, segment: Segment) -> int:
        async with self.core.db.read() as s:
            stmt = select(func.count()).select_from(
                audience_persons(segment, unpushable=self.unpushable()).subquery()
            )
            return int((await s.execute(stmt)).scalar_one())

    async def dry_run(self, push_id: int) -> DryRun:
        push = await self._push_row(push_id)
        segment = Segment.from_json(push.segment)
        by_channel: dict[str, int] = {}
        by_locale: dict[str, int] = {}
        async with self.core.db.read() as s:
            survey = await s.get(Survey, push.survey_id) if push.survey_id else None
            after = 0
            while targets := await pick_targets(
                s, segment, after=after, limit=2000, unpushable=self.unpushable()
            ):
                for target in targets:
                    by_channel[target.channel] = by_channel.get(target.channel, 0) + 1
                    by_locale[target.locale] = by_locale.get(target.locale, 0) + 1
                after = targets[-1].person_id
        previews = {loc: render_push(push, survey, loc) for loc in ("ko", "en")}
        cost: dict[str, float] = {}
        currency = "KRW"
        for channel, count in by_channel.items():
            sender = self.core.senders.get(channel)
            if sender is not None and sender.capabilities.push_cost:
                cost[channel] = count * sender.capabilities.push_cost
                currency = sender.capabilities.cost_currency
        return DryRun(
            audience=sum(by_channel.values()), by_channel=by_channel, by_locale=by_locale,
            previews=previews, quiet_until=self.quiet.until(self.core.clock.now()),
            cost=cost, currency=currency,
        )

    def unpushable(self) -> list[str]:
        """Channels whose Sender cannot message a person unasked: no push goes there."""
        return [n for n, s in self.core.senders.items() if not s.capabilities.push]

    async def progress(self, push_id: int) -> Progress:
        push = await self._push_row(push_id)
        async with self.core.db.read() as s:
            rows = await s.execute(
                select(Delivery.status, func.count())
                .where(Delivery.push_id == push_id)
                .group_by(Delivery.status)
            )
            counts = {str(status): int(n) for status, n in rows.all()}
        audience = push.enqueued
        if not push.fanout_done and push.status in ("draft", "scheduled", "running", "paused"):
            audience = max(push.enqueued, await self.audience_size(Segment.from_json(push.segment)))
        return Progress(
            push_id=push.id, name=push.name, status=push.status, audience=audience,
            enqueued=push.enqueued, counts=counts, scheduled_at=push.scheduled_at,
            progress_ref=push.progress_ref,
        )

    async def pushes(self, *, limit: int = 20) -> list[Progress]:
        async with self.core.db.read() as s:
            ids = list((await s.execute(select(Push.id).order_by(Push.id.desc()).limit(limit)))
                       .scalars())
        return [await self.progress(i) for i in ids]

    # --- the clock's work: scheduled starts, fan-out, finishing, closing, quiet hours -----
    async def tick(self) -> None:
        """Idempotent; safe in several processes (each step is a conditional state change)."""
        async with self._tick_lock:
            now = self.core.clock.now()
            await self._start_due(now)
            await self._fan_out()
            await self._close_due(now)
            await self._publish_closed()
            until = self.quiet.until(now)
            if until is not None:
                await self.core.execute(c.HoldForQuietHours(until=until))

    async def _ids(self, stmt: Any) -> list[int]:
        async with self.core.db.read() as s:
            return [int(i) for i in (await s.execute(stmt)).scalars()]

    async def _start_due(self, now: datetime) -> None:
        due = select(Push.id).where(Push.status == "scheduled", Push.scheduled_at <= now)
        for push_id in await self._ids(due):
            try:
                await self.core.execute(c.StartPush(push_id=push_id, actor="scheduler"))
            except PushStateError:
                continue

    async def _fan_out(self) -> None:
        active = select(Push.id).where(Push.status == "running")
        for push_id in await self._ids(active):
            while await self.core.execute(c.FanOutPush(push_id=push_id, batch=FANOUT_BATCH)) >= 0:
                self.core.wake_workers()
            await self.core.execute(c.FinishPush(push_id=push_id))

    async def _close_due(self, now: datetime) -> None:
        due = select(Survey.id).where(Survey.status == "open", Survey.closes_at <= now)
        for survey_id in await self._ids(due):
            await self.core.execute(c.CloseSurvey(survey_id=survey_id))

    async def _publish_closed(self) -> None:
        closing = select(Survey.id).where(or_(Survey.status == "closing"))
        for survey_id in await self._ids(closing):
            results = await self.results(survey_id)
            try:
                charts = await self.charts(results, self.core.settings.default_locale,
                                           first_only=True)
            except Exception:  # a missing font must not keep results from people
                log.exception("chart for survey %s failed", survey_id)
                charts = []
            await self.core.execute(
                c.PublishResults(survey_id=survey_id, chart=charts[0] if charts else None)
            )
            self.core.wake_workers()

    # --- scheduling on core.scheduler --------------------------------------------------
    async def schedule(self) -> None:
        """Rebuild the exact-time jobs from the database (at start), plus a steady tick."""
        scheduler = self.core.scheduler
        scheduler.every("campaigns:tick", self.tick, seconds=15)
        surveys = select(Survey.id, Survey.closes_at).where(Survey.status == "open")
        pushes = select(Push.id, Push.scheduled_at).where(Push.status == "scheduled")
        async with self.core.db.read() as s:
            for kind, stmt in (("survey", surveys), ("push", pushes)):
                for row_id, when in (await s.execute(stmt)).all():
                    if when is not None:
                        self.at(f"campaigns:{kind}:{row_id}", when)

    def at(self, name: str, when: datetime) -> None:
        if when > self.core.clock.now():
            self.core.scheduler.at(name, self.tick, when)
