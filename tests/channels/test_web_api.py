"""The web chat mount over real HTTP (aiohttp test server), with a recording fake engine.

Covers the JSON API's shapes, sessions by token hash, every kind of bad input, uploads, the page,
the SSE stream (push, resume, replay on the next connect, heartbeats) and the web Sender. Runs on
SQLite and PostgreSQL through the ``core`` fixture.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bots.web.routes import WebMount
from bots.web.sender import WebSender
from conversations.incoming import Command, Inbound, Location, Photo, Picked, Text
from core.adapters.orm_delivery import Delivery
from core.adapters.orm_web import WebSessionRow
from core.bootstrap import Core
from core.delivery import DeliveryRepository, DeliveryWorker
from core.i18n import t
from core.messages import Choice, Image, Reply, ReplyKind
from core.ports import Unreachable
from core.unit_of_work import UnitOfWork
from tests.support import eventually


def _png() -> bytes:
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


PNG = _png()


class RecordingEngine:
    """A fake conversation engine: answers predictably and remembers every inbound."""

    def __init__(self) -> None:
        self.seen: list[Inbound] = []
        self.fail_with: Exception | None = None
        self.photo_step = True  # whether the conversation is at a step that asks for a photo

    async def accepts_photo(self, channel: str, user_id: str) -> bool:
        return self.photo_step

    async def handle(self, inbound: Inbound) -> list[Reply]:
        self.seen.append(inbound)
        if self.fail_with is not None:
            raise self.fail_with
        payload = inbound.payload
        if isinstance(payload, Command):
            return [
                Reply(
                    text=f"안녕하세요 ({payload.name})",
                    heading="공론",
                    choices=(Choice("menu:submit", "제안하기"), Choice("menu:mine", "내 제안")),
                )
            ]
        if isinstance(payload, Text):
            return [Reply(text=f"받았습니다: {payload.text}")]
        if isinstance(payload, Picked):
            return [Reply(text=f"고르셨습니다: {payload.choice_id}")]
        if isinstance(payload, Photo):
            return [Reply(text="사진을 받았습니다", image=Image(ref=payload.ref, alt="사진"))]
        if isinstance(payload, Location):
            return [Reply(text=f"위치 {payload.latitude:.3f},{payload.longitude:.3f}")]
        return [Reply(text="?")]


@pytest.fixture
def engine() -> RecordingEngine:
    return RecordingEngine()


@pytest.fixture
async def client(core: Core, engine: RecordingEngine) -> AsyncIterator[TestClient]:
    core.settings.web_sse_heartbeat_seconds = 0.3
    core.settings.web_sse_poll_seconds = 0.2
    app = web.Application()
    mount = WebMount(core.settings)
    mount.routes(app)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await mount.start(app, core, engine)
        yield
        await mount.stop(app)

    app.cleanup_ctx.append(lifetime)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def open_session(client: TestClient, **body: Any) -> tuple[str, dict[str, Any]]:
    resp = await client.post("/webchat/session", json=body)
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    return data["session"], data


# --- sessions --------------------------------------------------------------------------


async def test_session_greets_and_stores_only_the_token_hash(
    client: TestClient, core: Core, engine: RecordingEngine
) -> None:
    token, data = await open_session(client)
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", token)
    assert data["locale"] == "ko"
    assert data["replies"] == [
        {
            "text": "안녕하세요 (start)",
            "heading": "공론",
            "choices": [
                {"id": "menu:submit", "label": "제안하기"},
                {"id": "menu:mine", "label": "내 제안"},
            ],
            "kind": "conversation",
        }
    ]
    digest = hashlib.sha256(token.encode()).hexdigest()
    inbound = engine.seen[0]
    assert inbound.channel == "web" and inbound.user_id == digest and inbound.address == digest
    assert inbound.payload == Command("start", "")
    async with core.db.read() as s:
        ids = list((await s.execute(select(WebSessionRow.id))).scalars())
    assert ids == [digest] and token not in ids


async def test_resume_deep_link_and_quiet_resume(
    client: TestClient, engine: RecordingEngine
) -> None:
    token, _ = await open_session(client)
    again, data = await open_session(client, session=token, start="p_P-2026-000001")
    assert again == token
    assert engine.seen[-1].payload == Command("start", "p_P-2026-000001")
    assert engine.seen[-1].user_id == engine.seen[0].user_id
    calls = len(engine.seen)
    _, quiet = await open_session(client, session=token, greet=False)
    assert quiet["replies"] == [] and len(engine.seen) == calls


async def test_switching_language_goes_through_the_language_flow(
    client: TestClient, engine: RecordingEngine
) -> None:
    token, _ = await open_session(client)
    _, data = await open_session(client, session=token, locale="en")
    assert data["locale"] == "en"
    assert [i.payload for i in engine.seen[-1:]] == [Picked("lang:en")]
    assert engine.seen[-1].locale == "en"
    resp = await client.post("/webchat/message", json={"session": token, "text": " "})
    assert (await resp.json())["error"]["message"] == t("web.error.empty_text", "en")
    _, data = await open_session(client, locale="en")  # a new session, in English from the start
    assert data["locale"] == "en" and engine.seen[-1].locale == "en"
    assert engine.seen[-1].payload == Command("start", "")


async def test_sessions_expire_unless_used(client: TestClient, core: Core, clock: Any) -> None:
    token, _ = await open_session(client)
    clock.advance(days=core.settings.web_session_idle_days + 1)
    resp = await client.post("/webchat/message", json={"session": token, "text": "안녕하세요"})
    assert resp.status == 401
    body = await resp.json()
    assert body["error"] == {
        "code": "unknown_session",
        "message": t("web.error.unknown_session", "ko"),
    }
    # Use keeps a session alive.
    token, _ = await open_session(client)
    for _ in range(3):
        clock.advance(days=core.settings.web_session_idle_days - 1)
        resp = await client.post("/webchat/message", json={"session": token, "text": "안녕"})
        assert resp.status == 200


# --- messages ---------------------------------------------------------------------------


async def test_text_choice_command_and_location(
    client: TestClient, engine: RecordingEngine
) -> None:
    token, _ = await open_session(client)

    async def send(**body: Any) -> list[dict[str, Any]]:
        resp = await client.post("/webchat/message", json={"session": token, **body})
        assert resp.status == 200, await resp.text()
        return (await resp.json())["replies"]

    echoed = await send(text="  버스 정류장\x00 그늘막\x1b  ")
    assert echoed[0]["text"] == "받았습니다: 버스 정류장 그늘막"
    assert (await send(choice="cat:transport"))[0]["text"] == "고르셨습니다: cat:transport"
    await send(text="/menu")
    await send(text="/start p_P-2026-000007")
    replies = await send(location={"latitude": 37.5, "longitude": 127})
    assert replies[0]["text"] == "위치 37.500,127.000"
    assert [i.payload for i in engine.seen[1:]] == [
        Text("버스 정류장\x00 그늘막".replace("\x00", "")),
        Picked("cat:transport"),
        Command("menu", ""),
        Command("start", "p_P-2026-000007"),
        Location(37.5, 127.0),
    ]


BAD_MESSAGES: list[tuple[str, bytes, int, str]] = [
    ("invalid json", b"{not json", 400, "bad_json"),
    ("not an object", b"[1, 2]", 400, "bad_json"),
    ("not utf-8", b'{"text": "\xff"}', 400, "bad_json"),
    ("empty body", b"", 400, "bad_json"),
    ("no session", b'{"text": "hi"}', 400, "missing_session"),
    ("unknown session", b'{"session": "nope", "text": "hi"}', 401, "unknown_session"),
]


async def test_bad_requests_get_a_polite_error(client: TestClient, engine: RecordingEngine) -> None:
    for name, raw, status, code in BAD_MESSAGES:
        resp = await client.post(
            "/webchat/message", data=raw, headers={"Content-Type": "application/json"}
        )
        assert resp.status == status, name
        body = await resp.json()
        assert body["error"] == {"code": code, "message": t(f"web.error.{code}", "ko")}, name
    assert engine.seen == []


BAD_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("nothing to send", {}, "missing_message"),
    ("empty text", {"text": ""}, "empty_text"),
    ("whitespace", {"text": " \n\t "}, "empty_text"),
    ("control characters only", {"text": "\x00\x07\x1b"}, "empty_text"),
    ("text not a string", {"text": 42}, "missing_message"),
    ("choice with spaces", {"choice": "menu submit"}, "bad_choice"),
    ("choice too long", {"choice": "x" * 49}, "bad_choice"),
    ("choice not ascii", {"choice": "메뉴"}, "bad_choice"),
    ("location out of range", {"location": {"latitude": 91, "longitude": 0}}, "bad_location"),
    ("location not numbers", {"location": {"latitude": "1", "longitude": 2}}, "bad_location"),
]


async def test_bad_fields_keep_the_conversation(
    client: TestClient, engine: RecordingEngine
) -> None:
    token, _ = await open_session(client, locale="en")
    for name, fields, code in BAD_FIELDS:
        resp = await client.post("/webchat/message", json={"session": token, **fields})
        assert resp.status == 400, name
        expected = {"code": code, "message": t(f"web.error.{code}", "en")}
        assert (await resp.json())["error"] == expected, name
    assert len(engine.seen) == 1  # only the greeting reached the engine
    ok = await client.post("/webchat/message", json={"session": token, "text": "그대로입니다"})
    assert ok.status == 200


async def test_over_long_text_names_the_limit(client: TestClient, engine: RecordingEngine) -> None:
    token, _ = await open_session(client)
    resp = await client.post("/webchat/message", json={"session": token, "text": "가" * 10_000})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["code"] == "too_long"
    assert body["error"]["message"] == t("web.error.too_long", "ko", max=5000, length=10_000)
    exactly = await client.post("/webchat/message", json={"session": token, "text": "가" * 5000})
    assert exactly.status == 200


async def test_huge_body_is_refused_before_parsing(client: TestClient) -> None:
    token, _ = await open_session(client)
    raw = b'{"session": "%s", "text": "%s"}' % (token.encode(), b"a" * 300_000)
    resp = await client.post(
        "/webchat/message", data=raw, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "too_long"


async def test_bad_deep_link_and_error_language(client: TestClient) -> None:
    resp = await client.post("/webchat/session", json={"start": "<script>"})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "bad_start"
    resp = await client.post(
        "/webchat/message", data=b"{", headers={"Accept-Language": "en-US,en;q=0.9"}
    )
    assert (await resp.json())["error"]["message"] == t("web.error.bad_json", "en")
    assert (await client.get("/webchat/nothing-here")).status == 404


async def test_a_crash_is_answered_politely_and_logged_without_personal_data(
    client: TestClient, engine: RecordingEngine, caplog: pytest.LogCaptureFixture
) -> None:
    token, _ = await open_session(client)
    personal = "김민수 010-1234-5678"
    engine.fail_with = RuntimeError(f"boom while handling {personal}")
    with caplog.at_level(logging.ERROR, logger="bots.web.routes"):
        resp = await client.post("/webchat/message", json={"session": token, "text": personal})
    assert resp.status == 500
    assert (await resp.json())["error"] == {
        "code": "generic",
        "message": t("web.error.generic", "ko"),
    }
    assert "RuntimeError" in caplog.text
    assert personal not in caplog.text and token not in caplog.text


# --- uploads ----------------------------------------------------------------------------


def upload_form(token: str, data: bytes, *, caption: str | None = None) -> FormData:
    form = FormData()
    form.add_field("session", token)
    if caption is not None:
        form.add_field("caption", caption)
    form.add_field("file", data, filename="photo.png", content_type="image/png")
    return form


async def test_photo_upload_reaches_the_engine_and_only_its_owner(
    client: TestClient, core: Core, engine: RecordingEngine
) -> None:
    token, _ = await open_session(client)
    resp = await client.post("/webchat/upload", data=upload_form(token, PNG, caption="정류장"))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    ref = body["ref"]
    assert re.fullmatch(r"web:[0-9a-f]{32}", ref)
    assert engine.seen[-1].payload == Photo(ref, "정류장")
    upload_id = ref.partition(":")[2]
    assert body["replies"][0]["image"] == {"url": f"/webchat/files/{upload_id}", "alt": "사진"}
    stored = core.settings.data_dir / "uploads" / "web" / f"{upload_id}.png"
    from PIL import Image

    with Image.open(stored) as kept:  # a re-encoded copy of the same picture
        assert (kept.format, kept.size, kept.getpixel((0, 0))) == ("PNG", (8, 6), (200, 30, 30))

    mine = await client.get(f"/webchat/files/{upload_id}", params={"session": token})
    assert mine.status == 200 and await mine.read() == stored.read_bytes()
    assert mine.headers["Content-Type"] == "image/png"
    other, _ = await open_session(client)
    theirs = await client.get(f"/webchat/files/{upload_id}", params={"session": other})
    assert theirs.status == 404
    nobody = await client.get(f"/webchat/files/{upload_id}")
    assert nobody.status == 400


async def test_upload_checks_type_and_size(client: TestClient, core: Core) -> None:
    token, _ = await open_session(client)
    text = await client.post("/webchat/upload", data=upload_form(token, b"GIF89a not allowed"))
    assert text.status == 415
    assert (await text.json())["error"]["code"] == "upload_bad_type"
    big = PNG + b"\x00" * core.settings.web_upload_max_bytes
    large = await client.post("/webchat/upload", data=upload_form(token, big))
    assert large.status == 413
    assert (await large.json())["error"]["code"] == "upload_too_large"
    missing = await client.post("/webchat/upload", data=FormData({"session": token}))
    assert missing.status == 400
    not_multipart = await client.post("/webchat/upload", json={"session": token})
    assert not_multipart.status == 400
    folder = core.settings.data_dir / "uploads" / "web"
    assert not folder.exists() or not list(folder.iterdir())


# --- the page ---------------------------------------------------------------------------


async def test_page_is_accessible_and_self_contained(client: TestClient) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    page = await resp.text()
    assert '<html lang="ko">' in page
    assert 'role="log"' in page and 'aria-live="polite"' in page
    assert '<label for="message"' in page and 'id="message"' in page
    assert t("web.page.send", "ko") in page and "{{" not in page
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    english = await (await client.get("/", params={"lang": "en"})).text()
    assert '<html lang="en">' in english and t("web.page.send", "en") in english
    for asset in ("app.js", "app.css", "emblem.svg"):
        static = await client.get(f"/webchat/static/{asset}")
        assert static.status == 200
        body = await static.text()
        # No CDN: nothing is loaded from another host.
        assert not re.search(r"(src|href|url\()\s*=?\s*[\"']?https?://", body), asset
    assert not re.search(r"(src|href)=\"https?://", page)


async def test_page_escapes_catalog_text_in_the_json_blob(client: TestClient) -> None:
    page = await (await client.get("/")).text()
    blob = page.split('id="gongnon-texts">', 1)[1].split("</script>", 1)[0]
    assert "<" not in blob


# --- pushed messages: sender, inbox and the SSE stream ------------------------------------


class Stream:
    """Reads a text/event-stream response event by event."""

    def __init__(self, resp: Any) -> None:
        self.resp = resp

    async def next_block(self, wait: float = 5.0) -> str:
        lines: list[str] = []
        while True:
            raw = await asyncio.wait_for(self.resp.content.readline(), wait)
            if not raw:
                raise EOFError("stream ended")
            line = raw.decode().rstrip("\n")
            if line == "":
                if lines:
                    return "\n".join(lines)
                continue
            lines.append(line)

    async def next_event(self, wait: float = 5.0) -> dict[str, Any]:
        import json

        while True:
            block = await self.next_block(wait)
            fields = dict(
                line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
            )
            if "data" in fields:
                return {"id": int(fields["id"]), "event": fields["event"],
                        **json.loads(fields["data"])}


async def delivered(core: Core, token: str, *, up_to: int) -> None:
    """Wait until the server has recorded streaming up to ``up_to`` (it does so after writing)."""
    chat = core.webchat

    async def recorded() -> bool:
        found = await chat.find_session(token)
        return found is not None and found.delivered_up_to >= up_to

    await eventually(recorded, what="the stream's recorded progress")


def notice(text: str) -> Reply:
    return Reply(
        text=text,
        choices=(Choice("p:P-2026-000001:show", "자세히 보기"),),
        kind=ReplyKind.NOTIFICATION,
    )


async def test_sse_delivers_pushes_live_and_resumes(client: TestClient, core: Core) -> None:
    token, _ = await open_session(client)
    address = hashlib.sha256(token.encode()).hexdigest()
    sender = core.senders["web"]
    assert isinstance(sender, WebSender)

    resp = await client.get("/webchat/events", params={"session": token})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    stream = Stream(resp)
    assert (await stream.next_block()).startswith("retry: ")

    ref = await sender.send(address, notice("상태가 바뀌었습니다 <b>1</b>"))
    first = await stream.next_event()
    assert ref == f"web:{first['id']}"
    assert first["event"] == "message"
    assert first["replies"][0]["text"] == "상태가 바뀌었습니다 <b>1</b>"  # plain text, as sent
    assert first["replies"][0]["kind"] == "notification"
    await sender.send(address, notice("둘째"))
    second = await stream.next_event()
    assert second["id"] > first["id"] and second["replies"][0]["text"] == "둘째"
    resp.close()

    # The page was closed: what arrives meanwhile waits in the inbox.
    await sender.send(address, notice("셋째"))
    await sender.send(address, notice("넷째"))
    resumed = await client.get(
        "/webchat/events", params={"session": token},
        headers={"Last-Event-ID": str(first["id"])},
    )
    stream = Stream(resumed)
    texts = [(await stream.next_event())["replies"][0]["text"] for _ in range(3)]
    assert texts == ["둘째", "셋째", "넷째"]
    resumed.close()

    # A new page with no cursor starts after what was already streamed; after=0 replays all.
    await delivered(core, token, up_to=first["id"] + 3)
    await sender.send(address, notice("다섯째"))
    fresh = Stream(await client.get("/webchat/events", params={"session": token}))
    assert (await fresh.next_event())["replies"][0]["text"] == "다섯째"
    fresh.resp.close()
    replay = Stream(await client.get("/webchat/events", params={"session": token, "after": "0"}))
    assert (await replay.next_event())["replies"][0]["text"] == "상태가 바뀌었습니다 <b>1</b>"
    replay.resp.close()


async def test_sse_heartbeats_and_refuses_unknown_sessions(client: TestClient) -> None:
    token, _ = await open_session(client)
    stream = Stream(await client.get("/webchat/events", params={"session": token}))
    await stream.next_block()  # retry + connected
    assert await stream.next_block(wait=3) == ": ping"
    stream.resp.close()
    refused = await client.get("/webchat/events", params={"session": "unknown"})
    assert refused.status == 401
    assert (await refused.json())["error"]["code"] == "unknown_session"


async def test_stop_ends_open_streams(client: TestClient, core: Core) -> None:
    token, _ = await open_session(client)
    stream = Stream(await client.get("/webchat/events", params={"session": token}))
    await stream.next_block()
    core.webchat.close_streams()
    with pytest.raises(EOFError):
        for _ in range(5):
            await stream.next_block(wait=3)


async def test_sender_marks_unknown_sessions_unreachable(core: Core) -> None:
    sender = WebSender(chat=core.webchat)
    with pytest.raises(Unreachable):
        await sender.send("0" * 64, notice("아무도 없음"))


async def test_delivery_worker_fills_the_inbox(client: TestClient, core: Core) -> None:
    token, _ = await open_session(client)
    address = hashlib.sha256(token.encode()).hexdigest()
    async with UnitOfWork(core.db, core.clock) as uow:
        deliveries = uow.repo(DeliveryRepository)
        await deliveries.enqueue(
            dedupe_key="t:1", channel="web", address=address, reply=notice("알림"), now=uow.now()
        )
        await deliveries.enqueue(
            dedupe_key="t:2", channel="web", address="f" * 64, reply=notice("없음"), now=uow.now()
        )
    worker = DeliveryWorker(db=core.db, senders=core.senders, clock=core.clock)
    assert await worker.run_once() == 2
    async with core.db.read() as s:
        rows = {r.dedupe_key: r for r in (await s.execute(select(Delivery))).scalars()}
    assert rows["t:1"].status == "sent" and rows["t:1"].message_ref.startswith("web:")
    assert rows["t:2"].status == "unreachable"
    items = await core.webchat.items_after(address, 0)
    assert [replace(i.reply, meta={}).text for i in items] == ["알림"]


async def test_purge_drops_old_inbox_items(client: TestClient, core: Core, clock: Any) -> None:
    token, _ = await open_session(client)
    address = hashlib.sha256(token.encode()).hexdigest()
    chat = core.webchat
    await chat.put(address, notice("오래된 알림"))
    clock.advance(days=core.settings.web_inbox_retention_days + 1)
    await chat.put(address, notice("새 알림"))
    from core.web_retention import purge

    assert (await purge(chat, state=core.state))["inbox"] == 1
    assert [i.reply.text for i in await chat.items_after(address, 0)] == ["새 알림"]


def test_static_files_exist() -> None:
    root = Path(__file__).resolve().parents[2] / "bots" / "web" / "static"
    assert {p.name for p in root.iterdir()} >= {"index.html", "app.js", "app.css", "emblem.svg"}
