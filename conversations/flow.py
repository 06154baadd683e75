"""The flow API: a flow is a set of named steps, each data plus small async callbacks.

A feature's flows reach the engine as a ``FlowPack`` (flows, routed choice-id prefixes, main
menu entries, interceptors) that the composition root hands to ``build_engine``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from conversations.incoming import Inbound, Incoming
from core.api import CoreAPI
from core.commands import Command
from core.domain.errors import DomainError, InvalidField
from core.i18n import catalog, t
from core.messages import Choice, Reply
from core.ports import ChannelCapabilities

__all__ = [
    "Ctx",
    "Flow",
    "FlowPack",
    "Gate",
    "Interceptor",
    "LocationHandler",
    "MenuItem",
    "PhotoHandler",
    "PickHandler",
    "Refusal",
    "Render",
    "RouteHandler",
    "Step",
    "TextHandler",
    "error_text",
    "short_label",
]

LABEL_MAX = 30

Render = Callable[["Ctx"], Awaitable[Reply | Sequence[Reply]]]
TextHandler = Callable[["Ctx", str], Awaitable[None]]
PickHandler = Callable[["Ctx", str], Awaitable[None]]
PhotoHandler = Callable[["Ctx", str, str | None], Awaitable[None]]
LocationHandler = Callable[["Ctx", float, float], Awaitable[None]]
RouteHandler = Callable[["Ctx", str], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One screen of a flow.

    ``render`` returns what to show when the step is entered; the choices of its last reply
    are what the person can pick (by button, number or label). The ``on_*`` callbacks consume
    input; a callback that neither says nor navigates means "not understood" and the engine
    answers with a polite hint. ``nav`` adds back/cancel choices; ``remember`` lets "back"
    return to this step.
    """

    render: Render
    on_text: TextHandler | None = None
    on_pick: PickHandler | None = None
    on_photo: PhotoHandler | None = None
    on_location: LocationHandler | None = None
    nav: bool = True
    remember: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Flow:
    """A named set of steps. ``on_route`` receives a globally routed choice id (a route of its
    ``FlowPack``); without it a routed pick starts ``start`` and goes to that step's ``on_pick``.
    ``resumable`` flows ask "continue?" when a person comes back after a long pause.
    ``draft_keys`` name the data a person typed: leaving keeps it as a draft
    (``conversations.drafts``) and cancelling asks before deleting it.
    """

    name: str
    steps: Mapping[str, Step]
    start: str
    on_route: RouteHandler | None = None
    resumable: bool = False
    resume_key: str = "conv.resume.ask"
    draft_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.start not in self.steps:
            raise ValueError(f"flow {self.name}: unknown start step {self.start!r}")


Interceptor = Callable[["Ctx", Incoming], Awaitable[list[Reply] | None]]
"""``fn(ctx, incoming)`` runs before any flow; a list of replies means handled."""

Refusal = Callable[["Ctx", DomainError], None]
"""``fn(ctx, err)`` runs when a turn was refused by a domain error, after the polite
explanation is on ``ctx.out`` and the state is back to before the turn (the draft stays): it may
add to the explanation or offer a way on (``ctx.retry_choices``)."""

Gate = Callable[["Ctx", str, str], Awaitable[bool]]
"""``fn(ctx, flow, step)`` runs before a step is shown; True means it sent the person elsewhere
(with ``ctx.start``) and the step is not shown (e.g. the privacy notice before a first write)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MenuItem:
    """A main-menu entry a feature adds: a routed choice id and the catalog key of its label."""

    choice_id: str
    label_key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowPack:
    """What one feature adds to the engine.

    ``routes`` are (choice-id prefix, flow name) pairs: a picked choice id starting with the
    prefix starts that flow from any state. ``menu`` entries follow the built-in ones on the
    main menu; ``interceptors`` run before any flow, in the order the packs are given;
    ``gates`` see every step about to be shown and may send the person elsewhere first.
    """

    flows: tuple[Flow, ...] = ()
    routes: tuple[tuple[str, str], ...] = ()
    menu: tuple[MenuItem, ...] = ()
    interceptors: tuple[Interceptor, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    gates: tuple[Gate, ...] = ()


def error_text(err: DomainError, locale: str) -> str:
    """A domain error as a polite sentence: field rules are named precisely."""
    if isinstance(err, InvalidField):
        key = f"conv.invalid.{err.field}.{err.code}"
        if key in catalog("ko"):
            return t(key, locale, **err.params)
    return t(err.key, locale, **err.params_for(locale))


def short_label(text: str, limit: int = LABEL_MAX) -> str:
    """A button label of at most ``limit`` characters, on one line."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1].rstrip() + "…"


@dataclass(slots=True)
class _Target:
    flow: str
    step: str
    data: dict[str, Any] | None = None  # a new flow's data; None keeps the current
    remember: bool = True
    page: int = 0  # which page of choices to show (when they exceed the channel's buttons)


@dataclass(slots=True, kw_only=True)
class Ctx:
    """What a flow callback sees and does. Mutable: one per handled message."""

    core: CoreAPI
    inbound: Inbound
    state: dict[str, Any]
    capabilities: ChannelCapabilities
    out: list[Reply] = field(default_factory=list)
    target: _Target | None = None
    acted: bool = False
    retry_choices: tuple[Choice, ...] | None = None

    # --- who and where -------------------------------------------------------------
    @property
    def channel(self) -> str:
        return self.inbound.channel

    @property
    def user_id(self) -> str:
        return self.inbound.user_id

    @property
    def person_id(self) -> int:
        return int(self.state["person_id"])

    @property
    def locale(self) -> str:
        return str(self.state.get("locale") or "ko")

    @locale.setter
    def locale(self, value: str) -> None:
        self.state["locale"] = value

    @property
    def source(self) -> str | None:
        return self.state.get("source")

    @property
    def flow(self) -> str:
        return str(self.state.get("flow") or "menu")

    @property
    def step(self) -> str:
        return str(self.state.get("step") or "main")

    @property
    def data(self) -> dict[str, Any]:
        """The current flow's own data (JSON values only): kept until the flow ends."""
        return self.state.setdefault("data", {})

    async def execute(self, command: Command) -> Any:
        """Run ``command`` on this person's behalf: their limits apply first (``core.limits``;
        a refusal is a ``DomainError`` the engine explains, keeping the draft)."""
        await self.core.limits.check(command)
        return await self.core.execute(command)

    # --- saying and going ----------------------------------------------------------
    def t(self, key: str, **params: Any) -> str:
        return t(key, self.locale, **params)

    def say(self, text: str | Reply, *, choices: Sequence[Choice] = ()) -> None:
        """Add a message before the next screen."""
        self.acted = True
        reply = text if isinstance(text, Reply) else Reply(text=text)
        if choices:
            reply = replace(reply, choices=tuple(choices))
        self.out.append(reply)

    def goto(self, step: str, *, remember: bool = True) -> None:
        """Move to another step of this flow and show it."""
        self.acted = True
        self.target = _Target(self.flow, step, None, remember)

    def start(self, flow: str, *, step: str | None = None, **data: Any) -> None:
        """Leave this flow and start ``flow`` (at ``step`` or its start) with ``data``."""
        self.acted = True
        self.target = _Target(flow, step or "", dict(data), False)

    def menu(self) -> None:
        """End the flow: back to the main menu."""
        self.start("menu")

    def retry(self, text: str) -> None:
        """Stay on this step: say ``text`` and offer the same choices again."""
        self.acted = True
        self.retry_choices = tuple(self.offered)
        self.out.append(Reply(text=text))

    def stay(self) -> None:
        """Handled; show this step again."""
        self.acted = True
        self.target = _Target(self.flow, self.step, None, False)

    @property
    def offered(self) -> list[Choice]:
        return [Choice(id=i, label=lbl) for i, lbl in self.state.get("offered", [])]
