"""The daily summary of a discussion: at most one message a day per person, telling the author
and followers how many new opinions came (by stance) and the writers how many replies.

``send_daily_summaries`` runs once a day on the one scheduler (``core.once`` keeps it to one
process); each delivery's key names the day and the address, so a second run queues nothing.
Deliveries are notifications (not campaign pushes), held until quiet hours end. Following a
proposal (or writing it, or an opinion on it) is what asks for the summary; a person who said
STOP to messages (an explicit ``opted_in = false`` in the consent ledger) gets none. A person with
several identities gets one summary, on the identity they reached us by first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from core.adapters.orm_campaigns import ConsentState
from core.commands import Command
from core.delivery import DeliveryRepository
from core.i18n import t
from core.messagebus import MessageBus
from core.messages import Choice, Reply, ReplyKind
from core.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from core.bootstrap import Core  # reads core.discussions, a Core attribute

__all__ = ["SendDiscussionSummaries", "register", "render_summary"]

PROPOSALS_LISTED = 5
BUTTONS = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class SendDiscussionSummaries(Command):
    """Queue one summary per person for ``day`` (``news`` from ``DeliberationViews.news_since``)."""

    day: str  # YYYY-MM-DD, local
    news: dict[int, dict[str, Any]]
    not_before: datetime | None = None  # quiet hours: hold until then


def render_summary(news: dict[str, Any], locale: str) -> Reply | None:
    proposals: dict[str, dict[str, Any]] = news.get("proposals", {})
    replies = int(news.get("replies", 0))
    if not proposals and not replies:
        return None
    lines = [t("disc.summary.title", locale)]
    busiest = sorted(proposals.items(), key=lambda kv: (-kv[1]["count"], kv[0]))
    for tracking, entry in busiest[:PROPOSALS_LISTED]:
        lines.append(t("disc.summary.line", locale, title=entry["title"], tracking=tracking,
                       count=entry["count"], **{"for": entry["for"]},
                       against=entry["against"], other=entry["other"]))
    if len(busiest) > PROPOSALS_LISTED:
        lines.append(t("disc.summary.more", locale, count=len(busiest) - PROPOSALS_LISTED))
    if replies:
        lines.append(t("disc.summary.replies", locale, count=replies))
    choices = tuple(
        Choice(id=f"d:{tracking}:list", label=t("disc.summary.open", locale, tracking=tracking))
        for tracking, _ in busiest[:BUTTONS]
    )
    return Reply(text="\n".join(lines), choices=choices, kind=ReplyKind.NOTIFICATION,
                 meta={"event": "discussion_summary"})


async def send_summaries(cmd: SendDiscussionSummaries, uow: UnitOfWork) -> int:
    deliveries = uow.repo(DeliveryRepository)
    people = set(cmd.news)
    stopped = set((await uow.session.execute(
        select(ConsentState.person_id).where(ConsentState.person_id.in_(people),
                                             ConsentState.opted_in.is_(False)))).scalars())
    queued = 0
    told: set[int] = set()
    for recipient in await uow.persons.recipients(people - stopped):
        if recipient.person_id in told:  # one message per person and day
            continue
        reply = render_summary(cmd.news[recipient.person_id], recipient.locale or "ko")
        if reply is None:
            continue
        told.add(recipient.person_id)
        queued += int(await deliveries.enqueue(
            dedupe_key=f"disc-summary:{cmd.day}:person:{recipient.person_id}",
            channel=recipient.channel, address=recipient.address, reply=reply,
            person_id=recipient.person_id, now=uow.now(), not_before=cmd.not_before,
        ))
    return queued


async def send_daily_summaries(
    core: Core, *, quiet_until: Callable[[datetime], datetime | None] | None = None
) -> int:
    """Tell everyone about the last day's opinions; once per day across processes."""
    now = core.clock.now()
    day = now.astimezone(core.settings.tz).date().isoformat()
    if not await core.once(f"disc-summary:{day}"):
        return 0
    news = await core.discussions.news_since(now - timedelta(days=1), now)
    if not news:
        return 0
    hold = quiet_until(now) if quiet_until is not None else None
    count = await core.execute(SendDiscussionSummaries(day=day, news=news, not_before=hold))
    core.wake_workers()
    return int(count)


def register(bus: MessageBus) -> None:
    bus.register(SendDiscussionSummaries, send_summaries)
