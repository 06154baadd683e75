"""Test harness for the Slack mount: a core wired to the fake Slack, and signed requests
sent through the real route and Bolt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bots.slack.routes import SlackMount
from core import commands as c
from core.adapters.orm_officials import OfficialAudit, OfficialOutbox, OfficialPost
from core.bootstrap import Core, bootstrap
from core.config import Settings
from core.officials import Officials
from tests.conftest import make_settings
from tests.fakes.slack_api import SECRET, TOKEN, FakeSlack, sign
from tests.support import ManualClock

OFFICIAL = "UOFFICIAL1"
STRANGER = "USTRANGER9"
TRIAGE = "CTRIAGE"
DIGEST = "CDIGEST"


def slack_settings(tmp_path: Path, database_url: str, slack: FakeSlack, **over: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "slack_bot_token": TOKEN,
        "slack_signing_secret": SECRET,
        "slack_api_url": slack.api_url,
        "slack_triage_channel": TRIAGE,
        "slack_digest_channel": DIGEST,
        "slack_officials": OFFICIAL,
        "slack_channel_rate_per_second": 1000.0,
    }
    values.update(over)
    return make_settings(tmp_path, **values)


@asynccontextmanager
async def slack_core(settings: Settings, clock: ManualClock) -> AsyncIterator[Core]:
    core = await bootstrap(settings, clock=clock)
    try:
        yield core
    finally:
        await core.stop()


@dataclass
class Harness:
    core: Core
    slack: FakeSlack
    mount: SlackMount
    client: TestClient

    @property
    def officials(self) -> Officials:
        return self.core.officials

    async def post(self, body: str, content_type: str, *, timestamp: int | None = None,
                   secret: str = SECRET, headers: dict[str, str] | None = None) -> ClientResponse:
        signed = sign(body, secret=secret, timestamp=timestamp)
        return await self.client.post(
            "/slack/events", data=body.encode(),
            headers={"Content-Type": content_type, **signed, **(headers or {})},
        )

    async def settle(self) -> None:
        """Let work after acks, after-commit subscribers and the board queue finish."""
        assert self.mount.listeners is not None
        for _ in range(3):
            await self.mount.listeners.drain()
            await self.core.bus.drain()
            worker = self.officials.worker
            assert worker is not None
            await worker.run_until_idle()

    async def audit(self) -> list[OfficialAudit]:
        async with self.core.db.read() as s:
            rows = await s.execute(select(OfficialAudit).order_by(OfficialAudit.id))
            return list(rows.scalars())

    async def queue(self) -> list[OfficialOutbox]:
        async with self.core.db.read() as s:
            rows = await s.execute(select(OfficialOutbox).order_by(OfficialOutbox.id))
            return list(rows.scalars())

    async def post_row(self, proposal_id: int) -> OfficialPost | None:
        async with self.core.db.read() as s:
            return await s.get(OfficialPost, proposal_id)


@asynccontextmanager
async def harness(core: Core, slack: FakeSlack) -> AsyncIterator[Harness]:
    mount = SlackMount(core.settings)
    app = web.Application()
    mount.routes(app)
    await mount.start(app, core)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Harness(core=core, slack=slack, mount=mount, client=client)
    finally:
        await client.close()
        await mount.stop(app)


async def citizen(core: Core, name: str, *, channel: str = "web", locale: str = "ko") -> int:
    return await core.execute(  # type: ignore[no-any-return]
        c.EnsureIdentity(channel=channel, external_id=name, address=f"addr-{name}", locale=locale)
    )


async def propose(core: Core, person_id: int, *, title: str = "버스 정류장 그늘막 설치",
                  body: str = "여름에 버스를 기다리는 시민들이 햇볕에 너무 오래 노출됩니다.",
                  category: str = "transport") -> str:
    return await core.execute(  # type: ignore[no-any-return]
        c.SubmitProposal(person_id=person_id, title=title, body=body, category=category,
                         region="seoul")
    )
