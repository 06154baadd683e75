"""The unit of work: one write transaction, its repositories, and the events it raised."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from core.adapters.db import Database
from core.adapters.repository import PersonRepository, ProposalRepository
from core.events import Event
from core.ports import Clock

__all__ = ["UnitOfWork"]

R = TypeVar("R")


class UnitOfWork:
    """``async with uow:`` opens a write transaction; leaving it commits (or rolls back).

    Handlers reach tables only through repositories: ``uow.persons``, ``uow.proposals``, and
    ``uow.repo(SomeFeatureRepository)`` for a feature's own (constructed with the session).
    """

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.events: list[Event] = []
        self._cm: AbstractAsyncContextManager[Any] | None = None
        self._repos: dict[type[Any], Any] = {}
        self.session: Any = None

    async def __aenter__(self) -> UnitOfWork:
        self._cm = self.db.write()
        self.session = await self._cm.__aenter__()
        self.events = []
        self._repos = {}
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._cm is not None
        try:
            await self._cm.__aexit__(exc_type, exc, tb)
        finally:
            self._cm = None
            self.session = None

    def now(self) -> datetime:
        return self.clock.now()

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def repo(self, cls: type[R]) -> R:
        if cls not in self._repos:
            self._repos[cls] = cls(self.session)  # type: ignore[call-arg]
        return self._repos[cls]  # type: ignore[no-any-return]

    @property
    def persons(self) -> PersonRepository:
        return self.repo(PersonRepository)

    @property
    def proposals(self) -> ProposalRepository:
        return self.repo(ProposalRepository)
