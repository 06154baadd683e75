"""Issue 2's "Done when" through the web chat's JSON API alone, on the real server and engine.

A citizen submits a proposal (with a photo), gets a P-YYYY-NNNNNN number, finds it under "my
proposals" after a server restart, supports and follows it and leaves feedback; an official's
status change reaches the page over SSE through the delivery worker; bad input never loses the
draft. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from bots.server import CORE, create_app
from core.commands import ChangeStatus
from core.config import Settings
from core.domain.model import ProposalStatus
from tests.conftest import make_settings

TRACKING = re.compile(r"P-\d{4}-\d{6}")
def _png() -> bytes:
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new("RGB", (16, 12), (30, 90, 200)).save(out, format="PNG")
    return out.getvalue()


PNG = _png()  # a real picture: uploads are decoded and re-encoded


class Citizen:
    """One browser talking to ``/webchat/*``: remembers its token and the last replies."""

    def __init__(self, client: TestClient, token: str | None = None) -> None:
        self.client = client
        self.token = token
        self.replies: list[dict[str, Any]] = []

    @property
    def text(self) -> str:
        return "\n".join(r["text"] for r in self.replies)

    @property
    def choices(self) -> list[str]:
        return [c["id"] for r in self.replies for c in r["choices"]]

    async def open(self, **body: Any) -> Citizen:
        if self.token:
            body["session"] = self.token
        resp = await self.client.post("/webchat/session", json=body)
        assert resp.status == 200, await resp.text()
        data = await resp.json()
        self.token = data["session"]
        self.replies = data["replies"]
        return self

    async def _post(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        resp = await self.client.post("/webchat/message", json={"session": self.token, **body})
        assert resp.status == 200, await resp.text()
        self.replies = (await resp.json())["replies"]
        return self.replies

    async def say(self, text: str) -> list[dict[str, Any]]:
        return await self._post({"text": text})

    async def pick(self, choice_id: str) -> list[dict[str, Any]]:
        """Press a button that is on screen (failing if it is not offered)."""
        assert choice_id in self.choices, (choice_id, self.choices)
        return await self._post({"choice": choice_id})

    async def upload(self, data: bytes) -> list[dict[str, Any]]:
        form = FormData()
        form.add_field("session", self.token or "")
        form.add_field("file", data, filename="bus-stop.png", content_type="image/png")
        resp = await self.client.post("/webchat/upload", data=form)
        assert resp.status == 200, await resp.text()
        self.replies = (await resp.json())["replies"]
        return self.replies


@asynccontextmanager
async def server(settings: Settings) -> AsyncIterator[TestClient]:
    """The whole gongnon server (bootstrap, engine, mounts, workers) on a free port."""
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def next_event(resp: Any, wait: float = 10.0) -> dict[str, Any]:
    while True:
        raw = await asyncio.wait_for(resp.content.readline(), wait)
        assert raw, "the event stream ended"
        line = raw.decode().rstrip("\n")
        if line.startswith("data: "):
            return json.loads(line[len("data: ") :])  # type: ignore[no-any-return]


def e2e_settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path, database_url=database_url, run_workers=True, web_sse_heartbeat_seconds=1.0,
        web_sse_poll_seconds=0.5,
    )


async def submit_proposal(citizen: Citizen) -> str:
    await citizen.pick("menu:submit")
    await citizen.say("버스 정류장에 그늘막을 설치해 주세요")
    await citizen.say(
        "여름마다 버스를 기다리는 어르신들이 햇볕 아래 오래 서 계십니다. 그늘막이 필요합니다."
    )
    if "sim:new" in citizen.choices:  # a similar proposal exists: write a new one anyway
        await citizen.pick("sim:new")
    await citizen.pick("cat:transport")
    await citizen.say("서울")  # region, photo and location share one optional step
    await citizen.upload(PNG)  # the page's photo button
    await citizen.pick("ext:done")
    assert "rev:confirm" in citizen.choices
    await citizen.pick("rev:confirm")
    found = TRACKING.search(citizen.text)
    assert found, citizen.text
    return found.group(0)


async def test_citizen_journey_survives_a_restart(tmp_path: Path, database_url: str) -> None:
    settings = e2e_settings(tmp_path, database_url)
    async with server(settings) as client:
        health = await client.get("/healthz")
        assert health.status == 200
        report = await health.json()
        assert report["versions"]["app"] and report["versions"]["schema"]
        assert report["checks"]["webchat"]["status"] == "ok"
        author = await Citizen(client).open()
        assert "menu:submit" in author.choices
        tracking = await submit_proposal(author)
        view = await client.app[CORE].views.proposal(tracking)
        assert view is not None and view.title == "버스 정류장에 그늘막을 설치해 주세요"
        assert [a.kind for a in view.attachments] == ["photo"]
        assert view.attachments[0].ref and view.attachments[0].ref.startswith("web:")
    token = author.token

    async with server(settings) as client:  # a new process on the same database
        author = await Citizen(client, token).open()
        await author.pick("menu:mine")
        assert tracking in author.text
        await author.pick(f"p:{tracking}:show")
        await author.pick(f"p:{tracking}:support")
        await author.pick(f"p:{tracking}:unfollow")
        await author.pick(f"p:{tracking}:follow")
        await author.pick(f"p:{tracking}:feedback")
        await author.say("정류장 위치는 시청 앞입니다.")
        core = client.app[CORE]
        view = await core.views.proposal(tracking)
        assert view is not None and view.support_count == 1 and view.follower_count == 1
        assert [f.body for f in view.feedback] == ["정류장 위치는 시청 앞입니다."]
        person = (await core.views.relation(view.author_id, tracking))
        assert person.is_author and person.supporting and person.following

        # Someone else finds it by number (typed), supports it too.
        neighbour = await Citizen(client).open(locale="en")
        await neighbour.say(tracking.lower())
        assert tracking in neighbour.text
        await neighbour.pick(f"p:{tracking}:support")
        view = await core.views.proposal(tracking)
        assert view is not None and view.support_count == 2


async def test_status_change_reaches_open_pages_and_closed_ones(
    tmp_path: Path, database_url: str
) -> None:
    settings = e2e_settings(tmp_path, database_url)
    async with server(settings) as client:
        author = await Citizen(client).open()
        tracking = await submit_proposal(author)
        follower = await Citizen(client).open(locale="en")
        await follower.say(tracking)
        await follower.pick(f"p:{tracking}:follow")

        stream = await client.get("/webchat/events", params={"session": author.token})
        assert stream.status == 200
        await client.app[CORE].execute(
            ChangeStatus(
                tracking=tracking,
                status=ProposalStatus.UNDER_REVIEW,
                reason="담당 부서에서 현장을 확인하고 있습니다.",
                actor="slack:U0OFFICIAL",
                source="slack",
            )
        )
        event = await next_event(stream)
        pushed = event["replies"][0]
        assert pushed["kind"] == "notification"
        assert tracking in pushed["text"] and "검토 중" in pushed["text"]
        assert "담당 부서에서 현장을 확인하고 있습니다." in pushed["text"]
        assert f"p:{tracking}:show" in [c["id"] for c in pushed["choices"]]
        stream.close()

        # The follower had no page open: the message waits and arrives on the next connect,
        # in the follower's language.
        later = await client.get(
            "/webchat/events", params={"session": follower.token, "after": "0"}
        )
        event = await next_event(later)
        assert tracking in event["replies"][0]["text"]
        assert "Under review" in event["replies"][0]["text"]
        later.close()

        # The notification's button works from the page (a pushed button is a normal choice).
        author.replies = [pushed]
        await author.pick(f"p:{tracking}:show")
        assert tracking in author.text and "검토 중" in author.text


async def test_bad_input_is_refused_politely_and_the_draft_survives(
    tmp_path: Path, database_url: str
) -> None:
    settings = e2e_settings(tmp_path, database_url)
    async with server(settings) as client:
        citizen = await Citizen(client).open()
        await citizen.pick("menu:submit")
        await citizen.say("어린이 보호구역 과속 단속 카메라")
        asked_for_body = citizen.text

        for body, status in (
            (b"{oops", 400),
            (json.dumps({"session": citizen.token, "text": "가" * 10_000}).encode(), 400),
            (json.dumps({"session": citizen.token, "text": "   "}).encode(), 400),
            (json.dumps({"session": citizen.token, "text": "\x00\x01"}).encode(), 400),
            (json.dumps({"session": "forged", "text": "안녕하세요"}).encode(), 401),
            (json.dumps({"session": citizen.token}).encode(), 400),
        ):
            resp = await client.post(
                "/webchat/message", data=body, headers={"Content-Type": "application/json"}
            )
            assert resp.status == status
            error = (await resp.json())["error"]
            assert error["message"] and re.search("[가-힣]", error["message"])

        # A stale button from an old screen gets a hint, not an error; the draft is intact.
        replies = await citizen._post({"choice": "rev:confirm"})
        assert replies and replies[-1]["text"]
        await citizen.say(
            "학교 앞 도로에서 과속하는 차량이 많아 아이들이 위험합니다. 단속 카메라가 필요합니다."
        )
        assert "cat:education" in citizen.choices, (asked_for_body, citizen.text)
        await citizen.pick("cat:education")
        await citizen.pick("ext:done")
        assert "어린이 보호구역 과속 단속 카메라" in citizen.text
