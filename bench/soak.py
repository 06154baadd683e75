"""Soak under abuse: legitimate citizens keep chatting while attackers push on every cap; JSON.

    .venv/bin/python bench/soak.py [--seconds 60] [--web 50] [--telegram 50] [--nofile 1024]
        [--no-attack] [--attacks streams,slowloris,sessions,uploads] [--newcomer-every 1.0]

``gongnon serve`` runs in a subprocess under ``ulimit -n`` (``resource.setrlimit`` before exec),
embedded (SQLite, in-process state), with the Telegram channel in webhook mode against the fake
Bot API (tests/fakes/telegram_api.py) and ``GONGNON_TRUSTED_PROXIES=127.0.0.1``, so every
simulated client is told apart by its ``X-Forwarded-For`` (as behind a reverse proxy). Only
loopback traffic.

- **legitimate** (this process): ``--web`` web citizens (each its own address and session,
  opened before the attack starts: people already chatting) send a message every ~1.5 s;
  ``--telegram`` Telegram citizens send an update through the fake's webhook delivery every
  ~3 s, and a turn ends when the bot's reply reaches the fake. Every answer must be a 200 (web)
  or a reply within 10 s (Telegram); anything else is an error. Besides them, a **newcomer**
  from a fresh address opens a web session every ``--newcomer-every`` seconds during the
  attack: reported apart (admitted, refused because too many sessions start at once), since
  the cap on new sessions from all addresses together refuses newcomers and attackers alike.
- **attackers** (a child process): hold event streams up to every cap (per session, per
  address, in all) and keep asking for more; keep 200 half-sent request headers open
  (slowloris); flood new sessions from a few addresses; flood 5 MB uploads with made-up
  sessions, with real sessions that were not asked for a photo, and with sessions at the photo
  step until their quota is full.

Printed: legitimate turns completed, their p50/p99 latency, errors; the server's peak RSS and
open descriptors, disk growth of its data directory, log growth; what the attackers got.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiohttp import ClientSession, ClientTimeout, FormData, TCPConnector  # noqa: E402

WEB_TEXTS = ["/menu", "/mine", "/help", "안녕하세요", "/following"]
TG_TEXTS = ["/start", "/mine", "/help", "/menu"]
FIVE_MB = b"\xff\xd8\xff\xe0" + os.urandom(5 * 1024 * 1024 - 4)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _limit_nofile(n: int) -> Any:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))

    return apply


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _size(path: Path) -> int:
    return path.stat().st_size


def _start_server(env: dict[str, str], log_file: Any, nofile: int) -> subprocess.Popen[bytes]:
    """``gongnon serve`` under ``ulimit -n nofile``, its output into ``log_file``."""
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bots.cli", "serve"],
        cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        preexec_fn=_limit_nofile(nofile),  # noqa: PLW1509 - setrlimit before exec is the point
    )


class Probe:
    """Peak RSS and open descriptors of the server process, sampled every 0.25 s."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rss_kb = 0
        self.fds = 0

    def sample(self) -> None:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.rss_kb = max(self.rss_kb, int(line.split()[1]))
            self.fds = max(self.fds, len(os.listdir(f"/proc/{self.pid}/fd")))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)


# --- legitimate citizens --------------------------------------------------------------


class Legit:
    def __init__(self) -> None:
        self.web: list[float] = []
        self.telegram: list[float] = []
        self.errors: Counter[str] = Counter()
        self.health: list[float] = []
        self.newcomers: Counter[str] = Counter()
        self.newcomer_s: list[float] = []


def _citizen_address(n: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"10.1.{n // 250}.{n % 250 + 1}"}


async def web_session(n: int, url: str, http: ClientSession, out: Legit) -> str | None:
    """Web citizen ``n`` opens a session (with its greeting)."""
    async with http.post(f"{url}/webchat/session", json={}, headers=_citizen_address(n)) as r:
        if r.status != 200:
            out.errors[f"web session {r.status}"] += 1
            return None
        return str((await r.json())["session"])


async def web_citizen(
    n: int, token: str | None, url: str, http: ClientSession, until: float, out: Legit
) -> None:
    if token is None:
        return
    headers = _citizen_address(n)
    await asyncio.sleep(random.uniform(0, 1.5))  # noqa: S311 - spreading start times
    i = 0
    while time.monotonic() < until:
        body = {"session": token, "text": WEB_TEXTS[i % len(WEB_TEXTS)]}
        i += 1
        started = time.perf_counter()
        try:
            async with http.post(f"{url}/webchat/message", json=body, headers=headers) as r:
                await r.read()
                status = r.status
        except Exception as exc:  # noqa: BLE001 - counted as an error
            out.errors[f"web {type(exc).__name__}"] += 1
            continue
        elapsed = time.perf_counter() - started
        if status == 200:
            out.web.append(elapsed)
        else:
            out.errors[f"web {status}"] += 1
        await asyncio.sleep(max(0.0, 1.5 - elapsed) * random.uniform(0.8, 1.2))  # noqa: S311


def soak_telegram() -> Any:
    """The fake Bot API, recording no calls: it wakes the citizen whose chat got a message."""
    from tests.fakes.telegram_api import SEND_METHODS, FakeTelegram

    class SoakTelegram(FakeTelegram):
        def __init__(self) -> None:
            super().__init__(record=False)
            self.waiters: dict[int, asyncio.Event] = {}

        def _record(self, method: str, params: dict[str, Any], files: Any, status: int) -> None:
            if status == 200 and method.lower() in SEND_METHODS:
                with contextlib.suppress(TypeError, ValueError):
                    event = self.waiters.pop(int(params.get("chat_id", 0)), None)
                    if event is not None:
                        event.set()

    return SoakTelegram()


async def telegram_citizen(n: int, tg: Any, until: float, out: Legit) -> None:
    user = 700_000 + n
    await asyncio.sleep(random.uniform(0, 3))  # noqa: S311
    i = 0
    while time.monotonic() < until:
        update = tg.message_update(user, text=TG_TEXTS[i % len(TG_TEXTS)])
        i += 1
        replied = tg.waiters[user] = asyncio.Event()
        started = time.perf_counter()
        try:
            status = await tg.deliver(update)
        except Exception as exc:  # noqa: BLE001
            out.errors[f"telegram {type(exc).__name__}"] += 1
            continue
        if status != 200:
            out.errors[f"telegram webhook {status}"] += 1
            continue
        try:
            await asyncio.wait_for(replied.wait(), 10)
            out.telegram.append(time.perf_counter() - started)
        except TimeoutError:
            out.errors["telegram no reply in 10 s"] += 1
        await asyncio.sleep(max(0.0, 3.0 - (time.perf_counter() - started)))


async def newcomers(
    url: str, http: ClientSession, until: float, every: float, out: Legit
) -> None:
    """A person from a fresh address opens the chat every ``every`` seconds."""
    n = 0
    while time.monotonic() < until:
        n += 1
        headers = {"X-Forwarded-For": f"10.2.{n // 250}.{n % 250 + 1}"}
        started = time.perf_counter()
        try:
            async with http.post(f"{url}/webchat/session", json={}, headers=headers) as r:
                body = await r.json()
                if r.status == 200:
                    out.newcomers["admitted"] += 1
                    out.newcomer_s.append(time.perf_counter() - started)
                else:
                    code = body.get("error", {}).get("code", "?")
                    out.newcomers[f"refused {r.status} {code}"] += 1
        except Exception as exc:  # noqa: BLE001 - counted
            out.newcomers[f"failed {type(exc).__name__}"] += 1
        await asyncio.sleep(every)


async def health_probe(url: str, http: ClientSession, until: float, out: Legit) -> None:
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            async with http.get(f"{url}/healthz") as r:
                await r.read()
                if r.status != 200:
                    out.errors[f"healthz {r.status}"] += 1
                else:
                    out.health.append(time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001
            out.errors[f"healthz {type(exc).__name__}"] += 1
        await asyncio.sleep(1.0)


# --- attackers (a child process) --------------------------------------------------------


ATTACKS = ("streams", "slowloris", "sessions", "uploads")


async def _attack(url: str, seconds: float, kinds: tuple[str, ...] = ATTACKS) -> dict[str, Any]:
    until = time.monotonic() + seconds
    got: Counter[str] = Counter()
    held: list[Any] = []
    sockets: list[Any] = []
    connector = TCPConnector(limit=0)
    http = ClientSession(connector=connector, timeout=ClientTimeout(total=30))

    async def session(address: str) -> str | None:
        async with http.post(
            f"{url}/webchat/session", json={}, headers={"X-Forwarded-For": address}
        ) as r:
            got[f"session {r.status}"] += 1
            return (await r.json())["session"] if r.status == 200 else None

    async def stream(token: str, address: str) -> None:
        try:
            r = await http.get(
                f"{url}/webchat/events", params={"session": token},
                headers={"X-Forwarded-For": address},
            )
        except Exception as exc:  # noqa: BLE001
            got[f"stream {type(exc).__name__}"] += 1
            return
        got[f"stream {r.status}"] += 1
        if r.status == 200:
            held.append(r)
        else:
            r.release()

    async def hold_streams() -> None:
        # Every cap: 5 streams on one session (3 allowed), 20 from one address (12), and
        # addresses × 4 sessions × 3 streams up to the total (400), with as many new sessions
        # as the caps on new sessions (per address, and from all addresses together) give.
        first = await session("192.0.2.1")
        if first:
            for _ in range(5):
                await stream(first, "192.0.2.1")
        for _ in range(4):
            token = await session("192.0.2.2")
            for _ in range(5 if token else 0):
                await stream(token, "192.0.2.2")  # type: ignore[arg-type]
        counter = iter(range(10**9))

        async def filler() -> None:
            while time.monotonic() < until:
                n = next(counter)
                address = f"198.18.{n // 4 // 250}.{n // 4 % 250 + 1}"
                with contextlib.suppress(Exception):
                    token = await session(address)
                    for _ in range(3 if token else 0):  # new sessions are few: use each fully
                        await stream(token, address)  # type: ignore[arg-type]
                await asyncio.sleep(0.01 if len(held) < 420 else 0.5)

        await asyncio.gather(*(filler() for _ in range(8)))

    async def slowloris() -> None:
        host, port = url.removeprefix("http://").split(":")
        while time.monotonic() < until:
            sockets[:] = [w for w in sockets if not w.is_closing()]
            while len(sockets) < 200 and time.monotonic() < until:
                try:
                    _, writer = await asyncio.open_connection(host, int(port))
                except OSError:
                    got["slowloris connect failed"] += 1
                    break
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                sockets.append(writer)
                got["slowloris opened"] += 1
            await asyncio.sleep(1.0)
            for w in sockets:
                if w.transport.is_closing() or w.is_closing():
                    continue
                with contextlib.suppress(Exception):
                    w.write(b"a")  # a byte now and then: still "sending its headers"

    async def session_flood() -> None:
        while time.monotonic() < until:
            for a in range(4):
                with contextlib.suppress(Exception):
                    await session(f"192.0.2.{100 + a}")
            await asyncio.sleep(0.01)

    async def upload(token: str, address: str, data: bytes) -> int:
        form = FormData()
        form.add_field("file", data, filename="x.jpg", content_type="image/jpeg")
        try:
            async with http.post(
                f"{url}/webchat/upload", data=form,
                headers={"X-Gongnon-Session": token, "X-Forwarded-For": address},
            ) as r:
                await r.read()
                got[f"upload {r.status}"] += 1
                return r.status
        except Exception as exc:  # noqa: BLE001
            got[f"upload {type(exc).__name__}"] += 1
            return 0

    async def say(token: str, address: str, body: dict[str, Any]) -> None:
        async with http.post(
            f"{url}/webchat/message", json={"session": token, **body},
            headers={"X-Forwarded-For": address},
        ) as r:
            await r.read()

    async def upload_flood(k: int) -> None:
        from io import BytesIO

        from PIL import Image

        picture = BytesIO()
        Image.effect_noise((1600, 1200), 60).convert("RGB").save(picture, "JPEG", quality=95)
        photo = picture.getvalue()
        address = f"192.0.2.{200 + k}"
        unasked = await session(address)
        asked = await session(address)
        if asked:
            # To the step that takes a photo (intake's "extras"); it stays there after one.
            for body in ({"text": "/new"}, {"text": f"버스 정류장에 그늘막을 설치해 주세요 {k}"},
                         {"text": "여름마다 버스를 기다리는 시민들이 햇볕에 너무 오래 노출됩니다."},
                         {"choice": "sim:new"}, {"choice": "cat:transport"}):
                await say(asked, address, body)
        while time.monotonic() < until:
            await upload("made-up-session-token", address, FIVE_MB)
            if unasked:
                await upload(unasked, address, FIVE_MB)
            if asked:
                await upload(asked, address, photo)  # each replaces the last, until the quota
            await asyncio.sleep(0.05)

    tasks = [
        *([asyncio.create_task(hold_streams())] if "streams" in kinds else []),
        *([asyncio.create_task(slowloris())] if "slowloris" in kinds else []),
        *([asyncio.create_task(session_flood())] if "sessions" in kinds else []),
        *(asyncio.create_task(upload_flood(k)) for k in range(3 if "uploads" in kinds else 0)),
    ]
    peak = 0
    while time.monotonic() < until:
        held[:] = [r for r in held if not r.closed and not r.content.at_eof()]
        peak = max(peak, len(held))
        await asyncio.sleep(0.5)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for r in held:
        r.close()
    for w in sockets:
        w.close()
    await http.close()
    return {"streams_held_peak": peak, **dict(sorted(got.items()))}


def _attacker(url: str, seconds: float, kinds: tuple[str, ...], conn: Connection) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
    conn.send(asyncio.run(_attack(url, seconds, kinds)))


# --- the run ---------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="gongnon-soak-"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = data_dir.parent / f"{data_dir.name}.log"
    async with soak_telegram() as tg:
        env = {
            **os.environ,
            "GONGNON_DATA_DIR": str(data_dir),
            "GONGNON_PORT": str(port),
            "GONGNON_TRUSTED_PROXIES": "127.0.0.1",
            "GONGNON_TELEGRAM_TOKEN": tg.token,
            "GONGNON_TELEGRAM_API_URL": tg.root,
            "GONGNON_TELEGRAM_WEBHOOK_URL": f"{url}/telegram/webhook",
        }
        for name in ("GONGNON_DATABASE_URL", "GONGNON_REDIS_URL"):
            env.pop(name, None)
        with log_path.open("wb") as log_file:
            server = _start_server(env, log_file, args.nofile)
            try:
                return await _measure(args, url, tg, server, data_dir, log_path)
            finally:
                server.terminate()
                try:
                    server.wait(20)
                except subprocess.TimeoutExpired:
                    server.kill()


async def _measure(
    args: argparse.Namespace, url: str, tg: Any, server: subprocess.Popen[bytes],
    data_dir: Path, log_path: Path,
) -> dict[str, Any]:
    async with ClientSession(timeout=ClientTimeout(total=30)) as http:
        for _ in range(600):  # start-up: migrations, then the port
            with contextlib.suppress(Exception):
                async with http.get(f"{url}/healthz") as r:
                    if r.status == 200 and tg.webhook_url:
                        break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"server did not start; see {log_path}")
        disk0, log0 = _du(data_dir), _size(log_path)
        probe = Probe(server.pid)
        stop = asyncio.Event()
        probing = asyncio.create_task(probe.run(stop))
        attacker = None
        ctx = mp.get_context("spawn")
        parent_end, child_end = ctx.Pipe(duplex=False)
        out = Legit()
        # The server lets an idle keep-alive connection go after GONGNON_WEB_HEADER_TIMEOUT_SECONDS
        # (10 s); a client that reuses one at that moment sees it closed (a browser retries the
        # request; aiohttp does not), so these clients let idle connections go sooner.
        connector = TCPConnector(limit=0, keepalive_timeout=5)
        legit = ClientSession(connector=connector, timeout=ClientTimeout(total=30))
        # People already chatting when the attack starts (a newcomer is measured apart).
        tokens = await asyncio.gather(*(web_session(n, url, legit, out) for n in range(args.web)))
        if not args.no_attack:
            attacker = ctx.Process(
                target=_attacker,
                args=(url, args.seconds + 10, tuple(args.attacks.split(",")), child_end),
                daemon=True,
            )
            attacker.start()
            await asyncio.sleep(10)  # the attack builds up first
        until = time.monotonic() + args.seconds
        load0 = os.getloadavg()[0]
        async with legit:
            await asyncio.gather(
                *(web_citizen(n, tokens[n], url, legit, until, out) for n in range(args.web)),
                newcomers(url, legit, until, args.newcomer_every, out),
                *(telegram_citizen(n, tg, until, out) for n in range(args.telegram)),
                health_probe(url, legit, until, out),
            )
        attack: dict[str, Any] = {}
        if attacker is not None:
            attack = await asyncio.to_thread(parent_end.recv)
            attacker.join(10)
        stop.set()
        await probing
        async with http.get(f"{url}/healthz") as r:
            health = await r.json()
    turns = out.web + out.telegram
    return {
        "seconds": args.seconds,
        "attacks": [] if args.no_attack else args.attacks.split(","),
        "nofile": args.nofile,
        "legitimate": {
            "web_citizens": args.web,
            "telegram_citizens": args.telegram,
            "turns": len(turns),
            "web_turns": len(out.web),
            "telegram_turns": len(out.telegram),
            "p50_s": round(_pct(turns, 0.50), 3),
            "p99_s": round(_pct(turns, 0.99), 3),
            "web_p99_s": round(_pct(out.web, 0.99), 3),
            "telegram_p99_s": round(_pct(out.telegram, 0.99), 3),
            "healthz_p99_s": round(_pct(out.health, 0.99), 3),
            "errors": sum(out.errors.values()),
            "error_kinds": dict(out.errors),
            "newcomers": {
                **dict(sorted(out.newcomers.items())),
                "admitted_p99_s": round(_pct(out.newcomer_s, 0.99), 3),
            },
        },
        "server": {
            "peak_rss_mb": round(probe.rss_kb / 1024, 1),
            "peak_open_fds": probe.fds,
            "disk_growth_mb": round((_du(data_dir) - disk0) / 1024 / 1024, 2),
            "log_growth_kb": round((_size(log_path) - log0) / 1024, 1),
            "connections": health.get("checks", {}).get("connections"),
            "streams": health.get("checks", {}).get("webstreams"),
        },
        "attack": attack,
        "load_average_1m": [round(load0, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--web", type=int, default=50)
    parser.add_argument("--telegram", type=int, default=50)
    parser.add_argument("--nofile", type=int, default=1024)
    parser.add_argument("--no-attack", action="store_true")
    parser.add_argument("--attacks", default=",".join(ATTACKS), help="which attacks to run")
    parser.add_argument("--newcomer-every", type=float, default=1.0,
                        help="seconds between newcomers opening the web chat")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
