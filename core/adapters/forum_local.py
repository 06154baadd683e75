"""The ``local`` forum backend: the bots' own database is the forum, so there is nothing to sync."""

from __future__ import annotations

from collections.abc import Sequence

from core.ports import ForumChange, ForumError, ForumProposal, ForumStatus

__all__ = ["LocalForum"]


class LocalForum:
    """Accepts every write as already done; the outbox writers are not even installed."""

    name = "local"

    async def create_proposal(self, proposal: ForumProposal, *, idempotency_key: str) -> str:
        return f"local:{proposal.tracking}"

    async def add_feedback(
        self, forum_id: str, *, body: str, author_ref: str, idempotency_key: str
    ) -> str:
        return f"local:{idempotency_key}"

    async def add_support(self, forum_id: str, *, author_ref: str, idempotency_key: str) -> None:
        return None

    async def withdraw(self, forum_id: str, *, author_ref: str, idempotency_key: str) -> None:
        return None

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
        return 0

    async def anonymise(self, forum_id: str, *, author_ref: str, idempotency_key: str) -> None:
        return None  # the bots' own tables are the forum: erasure already changed them

    async def proposal_status(self, forum_id: str) -> ForumStatus:
        raise ForumError("the local forum keeps no separate status: read core.views")

    async def changes_since(self, cursor: str | None) -> tuple[Sequence[ForumChange], str | None]:
        return (), cursor

    async def close(self) -> None:
        return None
