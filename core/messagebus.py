"""The message bus: runs a command's handler in a unit of work, then the events it raised.

Two kinds of event subscribers:
- *in-transaction* ones run inside the same unit of work before it commits, so what they write
  (notification deliveries, forum outbox rows) commits or rolls back with the change itself;
- *after-commit* ones run once the transaction is durable (waking workers, Slack updates);
  their failures are logged, never lost silently, and never undo the command.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from core.commands import Command
from core.events import Event
from core.unit_of_work import UnitOfWork

__all__ = ["AfterCommit", "BatchHandler", "CommandHandler", "InTransaction", "MessageBus"]

log = logging.getLogger(__name__)

CommandHandler = Callable[[Any, UnitOfWork], Awaitable[Any]]
InTransaction = Callable[[Any, UnitOfWork], Awaitable[None]]
AfterCommit = Callable[[Any], Awaitable[None]]
BatchHandler = Callable[[list[Any], UnitOfWork], Awaitable[list[Any]]]


class MessageBus:
    def __init__(self, uow_factory: Callable[[], UnitOfWork]) -> None:
        self._uow_factory = uow_factory
        self._commands: dict[type[Command], CommandHandler] = {}
        self._in_tx: dict[type[Event], list[InTransaction]] = defaultdict(list)
        self._after: dict[type[Event], list[AfterCommit]] = defaultdict(list)
        self._tasks: set[asyncio.Task[None]] = set()
        self._batched: dict[type[Command], tuple[BatchHandler, int]] = {}
        self._waiting: dict[type[Command], list[tuple[Command, asyncio.Future[Any]]]] = {}
        self._flushing: set[type[Command]] = set()

    # --- wiring ------------------------------------------------------------------
    def register(self, command: type[Command], handler: CommandHandler) -> None:
        if command in self._commands:
            raise ValueError(f"{command.__name__} already has a handler")
        self._commands[command] = handler

    def register_batched(
        self, command: type[Command], handler: BatchHandler, *, max_batch: int = 200
    ) -> None:
        """Group commit for a command that raises no events: calls that arrive while a batch
        is being written wait and go together in the next transaction. ``handler(commands,
        uow)`` returns one result per command, in order. A batch that fails is retried one by
        one, so a bad command fails alone."""

        async def single(command_: Command, uow: UnitOfWork) -> Any:
            return (await handler([command_], uow))[0]

        self.register(command, single)
        self._batched[command] = (handler, max_batch)

    def in_transaction(self, event: type[Event], subscriber: InTransaction) -> None:
        self._in_tx[event].append(subscriber)

    def after_commit(self, event: type[Event], subscriber: AfterCommit) -> None:
        self._after[event].append(subscriber)

    # --- running -----------------------------------------------------------------
    async def handle(self, command: Command) -> Any:
        if type(command) in self._batched:
            return await self._enqueue(command)
        return await self._handle_one(command)

    async def _enqueue(self, command: Command) -> Any:
        kind = type(command)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(kind, []).append((command, future))
        if kind not in self._flushing:
            self._flushing.add(kind)
            task = asyncio.create_task(self._flush(kind))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _flush(self, kind: type[Command]) -> None:
        handler, max_batch = self._batched[kind]
        try:
            while self._waiting.get(kind):
                waiting = self._waiting[kind]
                batch, self._waiting[kind] = waiting[:max_batch], waiting[max_batch:]
                try:
                    async with self._uow_factory() as uow:
                        results = await handler([item for item, _ in batch], uow)
                        if uow.events:
                            raise RuntimeError(f"batched {kind.__name__} raised events")
                except Exception:
                    for item, future in batch:  # one by one: only the bad one fails
                        try:
                            result = await self._handle_one(item)
                        except Exception as exc:
                            if not future.done():
                                future.set_exception(exc)
                        else:
                            if not future.done():
                                future.set_result(result)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._flushing.discard(kind)

    async def _handle_one(self, command: Command) -> Any:
        handler = self._commands.get(type(command))
        if handler is None:
            raise LookupError(f"no handler for {type(command).__name__}")
        async with self._uow_factory() as uow:
            result = await handler(command, uow)
            seen = 0
            while seen < len(uow.events):  # subscribers may raise further events
                event = uow.events[seen]
                seen += 1
                for subscriber in self._in_tx.get(type(event), ()):
                    await subscriber(event, uow)
            events = list(uow.events)
        for event in events:
            for after in self._after.get(type(event), ()):
                task = asyncio.create_task(self._run_after(after, event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return result

    async def _run_after(self, subscriber: AfterCommit, event: Event) -> None:
        try:
            await subscriber(event)
        except Exception:
            log.exception("after-commit subscriber %s failed for %s",
                          getattr(subscriber, "__qualname__", subscriber), type(event).__name__)

    async def drain(self) -> None:
        """Wait for running after-commit subscribers (shutdown and tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
