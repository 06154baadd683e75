"""The ``http`` forum backend: the REST contract in docs/forum-openapi.yaml, over aiohttp."""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import aiohttp

from core.adapters.forum_wire import change_from_wire, changes_from_wire
from core.ports import (
    ForumChange,
    ForumConflict,
    ForumError,
    ForumProposal,
    ForumStatus,
    ForumUnavailable,
    SkippedEvent,
)

__all__ = ["ForumSession", "HttpForum"]

log = logging.getLogger(__name__)

_RETRYABLE = {408, 409, 425, 429}
PAGE = 100


class ForumSession:
    """The forum adapters' one aiohttp session per process (bearer token, JSON), opened on
    first use inside the running loop."""

    __slots__ = ("_session", "_timeout", "_token")

    def __init__(self, *, token: str | None, timeout: float) -> None:
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def __call__(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Accept": "application/json", "User-Agent": "gongnon-sync/1"}
            if self._token:
                headers["Authorization"] = f"Bearer {self._token}"
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=headers)
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


class HttpForum:
    """The documented REST contract (docs/forum-openapi.yaml)."""

    name = "http"

    def __init__(self, *, base_url: str, token: str | None, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = ForumSession(token=token, timeout=timeout)
        self.skipped: deque[SkippedEvent] = deque(maxlen=100)  # `gongnon sync status` shows them

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        try:
            async with self._client().request(
                method, self.base_url + path, json=body, headers=headers, params=params
            ) as resp:
                text = await resp.text()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise ForumUnavailable(f"{method} {path}: {type(exc).__name__}") from exc
        if status == 409 and path.endswith("/status"):  # a status change met another one
            current = _json_object(text).get("current") or {}
            try:
                theirs, version = str(current["status"]), int(current["version"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ForumUnavailable(f"{method} {path}: 409 without the current status") from exc
            raise ForumConflict(f"{method} {path}: HTTP 409", status=theirs, version=version)
        if status >= 500 or status in _RETRYABLE:
            raise ForumUnavailable(f"{method} {path}: HTTP {status}")
        if status >= 400:
            raise ForumError(f"{method} {path}: HTTP {status} {text[:200]}")
        try:
            data = json.loads(text) if text else {}
        except ValueError as exc:
            raise ForumUnavailable(f"{method} {path}: answer is not JSON") from exc
        if not isinstance(data, dict):
            raise ForumUnavailable(f"{method} {path}: answer is not an object")
        return data

    @staticmethod
    def _id(data: dict[str, Any], what: str) -> str:
        value = data.get("id")
        if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
            raise ForumUnavailable(f"{what}: the answer has no id")
        return str(value)

    async def create_proposal(self, proposal: ForumProposal, *, idempotency_key: str) -> str:
        body = {
            "external_ref": proposal.tracking,
            "title": proposal.title,
            "body": proposal.body,
            "category": proposal.category,
            "region": proposal.region,
            "author_ref": proposal.author_ref,
            "created_at": proposal.created_at.isoformat().replace("+00:00", "Z"),
        }
        data = await self._call("POST", "/proposals", body=body, idempotency_key=idempotency_key)
        return self._id(data, "create proposal")

    async def add_feedback(
        self, forum_id: str, *, body: str, author_ref: str, idempotency_key: str
    ) -> str:
        data = await self._call(
            "POST",
            f"/proposals/{quote(forum_id, safe='')}/feedback",
            body={"body": body, "author_ref": author_ref},
            idempotency_key=idempotency_key,
        )
        return self._id(data, "add feedback")

    async def add_support(self, forum_id: str, *, author_ref: str, idempotency_key: str) -> None:
        await self._call(
            "POST",
            f"/proposals/{quote(forum_id, safe='')}/supports",
            body={"author_ref": author_ref},
            idempotency_key=idempotency_key,
        )

    async def withdraw(self, forum_id: str, *, author_ref: str, idempotency_key: str) -> None:
        await self._call(
            "POST",
            f"/proposals/{quote(forum_id, safe='')}/withdraw",
            body={"author_ref": author_ref},
            idempotency_key=idempotency_key,
        )

    async def change_status(
        self,
        forum_id: str,
        *,
        status: str,
        from_status: str,
        reason: str,
        expected_date: str | None,
        idempotency_key: str,
    ) -> int:
        data = await self._call(
            "POST",
            f"/proposals/{quote(forum_id, safe='')}/status",
            body={
                "status": status,
                "from_status": from_status,
                "reason": reason,
                "expected_date": expected_date,
            },
            idempotency_key=idempotency_key,
        )
        try:
            return int(data["version"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ForumUnavailable(f"status {forum_id}: the answer has no version") from exc

    async def anonymise(self, forum_id: str, *, author_ref: str, idempotency_key: str) -> None:
        await self._call(
            "POST",
            f"/proposals/{quote(forum_id, safe='')}/anonymise",
            body={"author_ref": author_ref},
            idempotency_key=idempotency_key,
        )

    async def proposal_status(self, forum_id: str) -> ForumStatus:
        data = await self._call("GET", f"/proposals/{quote(forum_id, safe='')}")
        try:
            history = tuple(change_from_wire(item) for item in data.get("history") or ())
            return ForumStatus(
                forum_id=self._id(data, "proposal"),
                tracking=data.get("external_ref"),
                status=str(data["status"]),
                version=int(data["version"]),
                history=history,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ForumUnavailable(f"proposal {forum_id}: malformed answer ({exc})") from exc

    async def changes_since(self, cursor: str | None) -> tuple[Sequence[ForumChange], str | None]:
        params = {"limit": str(PAGE)}
        if cursor:
            params["cursor"] = cursor
        data = await self._call("GET", "/changes", params=params)
        items = data.get("changes")
        if not isinstance(items, list):
            raise ForumUnavailable("changes: the answer has no list")
        changes, skipped = changes_from_wire(items)
        for event_id, problem in skipped:  # recorded and skipped: one bad event never blocks
            log.warning("forum change feed: event %r skipped: %s", event_id, problem)
            self.skipped.append(SkippedEvent(event_id=event_id, problem=problem))
        next_cursor = data.get("next_cursor")
        return changes, (str(next_cursor) if next_cursor else cursor)

    async def close(self) -> None:
        await self._client.close()


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
