"""Immediate answers: conversation replies sent now, ahead of bulk work, within the same limits."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from core.delivery.worker import UnreachableHook
from core.messages import Reply
from core.outbox import Backoff
from core.ports import RetryLater, Sender, TransientSendError, Unreachable
from core.ratelimit import Pacer

__all__ = ["Outbound"]

RETRY = Backoff(base=0.2, cap=1.6)  # a transient error while someone waits: 0.2 s … 1.6 s


class Outbound:
    """Immediate answers to what a person just did, sent ahead of bulk work.

    Channels call ``send_now`` for conversation replies. Each send takes its tokens from the
    same limits as the workers, as *urgent*: a push in progress yields the next place to it.
    It honours ``RetryLater`` a few times and reports an unreachable person.
    """

    def __init__(
        self,
        senders: Mapping[str, Sender],
        *,
        on_unreachable: UnreachableHook | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.senders = senders
        self.on_unreachable = on_unreachable
        self.pacer = pacer

    async def _send(self, channel: str, address: str, reply: Reply, ref: str | None) -> str | None:
        if self.pacer is None:
            return await self.senders[channel].send(address, reply, edit_ref=ref)
        grant = await self.pacer.acquire(channel, address, urgent=True)
        try:
            return await self.senders[channel].send(address, reply, edit_ref=ref)
        finally:
            await self.pacer.settle(grant)

    async def send_now(
        self, channel: str, address: str, replies: Sequence[Reply], *, edit_ref: str | None = None
    ) -> list[str | None]:
        refs: list[str | None] = []
        for index, reply in enumerate(replies):
            ref = edit_ref if (index == 0 and reply.edit) else None
            for attempt in range(5):
                try:
                    refs.append(await self._send(channel, address, reply, ref))
                    break
                except RetryLater as exc:
                    if self.pacer is not None:
                        await self.pacer.back_off(
                            channel, address, exc.retry_after, scope=getattr(exc, "scope", None)
                        )
                    else:
                        await asyncio.sleep(min(exc.retry_after, 30.0))
                    if attempt == 4:
                        raise
                except TransientSendError:
                    if attempt == 4:
                        raise
                    await asyncio.sleep(RETRY.delay(attempt + 1).total_seconds())
                except Unreachable as exc:
                    if self.on_unreachable is not None:
                        await self.on_unreachable(channel, address, str(exc)[:200])
                    return refs
        return refs
