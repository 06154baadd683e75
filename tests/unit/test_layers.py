"""The house rules that import-linter cannot see: what Python really loads, and who writes.

import-linter (``make lint``, ``[tool.importlinter]`` in pyproject.toml) checks the imports
written in the code. Python also runs every package ``__init__`` on the way to a module, so a
heavy ``__init__`` could pull SQLAlchemy into the conversations layer unseen: the first test
imports every conversations module in a fresh interpreter and looks at ``sys.modules``.

Writes go through command handlers on the message bus (a ``UnitOfWork``); the few modules that
open a write transaction themselves are named in ``WRITERS`` with the reason, and listed in
docs/architecture.md ("Writes outside the handlers"). A new ``db.write()`` elsewhere fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Top-level packages the conversations layer must never load, even through an __init__.
FORBIDDEN_IN_CONVERSATIONS = (
    "sqlalchemy", "alembic", "asyncpg", "aiosqlite", "aiohttp", "redis", "telegram",
    "slack_bolt", "slack_sdk",
)

WRITERS = {
    "core/unit_of_work.py": "the message bus's unit of work: every command handler's transaction",
    "core/bootstrap.py": "once-keys (core.once: a unique row claimed by the first caller)",
    "core/delivery/outbox.py": "queue leases: claim, finish, renew, release of deliveries",
    "core/officials/worker.py": "queue leases of the Slack board outbox, and the board's post refs",
    "core/sync/relay.py": "queue leases of the forum outbox, dead letters",
    "core/sync/inbound.py": "the reconciliation cursor (a journal of how far the feed was read)",
    "core/officials/service.py": "the officials' audit journal, thread and digest queue entries",
    "core/webchat.py": "the web channel's own transport state: sessions, inbox, uploads",
    "core/web_retention.py": "the web chat's retention job (deletes expired transport state)",
    "core/privacy/retention.py": "the daily retention purge (finished rows, in short batches)",
}

_WRITE = re.compile(r"\.write\(\)")


def test_conversations_load_no_database_and_no_chat_sdk() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import conversations\n"
        "for m in pkgutil.walk_packages(conversations.__path__, 'conversations.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter, a fixed script
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    loaded = {name.split(".")[0] for name in out}
    assert loaded.isdisjoint(FORBIDDEN_IN_CONVERSATIONS), sorted(
        loaded & set(FORBIDDEN_IN_CONVERSATIONS)
    )
    assert not [m for m in out if m.startswith(("core.adapters", "core.bootstrap", "core.views"))]


def test_writes_outside_handlers_are_the_named_exceptions() -> None:
    found = {
        str(path.relative_to(ROOT))
        for package in ("core", "conversations", "bots")
        for path in (ROOT / package).rglob("*.py")
        if _WRITE.search(path.read_text(encoding="utf-8"))
    }
    found.discard("core/adapters/db.py")  # where write() is defined
    assert found <= set(WRITERS), sorted(found - set(WRITERS))
    assert not any(p.startswith(("conversations/", "bots/")) for p in found)


def test_the_exceptions_are_documented() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for path in WRITERS:
        assert f"`{path}`" in doc, path
