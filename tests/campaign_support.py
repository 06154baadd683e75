"""Helpers for the campaign tests: a recording channel, people with consent, a worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from core import commands as cc
from core.bootstrap import Core, bootstrap
from core.campaigns import commands as c
from core.delivery import DeliveryWorker
from core.messages import Reply
from core.ports import ChannelCapabilities, ChannelLimits
from tests.conftest import make_settings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "surveys"
SURVEY_YAML = (EXAMPLES / "transport-survey.yaml").read_text(encoding="utf-8")
POLL_YAML = (EXAMPLES / "library-hours-poll.yaml").read_text(encoding="utf-8")


@dataclass
class RecordingSender:
    """A channel that keeps what it was asked to send (the web inbox, seen from outside)."""

    channel: str = "web"
    capabilities: ChannelCapabilities = field(default_factory=ChannelCapabilities)
    limits: ChannelLimits = field(default_factory=lambda: ChannelLimits(per_second=10_000))
    sent: list[tuple[str, Reply]] = field(default_factory=list)

    async def send(self, address: str, reply: Reply, *, edit_ref: str | None = None) -> str:
        self.sent.append((address, reply))
        return str(len(self.sent))

    def to(self, address: str) -> list[Reply]:
        return [r for a, r in self.sent if a == address]


async def quiet_core(database_url: str, tmp_path: Path, clock: Any) -> Core:
    """A core with the default quiet hours on (21:00–08:00 Asia/Seoul)."""
    settings = make_settings(tmp_path, database_url=database_url,
                             quiet_hours_start=time(21, 0), quiet_hours_end=time(8, 0))
    return await bootstrap(settings, clock=clock)


def worker(core: Core) -> DeliveryWorker:
    return DeliveryWorker(db=core.db, senders=core.senders, clock=core.clock,
                          push_gate=core.delivery.push_gate, on_unreachable=core.mark_unreachable)


async def drain(core: Core) -> int:
    """Send everything that is due now; how many rows were handled."""
    w, total = worker(core), 0
    while count := await w.run_once():
        total += count
    return total


async def citizen(
    core: Core,
    name: str,
    *,
    channel: str = "web",
    consent: bool | None = True,
    topics: tuple[str, ...] = (),
    regions: tuple[str, ...] = (),
    locale: str = "ko",
) -> int:
    pid = int(await core.execute(cc.EnsureIdentity(channel=channel, external_id=name,
                                                   address=f"{channel}-{name}", locale=locale)))
    if consent is not None:
        await core.execute(c.SetConsent(person_id=pid, opted_in=consent, channel=channel,
                                        source="수신동의"))
    for topic in topics:
        await core.execute(c.SetSubscription(person_id=pid, kind="category", topic=topic, on=True))
    for region in regions:
        await core.execute(c.SetSubscription(person_id=pid, kind="region", topic=region, on=True))
    return pid
