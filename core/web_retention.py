"""Retention of the web chat's data: what the settings promise, done by one daily job.

- a session unused for ``GONGNON_WEB_SESSION_IDLE_DAYS`` goes with its inbox, its photos and its
  conversation state (the browser's token stops working anyway);
- pushed messages older than ``GONGNON_WEB_INBOX_RETENTION_DAYS`` go;
- photos never attached to a submitted proposal (abandoned drafts) go after
  ``GONGNON_WEB_DRAFT_UPLOAD_RETENTION_DAYS``;
- ``erase_person_uploads`` deletes an erased person's photos at once (for the privacy feature's
  "delete me": call it before the person's identities are deleted).

``purge`` is idempotent and works in batches; the scheduled job runs once a day across every
process (``core.once``). The privacy feature's daily purge may call ``purge`` itself instead.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import delete, exists, literal, select

from core.adapters.orm import Attachment, Identity
from core.adapters.orm_web import WebInboxItem, WebSessionRow, WebUpload
from core.kernel import Kernel
from core.ports import StateKey, StateStore

if TYPE_CHECKING:
    from core.webchat import WebChat

__all__ = ["erase_person_uploads", "erase_session_uploads", "install", "purge"]

log = logging.getLogger(__name__)

BATCH = 500


async def _uploads_of(chat: WebChat, session_ids: list[str]) -> list[tuple[str, str]]:
    async with chat.db.read() as session:
        rows = await session.execute(
            select(WebUpload.id, WebUpload.content_type).where(
                WebUpload.session_id.in_(session_ids)
            )
        )
        return [(str(i), str(ct)) for i, ct in rows]


async def erase_session_uploads(chat: WebChat, session_ids: list[str]) -> int:
    """Delete every photo of these web sessions (files and rows); how many."""
    deleted = 0
    for start in range(0, len(session_ids), BATCH):
        deleted += await chat.delete_uploads(
            await _uploads_of(chat, session_ids[start : start + BATCH])
        )
    return deleted


async def erase_person_uploads(chat: WebChat, person_id: int) -> int:
    """Delete an erased person's photos at once (their web identities name the sessions)."""
    async with chat.db.read() as session:
        ids = (
            await session.execute(
                select(Identity.external_id).where(
                    Identity.person_id == person_id, Identity.channel == "web"
                )
            )
        ).scalars().all()
    return await erase_session_uploads(chat, [str(i) for i in ids])


async def _purge_idle_sessions(chat: WebChat, state: StateStore) -> tuple[int, int, int]:
    cutoff = chat.clock.now() - chat.idle
    sessions = uploads = inbox = 0
    while True:
        async with chat.db.read() as session:
            ids = [
                str(i)
                for i in (
                    await session.execute(
                        select(WebSessionRow.id)
                        .where(WebSessionRow.last_seen_at < cutoff)
                        .limit(BATCH)
                    )
                ).scalars()
            ]
        if not ids:
            return sessions, uploads, inbox
        uploads += await erase_session_uploads(chat, ids)
        async with chat.db.write() as session:
            items = await session.execute(
                delete(WebInboxItem).where(WebInboxItem.address.in_(ids))
            )
            inbox += int(items.rowcount or 0)  # type: ignore[attr-defined]
            await session.execute(delete(WebSessionRow).where(WebSessionRow.id.in_(ids)))
        for session_id in ids:
            await state.delete(StateKey("web", session_id))
        sessions += len(ids)


async def _purge_draft_uploads(chat: WebChat) -> int:
    cutoff = chat.clock.now() - chat.draft_upload_retention
    attached = exists().where(Attachment.ref == literal("web:") + WebUpload.id)
    deleted = 0
    while True:
        async with chat.db.read() as session:
            rows = [
                (str(i), str(ct))
                for i, ct in await session.execute(
                    select(WebUpload.id, WebUpload.content_type)
                    .where(WebUpload.created_at < cutoff, ~attached)
                    .limit(BATCH)
                )
            ]
        if not rows:
            return deleted
        deleted += await chat.delete_uploads(rows)


async def purge(chat: WebChat, *, state: StateStore) -> dict[str, int]:
    """One pass of every web retention rule; counts of what went."""
    sessions, session_uploads, session_inbox = await _purge_idle_sessions(chat, state)
    async with chat.db.write() as session:
        inbox = await session.execute(
            delete(WebInboxItem).where(WebInboxItem.created_at < chat.clock.now() - chat.retention)
        )
    drafts = await _purge_draft_uploads(chat)
    return {
        "sessions": sessions,
        "inbox": session_inbox + int(inbox.rowcount or 0),  # type: ignore[attr-defined]
        "uploads": session_uploads + drafts,
    }


def install(core: Kernel, chat: WebChat) -> None:
    """The daily job (04:10 local time), once across every process."""

    async def job() -> None:
        if await core.once(f"webchat:purge:{core.clock.now():%Y-%m-%d}"):
            counts = await purge(chat, state=core.state)
            log.info("web chat purge: %s", counts)

    core.scheduler.cron("webchat-purge", job, hour=4, minute=10)
