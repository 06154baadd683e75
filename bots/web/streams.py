"""Caps on open event streams: per session, per client address and in all (this process).

A stream holds a connection, hence a file descriptor, for as long as the browser keeps it; the
caps keep streams from taking the descriptors that the chat and ``/healthz`` need. Beyond a cap
the stream is refused with 429 and ``Retry-After`` (browsers' ``EventSource`` retries later).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["StreamCaps", "StreamsFull"]

RETRY_AFTER = 30  # seconds: a place frees only when another stream ends


class StreamsFull(Exception):
    """No room for another stream; ``scope`` is ``session``, ``address`` or ``total``."""

    def __init__(self, scope: str, retry_after: int = RETRY_AFTER) -> None:
        super().__init__(scope)
        self.scope = scope
        self.retry_after = retry_after


class StreamCaps:
    """Counts the open streams of this process by session and by client address."""

    def __init__(self, *, per_session: int, per_address: int, total: int) -> None:
        self.per_session = per_session
        self.per_address = per_address
        self.total = total
        self.open = 0
        self.refused: Counter[str] = Counter()
        self._sessions: Counter[str] = Counter()
        self._addresses: Counter[str] = Counter()

    def _scope_full(self, session: str, address: str) -> str | None:
        if self._sessions[session] >= self.per_session:
            return "session"
        if self._addresses[address] >= self.per_address:
            return "address"
        if self.open >= self.total:
            return "total"
        return None

    @contextmanager
    def hold(self, session: str, address: str) -> Iterator[None]:
        """A place for one stream while the block runs; raises ``StreamsFull`` when none."""
        scope = self._scope_full(session, address)
        if scope is not None:
            self.refused[scope] += 1
            raise StreamsFull(scope)
        self.open += 1
        self._sessions[session] += 1
        self._addresses[address] += 1
        try:
            yield
        finally:
            self.open -= 1
            for table, key in ((self._sessions, session), (self._addresses, address)):
                table[key] -= 1
                if table[key] <= 0:
                    del table[key]

    def stats(self) -> dict[str, Any]:
        return {"open": self.open, "cap": self.total, "refused": dict(self.refused)}
