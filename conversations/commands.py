"""The one list of typed commands (``/new``, ``/mine`` …): the engine routes them, and channels
with a command menu (Telegram's ``setMyCommands``) show the ones marked ``menu``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["COMMANDS", "CommandSpec", "by_name", "menu_commands"]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """``/name`` starts ``flow`` with ``data``; ``flow`` None: the engine itself handles it
    (start, cancel, back). ``menu``: shown in a channel's command menu, described by the
    catalog key ``commands.<name>``."""

    name: str
    flow: str | None
    data: Mapping[str, Any] = field(default_factory=dict)
    menu: bool = True
    aliases: tuple[str, ...] = ()
    takes_arg: bool = False  # "/link 123456": the flow gets data["arg"] (stripped, ≤ 40 chars)


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("start", None),
    CommandSpec("menu", "menu"),
    CommandSpec("new", "intake", aliases=("propose",)),
    CommandSpec("mine", "mine"),
    CommandSpec("following", "following"),
    CommandSpec("lookup", "lookup", aliases=("find",)),
    CommandSpec("mydata", "mydata"),  # 내 정보: see, download, withdraw, delete (core.privacy)
    CommandSpec("language", "language", aliases=("lang",)),
    CommandSpec("link", "link", takes_arg=True),
    CommandSpec("cancel", None),
    CommandSpec("help", "menu", {"help": True}),
    CommandSpec("back", None, menu=False),
)


def by_name() -> Mapping[str, CommandSpec]:
    """Every command under its name and its aliases."""
    out: dict[str, CommandSpec] = {}
    for spec in COMMANDS:
        for name in (spec.name, *spec.aliases):
            out[name] = spec
    return MappingProxyType(out)


def menu_commands() -> tuple[str, ...]:
    return tuple(spec.name for spec in COMMANDS if spec.menu)
