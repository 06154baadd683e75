"""The web chat service: sessions (kept by token hash), the inbox of pushed messages, uploads."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import secrets
import threading
import warnings
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update

from core.adapters.db import Database
from core.adapters.orm_web import WebInboxItem, WebSessionRow, WebUpload
from core.i18n import LOCALES
from core.kernel import Kernel
from core.messages import Reply, reply_from_json, reply_to_json
from core.ports import Clock

if TYPE_CHECKING:
    from core.config import Settings

__all__ = [
    "CHANNEL",
    "InboxItem",
    "UnknownAddress",
    "UploadRejected",
    "WebChat",
    "WebSession",
    "install",
]

log = logging.getLogger(__name__)

CHANNEL = "web"
TOKEN_BYTES = 32
TOUCH_EVERY = timedelta(minutes=10)  # last_seen_at is refreshed at most this often
INBOX_BATCH = 50
# Magic numbers of the picture formats we take, and the extension each is stored under.
IMAGE_TYPES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", "png"),
    (b"WEBP", 8, "image/webp", "webp"),
)


class UnknownAddress(LookupError):
    """No web session has this inbox address (it expired or never existed)."""


class UploadRejected(ValueError):
    """An upload we do not keep; ``code`` is ``too_large``, ``bad_type``, ``too_many_pixels``
    or ``quota`` (the person's photos already fill their share)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSession:
    """A live session. ``id`` (the token's hash) is the identity's external id and inbox address."""

    id: str
    locale: str
    created_at: datetime
    last_seen_at: datetime
    delivered_up_to: int

    @property
    def address(self) -> str:
        return self.id


@dataclass(frozen=True, slots=True, kw_only=True)
class InboxItem:
    id: int
    reply: Reply
    created_at: datetime


def hash_token(token: str) -> str:
    """The stored form of a session token: SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _session(row: WebSessionRow) -> WebSession:
    return WebSession(
        id=row.id,
        locale=row.locale,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        delivered_up_to=row.delivered_up_to,
    )


def sniff_image(data: bytes) -> tuple[str, str] | None:
    """(content type, extension) of a JPEG, PNG or WebP picture; None for anything else."""
    for magic, offset, content_type, ext in IMAGE_TYPES:
        if data[offset : offset + len(magic)] == magic:
            if content_type == "image/webp" and not data.startswith(b"RIFF"):
                continue
            return content_type, ext
    return None


def _lower_priority() -> None:
    """Run this thread (Linux: a thread is a schedulable task) at nice +10."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass  # elsewhere it runs at normal priority


_FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"),
            "WEBP": ("image/webp", "webp")}


def reencode(data: bytes, *, max_pixels: int) -> tuple[bytes, str, str]:
    """A fresh copy of a JPEG, PNG or WebP picture: (bytes, content type, extension).

    Pillow reads the header first (``Image.open`` is lazy), so a picture of more than
    ``max_pixels`` is refused before anything is decoded (decompression bombs); Pillow's own
    ``MAX_IMAGE_PIXELS`` check is an error here too. The copy is saved without EXIF (GPS,
    camera, time), XMP, ICC or text chunks; the EXIF orientation is applied first so the
    photo still stands the right way up. Raises ``UploadRejected``.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                kind = _FORMATS.get(str(img.format))
                if kind is None:
                    raise UploadRejected("bad_type")
                width, height = img.size
                if width * height > max_pixels:
                    raise UploadRejected("too_many_pixels")
                img.seek(0)  # an animation keeps its first frame
                img.load()
                picture = ImageOps.exif_transpose(img)
                out = io.BytesIO()
                if img.format == "JPEG":
                    if picture.mode not in ("RGB", "L"):
                        picture = picture.convert("RGB")
                    picture.save(out, format="JPEG", quality=85, optimize=True)
                elif img.format == "PNG":
                    if picture.mode not in ("RGB", "RGBA", "L", "LA", "P"):
                        picture = picture.convert("RGBA")
                    picture.save(out, format="PNG", optimize=True)
                else:
                    if picture.mode not in ("RGB", "RGBA"):
                        picture = picture.convert("RGBA")
                    picture.save(out, format="WEBP", quality=85)
    except UploadRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadRejected("too_many_pixels") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UploadRejected("bad_type") from exc
    content_type, ext = kind
    return out.getvalue(), content_type, ext


class _Waiters:
    """In-process wake-ups for open event streams, one set of events per inbox address."""

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.closing = False

    def notify(self, address: str) -> None:
        for event in self._events.get(address, ()):
            event.set()

    def notify_all(self) -> None:
        for events in self._events.values():
            for event in events:
                event.set()

    async def wait(self, address: str, *, seconds: float) -> bool:
        """True when woken (new message or shutdown), False on timeout."""
        event = asyncio.Event()
        self._events[address].add(event)
        try:
            await asyncio.wait_for(event.wait(), seconds)
            return True
        except TimeoutError:
            return False
        finally:
            events = self._events.get(address)
            if events is not None:
                events.discard(event)
                if not events:
                    self._events.pop(address, None)

    def open_streams(self) -> int:
        return sum(len(events) for events in self._events.values())


class WebChat:
    """What the web adapter needs from the core besides commands, views and the engine."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        default_locale: str = "ko",
        idle: timedelta = timedelta(days=180),
        retention: timedelta = timedelta(days=30),
        upload_dir: Path,
        upload_max_bytes: int = 5 * 1024 * 1024,
        upload_max_pixels: int = 40_000_000,
        upload_quota_bytes: int = 25 * 1024 * 1024,
        upload_quota_files: int = 20,
        draft_upload_retention: timedelta = timedelta(days=7),
    ) -> None:
        self.db = db
        self.clock = clock
        self.default_locale = default_locale
        self.idle = idle
        self.retention = retention
        self.upload_dir = upload_dir
        self.upload_max_bytes = upload_max_bytes
        self.upload_max_pixels = upload_max_pixels
        self.upload_quota_bytes = upload_quota_bytes
        self.upload_quota_files = upload_quota_files
        self.draft_upload_retention = draft_upload_retention
        self._waiters = _Waiters()
        self._poller: asyncio.Task[None] | None = None
        # Re-encoding is CPU work: one at a time, in a thread of lower priority than the
        # event loop's, so a flood of photos slows photos, not everyone's chat.
        self._encoder: ThreadPoolExecutor | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, db: Database, clock: Clock) -> WebChat:
        return cls(
            db=db,
            clock=clock,
            default_locale=settings.default_locale,
            idle=timedelta(days=settings.web_session_idle_days),
            retention=timedelta(days=settings.web_inbox_retention_days),
            upload_dir=settings.data_dir / "uploads" / "web",
            upload_max_bytes=settings.web_upload_max_bytes,
            upload_max_pixels=settings.web_upload_max_pixels,
            upload_quota_bytes=settings.web_upload_quota_bytes,
            upload_quota_files=settings.web_upload_quota_files,
            draft_upload_retention=timedelta(days=settings.web_draft_upload_retention_days),
        )

    # --- sessions ------------------------------------------------------------------
    def _locale(self, locale: str | None) -> str:
        return locale if locale in LOCALES else self.default_locale

    async def open_session(self, *, locale: str | None = None) -> tuple[str, WebSession]:
        """A new session: (the token for the browser, the stored session)."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self.clock.now()
        row = WebSessionRow(
            id=hash_token(token),
            locale=self._locale(locale),
            created_at=now,
            last_seen_at=now,
            delivered_up_to=0,
        )
        async with self.db.write() as session:
            session.add(row)
        return token, _session(row)

    async def find_session(self, token: str) -> WebSession | None:
        """The live session behind a token; None when unknown or idle for too long."""
        if not token or len(token) > 256:
            return None
        async with self.db.read() as session:
            row = await session.get(WebSessionRow, hash_token(token))
            if row is None or row.last_seen_at < self.clock.now() - self.idle:
                return None
            return _session(row)

    async def touch(self, web_session: WebSession) -> None:
        """Remember the session is in use (written at most every few minutes)."""
        now = self.clock.now()
        if now - web_session.last_seen_at < TOUCH_EVERY:
            return
        async with self.db.write() as session:
            await session.execute(
                update(WebSessionRow)
                .where(WebSessionRow.id == web_session.id)
                .values(last_seen_at=now)
            )

    async def set_locale(self, web_session: WebSession, locale: str) -> WebSession:
        value = self._locale(locale)
        now = self.clock.now()
        async with self.db.write() as session:
            await session.execute(
                update(WebSessionRow)
                .where(WebSessionRow.id == web_session.id)
                .values(locale=value, last_seen_at=now)
            )
        return WebSession(
            id=web_session.id,
            locale=value,
            created_at=web_session.created_at,
            last_seen_at=now,
            delivered_up_to=web_session.delivered_up_to,
        )

    # --- the inbox -----------------------------------------------------------------
    async def put(self, address: str, reply: Reply) -> int:
        """Keep a pushed message for a session and wake its open streams; the item's id."""
        now = self.clock.now()
        async with self.db.write() as session:
            known = await session.get(WebSessionRow, address)
            if known is None:
                raise UnknownAddress("no such web session")
            item = WebInboxItem(address=address, payload=reply_to_json(reply), created_at=now)
            session.add(item)
            await session.flush()
            item_id = int(item.id)
        self._waiters.notify(address)
        return item_id

    async def items_after(
        self, address: str, after: int, *, limit: int = INBOX_BATCH
    ) -> list[InboxItem]:
        async with self.db.read() as session:
            rows = (
                await session.execute(
                    select(WebInboxItem)
                    .where(WebInboxItem.address == address, WebInboxItem.id > after)
                    .order_by(WebInboxItem.id)
                    .limit(limit)
                )
            ).scalars()
            return [
                InboxItem(id=r.id, reply=reply_from_json(r.payload), created_at=r.created_at)
                for r in rows
            ]

    async def mark_delivered(self, address: str, up_to: int) -> None:
        """Remember the newest item written to a stream (the start of a stream with no cursor)."""
        async with self.db.write() as session:
            await session.execute(
                update(WebSessionRow)
                .where(WebSessionRow.id == address, WebSessionRow.delivered_up_to < up_to)
                .values(delivered_up_to=up_to)
            )

    async def wait(self, address: str, *, seconds: float, poll: float | None = None) -> bool:
        """Wait for a new item for ``address`` (or shutdown); True when woken.

        Items put by this process wake the stream at once. With ``poll``, one poller per
        process also looks for items that other processes put, every ``poll`` seconds, in one
        query for every open stream (not one per stream), and wakes the streams they are for.
        """
        if self._waiters.closing:
            return True
        if poll is not None and self._poller is None:
            self._poller = asyncio.create_task(self._poll(poll), name="webchat-inbox-poller")
        return await self._waiters.wait(address, seconds=seconds)

    async def _poll(self, every: float) -> None:
        try:
            async with self.db.read() as session:
                high = int(
                    (await session.execute(select(func.max(WebInboxItem.id)))).scalar() or 0
                )
            while not self._waiters.closing and self._waiters.open_streams():
                await asyncio.sleep(every)
                async with self.db.read() as session:
                    rows = (
                        await session.execute(
                            select(WebInboxItem.address, func.max(WebInboxItem.id))
                            .where(WebInboxItem.id > high)
                            .group_by(WebInboxItem.address)
                        )
                    ).all()
                for address, top in rows:
                    high = max(high, int(top))
                    self._waiters.notify(str(address))
        except Exception as exc:  # noqa: BLE001 - the streams still get this process's pushes
            log.warning("webchat inbox poller stopped: %s", type(exc).__name__)
        finally:
            self._poller = None

    @property
    def closing(self) -> bool:
        return self._waiters.closing

    def close_streams(self) -> None:
        """Ask every open stream to finish (server shutdown)."""
        self._waiters.closing = True
        self._waiters.notify_all()
        if self._poller is not None:
            self._poller.cancel()

    def open_streams(self) -> int:
        return self._waiters.open_streams()

    # --- uploads -------------------------------------------------------------------
    async def upload_usage(self, session_id: str) -> tuple[int, int]:
        """(files, bytes) a session's uploads hold now."""
        async with self.db.read() as session:
            files, size = (
                await session.execute(
                    select(func.count(), func.coalesce(func.sum(WebUpload.size), 0)).where(
                        WebUpload.session_id == session_id
                    )
                )
            ).one()
        return int(files), int(size)

    async def check_quota(self, session_id: str, incoming: int = 0) -> None:
        """Raise ``UploadRejected("quota")`` when the session's photos fill its share."""
        files, size = await self.upload_usage(session_id)
        if files >= self.upload_quota_files or size + incoming > self.upload_quota_bytes:
            raise UploadRejected("quota")

    async def save_upload(self, web_session: WebSession, data: bytes) -> str:
        """Keep a re-encoded copy of a picture (never the original: no EXIF/GPS); returns its
        reference ``web:<id>``. Raises ``UploadRejected``."""
        if len(data) > self.upload_max_bytes:
            raise UploadRejected("too_large")
        if sniff_image(data) is None:
            raise UploadRejected("bad_type")
        if self._encoder is None:
            self._encoder = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="photo-encoder", initializer=_lower_priority
            )
        clean, content_type, ext = await asyncio.get_running_loop().run_in_executor(
            self._encoder, partial(reencode, data, max_pixels=self.upload_max_pixels)
        )
        await self.check_quota(web_session.id, len(clean))
        upload_id = secrets.token_hex(16)
        path = self.upload_dir / f"{upload_id}.{ext}"
        await asyncio.to_thread(self._write_file, path, clean)
        try:
            async with self.db.write() as session:
                session.add(
                    WebUpload(
                        id=upload_id,
                        session_id=web_session.id,
                        content_type=content_type,
                        size=len(clean),
                        created_at=self.clock.now(),
                    )
                )
        except Exception:
            path.unlink(missing_ok=True)
            raise
        return f"{CHANNEL}:{upload_id}"

    def upload_path(self, upload_id: str, content_type: str) -> Path:
        ext = next(e for _, _, ct, e in IMAGE_TYPES if ct == content_type)
        return self.upload_dir / f"{upload_id}.{ext}"

    async def delete_uploads(self, rows: list[tuple[str, str]]) -> int:
        """Delete uploads ``(id, content type)``: the files first, then their rows."""
        if not rows:
            return 0
        def unlink_all() -> None:
            for i, ct in rows:
                self.upload_path(i, ct).unlink(missing_ok=True)

        await asyncio.to_thread(unlink_all)
        async with self.db.write() as session:
            await session.execute(delete(WebUpload).where(WebUpload.id.in_([i for i, _ in rows])))
        return len(rows)

    @staticmethod
    def _write_file(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)

    async def upload(self, ref: str) -> tuple[Path, str, str] | None:
        """(file path, content type, owner session id) of ``web:<id>``, if it exists."""
        prefix, _, upload_id = ref.partition(":")
        if prefix != CHANNEL or not upload_id.isalnum() or len(upload_id) != 32:
            return None
        async with self.db.read() as session:
            row = await session.get(WebUpload, upload_id)
            if row is None:
                return None
            return self.upload_path(row.id, row.content_type), row.content_type, row.session_id

    # --- housekeeping --------------------------------------------------------------
    async def stats(self) -> dict[str, Any]:
        async with self.db.read() as session:
            sessions = (
                await session.execute(select(func.count()).select_from(WebSessionRow))
            ).scalar_one()
            pending = (
                await session.execute(select(func.count()).select_from(WebInboxItem))
            ).scalar_one()
        return {
            "status": "ok",
            "sessions": int(sessions),
            "inbox": int(pending),
            "streams": self.open_streams(),
        }


def install(core: Kernel) -> WebChat:
    """The web chat service (kept as ``core.webchat``) and its health probe; its daily purge
    is ``core.web_retention``'s job."""
    chat = WebChat.from_settings(core.settings, db=core.db, clock=core.clock)
    core.add_health("webchat", chat.stats)
    return chat
