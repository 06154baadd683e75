"""News at next contact: what a channel that cannot push keeps for the person's next message.

Notifications are queued for every reachable identity (``core.notifications``). Workers drain
only channels whose Sender may push (``core.delivery.pushable``); rows for the others stay
``pending`` in the outbox, durable and deduplicated like any delivery. When the person writes
again, the conversation engine asks ``waiting`` (a read, no lock) and, when there is news,
``CollectNews`` hands the messages over and marks them sent in one transaction, so a second
contact never repeats them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import func, select, update

from core.adapters.orm_delivery import Delivery
from core.commands import CollectNews, KeepNews
from core.messagebus import MessageBus
from core.messages import Reply, ReplyKind, reply_from_json
from core.unit_of_work import UnitOfWork

__all__ = [
    "MAX_AT_CONTACT",
    "CollectNews",
    "KeepNews",
    "collect_news",
    "keep_news",
    "register",
    "waiting",
]

MAX_AT_CONTACT = 20  # messages handed over at one contact; the rest at the next
_KINDS = (ReplyKind.NOTIFICATION.value, ReplyKind.PUSH.value)


def _waiting_rows(channel: str, address: str) -> Any:
    return (
        Delivery.channel == channel,
        Delivery.address == address,
        Delivery.status == "pending",
        Delivery.kind.in_(_KINDS),
    )


async def waiting(db: Any, channel: str, address: str, *, now: Any) -> int:
    """How many messages wait for this address (due ones only: a push held for quiet hours
    is not news yet)."""
    async with db.read() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(*_waiting_rows(channel, address), Delivery.next_attempt_at <= now)
        )
    return int(count or 0)


async def collect_news(cmd: CollectNews, uow: UnitOfWork) -> list[Reply]:
    now = uow.now()
    rows = (
        await uow.session.execute(
            select(Delivery.id, Delivery.payload)
            .where(*_waiting_rows(cmd.channel, cmd.address), Delivery.next_attempt_at <= now)
            .order_by(Delivery.id)
            .limit(MAX_AT_CONTACT)
        )
    ).all()
    if not rows:
        return []
    await uow.session.execute(
        update(Delivery)
        .where(Delivery.id.in_([r.id for r in rows]), Delivery.status == "pending")
        .values(status="sent", sent_at=now, message_ref="at-contact", lease_until=None,
                lease_owner=None)
    )
    return [replace(reply_from_json(r.payload), kind=ReplyKind.CONVERSATION) for r in rows]


async def keep_news(cmd: KeepNews, uow: UnitOfWork) -> int:
    from core.delivery import DeliveryRepository, Outgoing

    items = [
        Outgoing(
            dedupe_key=f"kept:{cmd.channel}:{cmd.key}:{n}"[:200],
            channel=cmd.channel,
            address=cmd.address,
            reply=replace(reply, kind=ReplyKind.NOTIFICATION),
        )
        for n, reply in enumerate(cmd.replies)
    ]
    return await uow.repo(DeliveryRepository).enqueue_many(items, now=uow.now())


def register(bus: MessageBus) -> None:
    """The two news commands on the bus."""
    bus.register(CollectNews, collect_news)
    bus.register(KeepNews, keep_news)
