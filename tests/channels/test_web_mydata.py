""""My data" on the web chat: the reply carries a link; the file is served to its session only."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bots.server import conversation_engine
from bots.web.routes import WebMount
from core import commands as cc
from core.bootstrap import Core


@pytest.fixture
async def client(core: Core) -> AsyncIterator[TestClient]:
    app = web.Application()
    mount = WebMount(core.settings)
    mount.routes(app)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await mount.start(app, core, conversation_engine(core))
        yield
        await mount.stop(app)

    app.cleanup_ctx.append(lifetime)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _session(client: TestClient) -> str:
    resp = await client.post("/webchat/session", json={})
    assert resp.status == 200
    return str((await resp.json())["session"])


async def test_download_link_serves_only_my_data(client: TestClient, core: Core) -> None:
    mine, theirs = await _session(client), await _session(client)
    resp = await client.post("/webchat/message", json={"session": mine, "choice": "mydata:main"})
    assert resp.status == 200
    identity = await core.views.identity("web", hashlib.sha256(mine.encode()).hexdigest())
    assert identity is not None
    await core.execute(cc.SubmitProposal(
        person_id=identity.person_id, title="공원 가로등 설치",
        body="밤에 공원이 너무 어둡습니다. 가로등이 필요해요.", category="environment"))
    resp = await client.post("/webchat/message",
                             json={"session": mine, "choice": "mydata:download"})
    replies = (await resp.json())["replies"]
    links = [r["download"] for r in replies if "download" in r]
    assert links == [{"name": "gongnon-mydata.json", "url": "/webchat/mydata"}]
    assert all("data" not in r for r in replies)  # never the bytes in the chat JSON

    got = await client.get("/webchat/mydata", params={"session": mine})
    assert got.status == 200
    assert "attachment" in got.headers["Content-Disposition"]
    assert got.headers["Cache-Control"] == "no-store"
    data = await got.json()
    assert [p["title"] for p in data["proposals"]] == ["공원 가로등 설치"]

    other = await client.get("/webchat/mydata", params={"session": theirs})
    assert other.status == 200 and (await other.json())["proposals"] == []
    assert (await client.get("/webchat/mydata")).status == 400
    assert (await client.get("/webchat/mydata", params={"session": "x" * 40})).status == 401
