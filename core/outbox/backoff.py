"""The one retry schedule of every queue: exponential, capped, jittered."""

from __future__ import annotations

import random
from datetime import timedelta

__all__ = ["Backoff"]


class Backoff:
    """How long to wait after the ``n``-th failed attempt (``n`` = 1, 2, …):

    ``delay(n) = min(cap, base · 2^(n−1)) · u``, ``u`` uniform in [½, 1).

    The cap bounds the wait; the jitter (“equal jitter”) spreads the retries of many rows that
    failed together (a platform outage) so they do not all come back in the same second, while
    never waiting less than half the step. Deliveries use ``base=2, cap=300`` (2 s, 4 s, … 5 min),
    the Slack board ``base=2, cap=600``, the forum relay its settings.
    """

    __slots__ = ("_random", "base", "cap")

    def __init__(
        self, *, base: float = 2.0, cap: float = 300.0, rng: random.Random | None = None
    ) -> None:
        if base <= 0 or cap <= 0:
            raise ValueError("Backoff needs a positive base and cap")
        self.base = base
        self.cap = cap
        self._random = rng or random.Random()  # noqa: S311 - jitter, not security

    def step(self, attempts: int) -> float:
        """The un-jittered wait in seconds (the upper bound of ``delay``)."""
        return min(self.cap, self.base * 2.0 ** min(max(attempts - 1, 0), 62))

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=self.step(attempts) * (0.5 + self._random.random() / 2))
