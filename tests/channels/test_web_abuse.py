"""The web chat under abuse: caps on streams, sessions and uploads, over real HTTP.

Each cap answers politely (JSON error in the person's language) with 429 and ``Retry-After``
where waiting helps; an upload nothing asked for is refused before it is read; a made-up session
is refused before a single byte of the body arrives; photos are re-encoded without EXIF/GPS.
Runs on SQLite and PostgreSQL through the ``core`` fixture.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from io import BytesIO
from typing import Any

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from sqlalchemy import func, select

from bots.web.routes import WebMount
from core.adapters.orm_web import WebUpload
from core.bootstrap import Core
from core.limits import Limits
from core.ratelimit import MemoryRateLimiter
from core.webchat import WebChat
from tests.channels.test_web_api import RecordingEngine

Factory = Callable[..., Awaitable[TestClient]]


def picture(size: tuple[int, int] = (8, 6), fmt: str = "PNG", **save: Any) -> bytes:
    out = BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, format=fmt, **save)
    return out.getvalue()


@pytest.fixture
async def make_client(core: Core) -> AsyncIterator[Factory]:
    """``await make_client(web_streams_per_session=2, …)``: the web mount with these settings."""
    clients: list[TestClient] = []

    async def build(engine: RecordingEngine | None = None, **settings: Any) -> TestClient:
        core.settings.web_sse_heartbeat_seconds = 0.3
        core.settings.web_sse_poll_seconds = 0.2
        for name, value in settings.items():
            setattr(core.settings, name, value)
        core.limits = Limits(MemoryRateLimiter(), settings=core.settings)
        core.webchat = WebChat.from_settings(core.settings, db=core.db, clock=core.clock)
        app = web.Application()
        mount = WebMount(core.settings)
        mount.routes(app)
        the_engine = engine or RecordingEngine()

        async def lifetime(app: web.Application) -> AsyncIterator[None]:
            await mount.start(app, core, the_engine)
            yield
            await mount.stop(app)

        app.cleanup_ctx.append(lifetime)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.close()


async def new_session(client: TestClient, address: str = "203.0.113.1") -> str:
    resp = await client.post("/webchat/session", json={}, headers={"X-Forwarded-For": address})
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["session"])


async def open_stream(client: TestClient, token: str, address: str = "203.0.113.1") -> Any:
    resp = await client.get(
        "/webchat/events", params={"session": token}, headers={"X-Forwarded-For": address}
    )
    if resp.status == 200:
        assert await resp.content.readline() == b"retry: 3000\n"  # the stream is open
    return resp


async def test_streams_are_capped_per_session_address_and_in_all(make_client: Factory) -> None:
    client = await make_client(
        trusted_proxies=["127.0.0.1"], web_streams_per_session=2, web_streams_per_address=3,
        web_streams_max=5,
    )
    a1 = await new_session(client, "203.0.113.1")
    held = [await open_stream(client, a1), await open_stream(client, a1)]
    assert all(r.status == 200 for r in held)
    third = await open_stream(client, a1)
    assert third.status == 429 and third.headers["Retry-After"] == "30"
    body = await third.json()
    assert body["error"]["code"] == "too_many_streams"
    assert "다른 창에서 열려 있습니다" in body["error"]["message"]
    # Per address: a second session from the same client address gets one more place.
    a2 = await new_session(client, "203.0.113.1")
    held.append(await open_stream(client, a2))
    assert held[-1].status == 200
    assert (await open_stream(client, a2)).status == 429
    # In all: other addresses fill the total of 5, then everyone waits.
    for n in (2, 3):
        token = await new_session(client, f"203.0.113.{n}")
        held.append(await open_stream(client, token, f"203.0.113.{n}"))
    assert [r.status for r in held] == [200] * 5
    late = await open_stream(client, await new_session(client, "198.51.100.9"), "198.51.100.9")
    assert late.status == 429
    # A stream that ends gives its place back.
    held.pop().close()
    for _ in range(50):
        again = await open_stream(client, await new_session(client, "198.51.100.8"),
                                  "198.51.100.8")
        if again.status == 200:
            break
        await asyncio.sleep(0.05)
    assert again.status == 200
    for resp in [*held, again]:
        resp.close()


async def test_forwarded_for_counts_only_from_trusted_proxies(make_client: Factory) -> None:
    client = await make_client(web_streams_per_address=1)  # no trusted proxies
    one = await new_session(client, "203.0.113.1")
    two = await new_session(client, "198.51.100.2")
    first = await open_stream(client, one, "203.0.113.1")
    assert first.status == 200
    # A made-up X-Forwarded-For does not buy another place: the peer (127.0.0.1) is counted.
    second = await open_stream(client, two, "198.51.100.2")
    assert second.status == 429
    first.close()


async def test_new_sessions_from_many_addresses_meet_one_cap(
    make_client: Factory, core: Core
) -> None:
    client = await make_client(
        trusted_proxies=["127.0.0.0/8"], web_sessions_per_minute=4,
        web_sessions_per_address_per_minute=1,
    )
    tokens = [await new_session(client, f"198.18.0.{n}") for n in range(1, 5)]
    refused = await client.post(  # a fresh address, within its own limits: the cap on everyone
        "/webchat/session", json={}, headers={"X-Forwarded-For": "198.18.0.5"}
    )
    assert refused.status == 429
    assert 55 <= int(refused.headers["Retry-After"]) <= 60
    body = await refused.json()
    assert body["error"]["code"] == "sessions_busy"
    assert body["error"]["message"].startswith("지금 새로 대화를 시작하시는 분이 많습니다")
    english = await client.post(
        "/webchat/session", json={"locale": "en"}, headers={"X-Forwarded-For": "198.18.0.6"}
    )
    assert (await english.json())["error"]["message"].startswith("Many people are starting")
    # Conversations already open go on: resuming and messages are not counted.
    resumed = await client.post(
        "/webchat/session", json={"session": tokens[0], "greet": False},
        headers={"X-Forwarded-For": "198.18.0.1"},
    )
    assert resumed.status == 200
    said = await client.post("/webchat/message", json={"session": tokens[1], "text": "안녕하세요"})
    assert said.status == 200
    # A refused address was given its one place a minute back.
    assert core.limits is not None
    assert (await core.limits.limiter.try_take(
        [core.limits.sessions_minute.limit("198.18.0.5")]
    )).granted


async def test_new_sessions_are_rate_limited_per_address(make_client: Factory) -> None:
    client = await make_client(
        trusted_proxies=["127.0.0.0/8"], web_sessions_per_address_per_minute=3
    )
    for _ in range(3):
        await new_session(client, "203.0.113.5")
    refused = await client.post(
        "/webchat/session", json={"locale": "en"}, headers={"X-Forwarded-For": "203.0.113.5"}
    )
    assert refused.status == 429
    assert 55 <= int(refused.headers["Retry-After"]) <= 60
    body = await refused.json()
    assert body["error"]["code"] == "too_many_sessions"
    assert body["error"]["message"].startswith("You have started new chats too often")
    await new_session(client, "203.0.113.6")  # another address is not affected
    # Resuming an existing session is never limited.
    token = await new_session(client, "203.0.113.7")
    for _ in range(5):
        resumed = await client.post(
            "/webchat/session", json={"session": token, "greet": False},
            headers={"X-Forwarded-For": "203.0.113.5"},
        )
        assert resumed.status == 200


def upload(data: bytes, *, name: str = "photo.png", ctype: str = "image/png") -> FormData:
    form = FormData()
    form.add_field("file", data, filename=name, content_type=ctype)
    return form


async def stored(core: Core) -> tuple[int, list[str]]:
    async with core.db.read() as s:
        rows = int((await s.execute(select(func.count()).select_from(WebUpload))).scalar_one())
    folder = core.settings.data_dir / "uploads" / "web"
    return rows, sorted(p.name for p in folder.iterdir()) if folder.exists() else []


async def test_an_upload_nothing_asked_for_is_refused_and_not_stored(
    make_client: Factory, core: Core
) -> None:
    engine = RecordingEngine()
    engine.photo_step = False
    client = await make_client(engine)
    token = await new_session(client)
    resp = await client.post(
        "/webchat/upload", data=upload(picture()), headers={"X-Gongnon-Session": token}
    )
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "upload_unexpected"
    assert await stored(core) == (0, [])
    assert not any(type(i.payload).__name__ == "Photo" for i in engine.seen)


async def test_a_made_up_session_is_refused_before_the_body_is_sent(
    make_client: Factory, core: Core
) -> None:
    """The request announces 5 MB and sends none of it: the answer comes anyway."""
    client = await make_client()
    host, port = client.server.host, client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        b"POST /webchat/upload HTTP/1.1\r\n"
        b"Host: x\r\n"
        b"Content-Type: multipart/form-data; boundary=b0undary\r\n"
        b"Content-Length: 5000000\r\n"
        b"X-Gongnon-Session: made-up-token\r\n\r\n"
    )
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 5)
    assert status.startswith(b"HTTP/1.1 401"), status
    writer.close()
    assert await stored(core) == (0, [])


async def test_upload_size_is_checked_while_streaming(make_client: Factory, core: Core) -> None:
    client = await make_client()
    token = await new_session(client)

    async def body() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        yield picture()
        for _ in range(200):
            yield b"\0" * 64 * 1024

    form = FormData()
    form.add_field("file", body(), filename="big.png", content_type="image/png")
    resp = await client.post("/webchat/upload", data=form, headers={"X-Gongnon-Session": token})
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "upload_too_large"
    assert await stored(core) == (0, [])


async def test_pixel_bombs_are_refused_before_decoding(make_client: Factory, core: Core) -> None:
    client = await make_client(web_upload_max_pixels=1_000_000)
    token = await new_session(client)
    bomb = picture((4000, 4000))  # one colour: a few kB that would decode to 48 MB
    assert len(bomb) < 200_000
    resp = await client.post(
        "/webchat/upload", data=upload(bomb), headers={"X-Gongnon-Session": token}
    )
    assert resp.status == 415
    assert (await resp.json())["error"]["code"] == "upload_too_many_pixels"
    assert await stored(core) == (0, [])


async def test_per_person_upload_quota(make_client: Factory, core: Core) -> None:
    client = await make_client(web_upload_quota_files=2)
    token = await new_session(client)
    for _ in range(2):
        ok = await client.post(
            "/webchat/upload", data=upload(picture()), headers={"X-Gongnon-Session": token}
        )
        assert ok.status == 200
    full = await client.post(
        "/webchat/upload", data=upload(picture()), headers={"X-Gongnon-Session": token}
    )
    assert full.status == 413
    assert (await full.json())["error"]["code"] == "upload_quota"
    assert (await stored(core))[0] == 2
    other = await new_session(client, "203.0.113.9")  # someone else still has room
    ok = await client.post(
        "/webchat/upload", data=upload(picture()), headers={"X-Gongnon-Session": other}
    )
    assert ok.status == 200


def jpeg_with_gps() -> bytes:
    img = Image.new("RGB", (40, 30), (90, 160, 20))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = 1  # Orientation
    gps = {1: "N", 2: (37.0, 33.0, 59.0), 3: "E", 4: (126.0, 58.0, 41.0)}
    exif[0x8825] = gps  # GPSInfo IFD
    out = BytesIO()
    img.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


async def test_an_uploaded_jpeg_comes_back_without_exif_or_gps(
    make_client: Factory, core: Core
) -> None:
    original = jpeg_with_gps()
    with Image.open(BytesIO(original)) as img:
        assert img.getexif().get_ifd(0x8825)  # the fixture really carries GPS
    client = await make_client()
    token = await new_session(client)
    resp = await client.post(
        "/webchat/upload",
        data=upload(original, name="p.jpg", ctype="image/jpeg"),
        headers={"X-Gongnon-Session": token},
    )
    assert resp.status == 200, await resp.text()
    upload_id = (await resp.json())["ref"].partition(":")[2]
    back = await client.get(f"/webchat/files/{upload_id}", params={"session": token})
    data = await back.read()
    assert back.headers["Content-Type"] == "image/jpeg"
    with Image.open(BytesIO(data)) as img:
        assert img.size == (40, 30)
        assert not img.getexif() and not img.getexif().get_ifd(0x8825)
        assert "exif" not in img.info
    assert b"Exif" not in data and b"PhoneMaker" not in data
    rows, files = await stored(core)
    assert rows == 1 and files == [f"{upload_id}.jpg"]  # only the re-encoded copy is kept


async def test_the_session_part_first_still_works(make_client: Factory) -> None:
    """Pages from before the header: a first ``session`` part, checked before the file."""
    client = await make_client()
    token = await new_session(client)
    form = FormData()
    form.add_field("session", token)
    form.add_field("file", picture(), filename="p.png", content_type="image/png")
    assert (await client.post("/webchat/upload", data=form)).status == 200
    late = FormData()
    late.add_field("file", picture(), filename="p.png", content_type="image/png")
    late.add_field("session", token)
    resp = await client.post("/webchat/upload", data=late)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "missing_session"


async def test_a_slow_body_is_dropped(make_client: Factory) -> None:
    client = await make_client(web_body_timeout_seconds=0.3)
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        b"POST /webchat/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{\"lo"
    )
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 5)
    assert status.startswith(b"HTTP/1.1 408"), status
    writer.close()


async def _trickle_photo(client: TestClient, token: str, *, pause: float) -> bytes:
    """POST a small photo in four pieces ``pause`` seconds apart; the response's status line."""
    boundary = "soakboundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.png\"\r\n"
        "Content-Type: image/png\r\n\r\n"
    ).encode() + picture() + f"\r\n--{boundary}--\r\n".encode()
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        b"POST /webchat/upload HTTP/1.1\r\nHost: x\r\n"
        + f"X-Gongnon-Session: {token}\r\n".encode()
        + f"Content-Type: multipart/form-data; boundary={boundary}\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    step = len(body) // 4 + 1
    try:
        for start in range(0, len(body), step):
            writer.write(body[start:start + step])
            await writer.drain()
            await asyncio.sleep(pause)
    except ConnectionError:
        pass  # the server gave up on it
    status = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    return status


async def test_a_photo_on_a_slow_line_gets_time_for_its_size(make_client: Factory) -> None:
    # 64 KiB at most: 1 s at 64 KiB/s, whatever the (shorter) body timeout says.
    client = await make_client(web_body_timeout_seconds=0.2, web_upload_max_bytes=64 * 1024)
    token = await new_session(client)
    slow = await _trickle_photo(client, token, pause=0.15)  # ~0.6 s: past 0.2 s, within 1 s
    assert slow.startswith(b"HTTP/1.1 200"), slow
    stalled = await _trickle_photo(client, token, pause=0.6)  # ~2.4 s: slower than 64 KiB/s
    assert stalled.startswith(b"HTTP/1.1 408"), stalled


async def test_a_dropped_stream_logs_no_traceback(
    make_client: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client()
    token = await new_session(client)
    caplog.set_level(logging.DEBUG)
    for _ in range(5):
        resp = await open_stream(client, token)
        assert resp.status == 200
        resp.close()  # the browser goes away mid-stream
    await asyncio.sleep(0.8)  # heartbeats hit the closed connections
    assert "Traceback" not in caplog.text
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) <= 5


async def test_one_poller_brings_pushes_from_other_processes(
    make_client: Factory, core: Core
) -> None:
    client = await make_client(web_sse_heartbeat_seconds=30.0)
    core.settings.web_sse_poll_seconds = 0.1
    tokens = [await new_session(client, f"203.0.113.{n}") for n in (1, 2, 3)]
    streams = [await open_stream(client, t, f"203.0.113.{n}") for n, t in enumerate(tokens, 1)]
    assert all(s.status == 200 for s in streams)
    await asyncio.sleep(0.3)  # the streams are waiting; the poller runs
    elsewhere = WebChat.from_settings(core.settings, db=core.db, clock=core.clock)
    import hashlib

    from core.messages import Reply

    address = hashlib.sha256(tokens[1].encode()).hexdigest()
    await elsewhere.put(address, Reply(text="다른 프로세스에서 온 알림"))  # wakes nobody here
    lines: list[bytes] = []
    async with asyncio.timeout(3):  # far sooner than the 30 s heartbeat
        while not any(b"data:" in line for line in lines):
            lines.append(await streams[1].content.readline())
    assert "다른 프로세스에서 온 알림" in b"".join(lines).decode()
    for s in streams:
        s.close()
