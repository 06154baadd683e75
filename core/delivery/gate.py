"""The hold on pushes: never before their time, never while a feature's gate (quiet hours) is
closed. A held push goes back to ``pending`` until then, the attempt not counted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from core.delivery.outbox import Claimed
from core.messages import ReplyKind

__all__ = ["PushGate", "hold_until"]

PushGate = Callable[[Claimed, datetime], "datetime | None"]
"""``(item, now) -> hold until`` (e.g. the end of quiet hours), or None to send now."""


def hold_until(item: Claimed, now: datetime, gate: PushGate | None) -> datetime | None:
    """When a claimed row may go, if not now (only pushes are ever held)."""
    if item.kind != ReplyKind.PUSH.value:
        return None
    if item.due_at is not None and item.due_at > now:
        return item.due_at
    return None if gate is None else gate(item, now)
