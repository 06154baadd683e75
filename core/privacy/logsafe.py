"""Exception logs without the payload: where it failed, never what the citizen wrote.

A database error's message can carry the values of the statement (asyncpg: ``invalid input
syntax for type integer: "<citizen text>"``; SQLAlchemy appends ``[parameters: …]`` unless the
engine hides them, which ours do). ``log_failure`` writes the exception *types* of the whole
chain and the stack frames (file, line, function, source line) — never exception messages or
local values — so a turn that failed can be found and fixed without copying personal data.
"""

from __future__ import annotations

import logging
import sys
import traceback

__all__ = ["DRIVER_LOGGERS", "log_failure", "quiet_driver_loggers", "redacted_traceback"]

# Database drivers log every statement *with its parameters* at DEBUG (aiosqlite: "executing
# …"); SQLAlchemy's engine logger does too when echo is on. Kept at WARNING even when the
# service runs at DEBUG.
DRIVER_LOGGERS = ("aiosqlite", "asyncpg", "sqlalchemy.engine", "sqlalchemy.pool")


def quiet_driver_loggers() -> None:
    for name in DRIVER_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def redacted_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` and its causes, with every message left out."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    chain: list[BaseException] = []
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    for index, item in enumerate(reversed(chain)):
        if index:
            parts.append("\nwhich led to:\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_list(traceback.extract_tb(item.__traceback__)))
        kind = type(item)
        parts.append(f"{kind.__module__}.{kind.__qualname__} (message withheld)\n")
    return "".join(parts)


def log_failure(logger: logging.Logger, msg: str, *args: object) -> None:
    """Inside ``except``: log ``msg % args`` at ERROR with the redacted traceback."""
    exc = sys.exc_info()[1]
    if exc is None:
        logger.error(msg, *args)
        return
    logger.error(msg + "\n%s", *args, redacted_traceback(exc))
