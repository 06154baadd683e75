"""The privacy feature's service: what conversations and channels read (they never touch the
database) and the parts the composition keeps (retention, after-erasure hooks)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from core.adapters.db import Database
from core.privacy.consent import agreed_version
from core.privacy.events import PersonErased
from core.privacy.mydata import my_data, to_json
from core.privacy.retention import Retention

__all__ = ["ErasureHook", "PrivacyService"]

ErasureHook = Callable[[PersonErased], Awaitable[None]]
"""After an erasure commits, each hook gets the event (e.g. the web chat deletes the upload files
of ``event.web_uploads``). Hooks must be idempotent: a crash may run them again."""


class PrivacyService:
    """``core.privacy``: the notice version, who agreed to it, a person's data, the retention
    purgers and the after-erasure hooks (work outside the database)."""

    def __init__(self, *, db: Database, notice_version: str, retention: Retention) -> None:
        self.db = db
        self.notice_version = notice_version
        self.retention = retention
        self.erasure_hooks: list[ErasureHook] = []

    def after_erasure(self, hook: ErasureHook) -> None:
        self.erasure_hooks.append(hook)

    async def has_agreed(self, person_id: int) -> bool:
        """Agreed to the current notice version (a changed notice must be agreed again)."""
        return await agreed_version(self.db, person_id) == self.notice_version

    async def data_of(self, person_id: int) -> dict[str, Any] | None:
        """Everything held about the person (``core.privacy.mydata``); None once erased."""
        return await my_data(self.db, person_id)

    async def download_of(self, person_id: int) -> bytes | None:
        """``data_of`` as the JSON file a person downloads."""
        data = await my_data(self.db, person_id)
        return None if data is None else to_json(data)
