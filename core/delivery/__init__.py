"""The delivery engine: a durable outbox and the workers that drain it at the platforms' limits.

Every message that is not an immediate answer goes through ``deliveries``: one row per
recipient, unique on a logical ``dedupe_key`` so a retried enqueue never sends twice.

States: ``pending`` (due at ``next_attempt_at``) → ``sending`` (leased by one worker until
``lease_until``) → ``sent`` | ``failed`` | ``unreachable`` | ``opted_out`` | ``cancelled``;
campaigns move unsent push rows to ``held``/``cancelled``/``opted_out`` and back. A ``pending``
row with a lease is sitting in a Redis stream (see ``core.adapters.redis_streams``).

The modules, one concern each:

- ``enqueue``: the write side handlers use (``DeliveryRepository``, ``Outgoing``, reports);
- ``outbox``: what a worker holds (``Claimed``, ``Outcome``) and its leased SQL, the
  deliveries' ordering plugged into ``core.outbox.LeasedQueue``;
- ``pacing``: a worker's pacing line per channel through the shared sliding-window limits;
- ``outcomes``: what a send came to, and the group commit that writes outcomes;
- ``gate``: pushes held until their time and while a feature's gate (quiet hours) is closed;
- ``worker``: ``DeliveryWorker``, the pipeline tying them together;
- ``outbound``: ``Outbound.send_now``, immediate answers within the same limits;
- ``engine``: one process's limits, pacer and worker factory (database or Redis Streams).
"""

from core.delivery.engine import DeliveryEngine
from core.delivery.enqueue import (
    FINAL_STATUSES,
    PRIORITY,
    DeliveryRepository,
    Outgoing,
    push_report,
)
from core.delivery.gate import PushGate
from core.delivery.outbound import Outbound
from core.delivery.outbox import LEASE, Claimed, Outbox, Outcome
from core.delivery.worker import DeliveryWorker, UnreachableHook, pushable
from core.outbox import WorkSource

__all__ = [
    "FINAL_STATUSES",
    "LEASE",
    "PRIORITY",
    "Claimed",
    "DeliveryEngine",
    "DeliveryRepository",
    "DeliveryWorker",
    "Outbound",
    "Outbox",
    "Outcome",
    "Outgoing",
    "PushGate",
    "UnreachableHook",
    "WorkSource",
    "push_report",
    "pushable",
]
