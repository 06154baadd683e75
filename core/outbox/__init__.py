"""One leased queue for every outbox: lease columns, claim/renew/finish/release, one Backoff,
work sources (database or Redis Streams) and one polling loop; queues add ordering and dispatch.

See ``docs/architecture.md`` ("Queues") for how deliveries, the Slack board outbox and the forum
outbox plug in.
"""

from core.outbox.backoff import Backoff
from core.outbox.loop import PollingLoop, keep_leases, settle, wait_for_event
from core.outbox.queue import LeasedQueue
from core.outbox.source import DatabaseSource, Leased, StreamQueue, WorkSource

__all__ = [
    "Backoff",
    "DatabaseSource",
    "Leased",
    "LeasedQueue",
    "PollingLoop",
    "StreamQueue",
    "WorkSource",
    "keep_leases",
    "settle",
    "wait_for_event",
]
