"""The conversation engine: one locked, stateful turn per inbound message, for any channel."""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from conversations import drafts
from conversations.commands import by_name
from conversations.flow import (
    Ctx,
    Flow,
    Gate,
    Interceptor,
    Refusal,
    Step,
    error_text,
    short_label,
)
from conversations.incoming import (
    Command,
    Inbound,
    Incoming,
    Location,
    Photo,
    Picked,
    Text,
    Unsupported,
)
from core.api import CoreAPI
from core.commands import CollectNews, EnsureIdentity
from core.domain.errors import DomainError
from core.domain.model import parse_tracking
from core.i18n import catalog, normalise_locale, t
from core.messages import Choice, Reply
from core.ports import ChannelCapabilities, StateKey
from core.privacy.logsafe import log_failure

__all__ = ["Engine", "Interceptor", "error_text"]

log = logging.getLogger(__name__)

STATE_VERSION = 1
BACK, CANCEL, MORE = "nav:back", "nav:cancel", "nav:more"
RESUME_CONTINUE, RESUME_RESTART = "resume:continue", "resume:restart"
NAV_IDS = frozenset({BACK, CANCEL, MORE})
_SOURCE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_HOPS = 8

_COMMANDS = by_name()  # the one registry (conversations.commands)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _words(key: str) -> frozenset[str]:
    """Typed words for a navigation action, in every locale (``conv.words.cancel``)."""
    out: set[str] = set()
    for locale in ("ko", "en"):
        raw = catalog(locale).get(key, "")
        out.update(_norm(w) for w in raw.split("|") if w.strip())
    return frozenset(out)


class Engine:
    """Channel-agnostic dialogs. ``await engine.handle(inbound)`` returns the replies to show.

    Built once with everything it runs (``conversations.build_engine`` assembles the packs):
    ``flows`` by name, ``routes`` as (choice-id prefix, flow name) pairs that start a flow from
    any state (the longest prefix wins; a later pair replaces an earlier one for the same
    prefix), ``interceptors`` that see every input before any flow, ``gates`` that see every
    step about to be shown (``conversations.flow.Gate``).
    """

    def __init__(
        self,
        *,
        core: CoreAPI,
        flows: Sequence[Flow],
        routes: Sequence[tuple[str, str]] = (),
        interceptors: Sequence[Interceptor] = (),
        refusals: Sequence[Refusal] = (),
        gates: Sequence[Gate] = (),
    ) -> None:
        self.core = core
        self._flows: dict[str, Flow] = {flow.name: flow for flow in flows}
        by_prefix = dict(routes)
        for prefix, name in by_prefix.items():
            if name not in self._flows:
                raise ValueError(f"route {prefix!r} names unknown flow {name!r}")
        self._routes = sorted(by_prefix.items(), key=lambda r: -len(r[0]))
        self._interceptors = tuple(interceptors)
        self._refusals = tuple(refusals)
        self._gates = tuple(gates)
        self._cancel_words = _words("conv.words.cancel")
        self._back_words = _words("conv.words.back")
        self._menu_words = _words("conv.words.menu")
        self._help_words = _words("conv.words.help")

    @property
    def flows(self) -> dict[str, Flow]:
        return dict(self._flows)

    async def accepts_photo(self, channel: str, user_id: str) -> bool:
        """Whether this person's conversation is at a step that takes a photo (an upload that
        nothing asked for is refused before it is read)."""
        state = await self.core.state.get(StateKey(channel, user_id))
        if not state or state.get("resume") or state.get("v") != STATE_VERSION:
            return False
        flow = self._flows.get(str(state.get("flow")))
        step = flow.steps.get(str(state.get("step"))) if flow else None
        return step is not None and step.on_photo is not None

    # --- one turn ----------------------------------------------------------------------
    async def handle(self, inbound: Inbound) -> list[Reply]:
        key = StateKey(inbound.channel, inbound.user_id)
        try:
            async with self.core.state.lock(key):
                return await self._turn(key, inbound)
        except Exception:  # the state store is down or the lock stayed busy: say so politely
            log_failure(log, "conversation store failed on channel %s", inbound.channel)
            locale = normalise_locale(inbound.locale, self.core.settings.default_locale)
            return [Reply(text=t("error.generic", locale))]

    async def _turn(self, key: StateKey, inbound: Inbound) -> list[Reply]:
        state = await self.core.state.get(key)
        fresh = not state or state.get("v") != STATE_VERSION or "person_id" not in state
        if fresh:
            try:
                state = await self._new_state(inbound, (state or {}).get("source"))
            except Exception:
                log_failure(log, "identity lookup failed on channel %s", inbound.channel)
                locale = normalise_locale(inbound.locale, self.core.settings.default_locale)
                return [Reply(text=t("error.generic", locale))]
        assert state is not None
        before = copy.deepcopy(state)
        ctx = self._ctx(inbound, state)
        try:
            await self._dispatch(ctx, fresh=fresh)
            await self._settle(ctx)
        except DomainError as err:
            ctx = self._ctx(inbound, before)
            ctx.retry(error_text(err, ctx.locale))
            for refusal in self._refusals:  # e.g. a guest refused a support: the way to link
                refusal(ctx, err)
            self._attach_retry(ctx)
        except Exception:
            log_failure(
                log,
                "conversation turn failed: channel=%s flow=%s step=%s input=%s",
                inbound.channel, before.get("flow"), before.get("step"),
                type(inbound.payload).__name__,
            )
            ctx = self._ctx(inbound, before)
            ctx.retry(t("error.generic", ctx.locale))
            self._attach_retry(ctx)
        ctx.state["at"] = self._now().isoformat()
        await self.core.state.set(key, ctx.state, ttl=self.core.settings.conversation_ttl_seconds)
        if not ctx.capabilities.push:
            return await self._news(inbound, ctx.locale) + ctx.out
        return ctx.out

    async def _news(self, inbound: Inbound, locale: str) -> list[Reply]:
        """A channel that cannot push: the notifications kept for this person come now, in one
        message ahead of the answer ("새 소식이 2건 있습니다")."""
        try:
            if not await self.core.views.news_waiting(
                inbound.channel, inbound.address, now=self._now()
            ):
                return []
            news = await self.core.execute(
                CollectNews(channel=inbound.channel, address=inbound.address)
            )
        except Exception:  # the answer matters more; the news stays for the next contact
            log.exception("collecting news failed on channel %s", inbound.channel)
            return []
        if not news:
            return []
        count = len(news)
        head = t("news.waiting_one", locale) if count == 1 else t(
            "news.waiting_many", locale, count=count
        )
        body = "\n\n".join(reply.text for reply in news)
        return [Reply(text=f"{head}\n\n{body}")]

    def _ctx(self, inbound: Inbound, state: dict[str, Any]) -> Ctx:
        return Ctx(
            core=self.core, inbound=inbound, state=state, capabilities=self._capabilities(inbound)
        )

    def _capabilities(self, inbound: Inbound) -> ChannelCapabilities:
        sender = self.core.senders.get(inbound.channel)
        return ChannelCapabilities() if sender is None else sender.capabilities

    def _now(self) -> datetime:
        return self.core.clock.now()

    async def _new_state(self, inbound: Inbound, source: str | None) -> dict[str, Any]:
        # A read first: a known, reachable person at the same address costs no write at all.
        known = await self.core.views.identity(inbound.channel, inbound.user_id)
        if known is not None and known.reachable and known.address == inbound.address:
            person_id, locale = known.person_id, known.locale
        else:
            person_id = await self.core.execute(
                EnsureIdentity(
                    channel=inbound.channel,
                    external_id=inbound.user_id,
                    address=inbound.address,
                    locale=inbound.locale,
                    display_name=inbound.display_name,
                    level=self._capabilities(inbound).identity_level,
                )
            )
            default = self.core.settings.default_locale
            locale = known.locale if known else normalise_locale(inbound.locale, default)
        return {
            "v": STATE_VERSION,
            "person_id": person_id,
            "locale": locale,
            "source": source,
            "flow": "menu",
            "step": "main",
            "data": {},
            "stack": [],
            "offered": [],
            "visible": [],
            "page": 0,
            "at": None,
        }

    # --- dispatch ------------------------------------------------------------------------
    async def _dispatch(self, ctx: Ctx, *, fresh: bool) -> None:
        payload = ctx.inbound.payload
        for interceptor in self._interceptors:
            replies = await interceptor(ctx, payload)
            if replies is not None:
                ctx.out.extend(replies)
                ctx.acted = True
                ctx.retry_choices = ()
                return
        payload = self._as_choice(ctx, payload)
        if ctx.state.pop(drafts.CONFIRM_KEY, False) and self._delete_answer(ctx, payload):
            return
        if await self._global(ctx, payload):
            return
        if fresh:
            ctx.start("menu", greet=True)
            return
        if ctx.state.get("resume"):
            await self._resume_answer(ctx, payload)
            return
        if self._paused(ctx):
            self._ask_resume(ctx)
            return
        await self._to_step(ctx, payload)

    def _as_choice(self, ctx: Ctx, payload: Incoming) -> Incoming:
        """Typed "2" or a choice's label means that choice."""
        if not isinstance(payload, Text):
            return payload
        typed = _norm(payload.text)
        if not typed:
            return payload
        visible = ctx.state.get("visible", [])
        if MORE in visible and typed == _norm(ctx.t("conv.nav.more")):
            return Picked(MORE)
        if typed.isdigit() and 1 <= int(typed) <= len(visible):
            return Picked(visible[int(typed) - 1])
        limit = ctx.capabilities.button_label_max
        for choice_id, label in ctx.state.get("offered", []):
            if _norm(label) == typed or _norm(short_label(label, limit)) == typed:
                return Picked(choice_id)  # the label, or the label as the channel shortened it
        return payload

    async def _global(self, ctx: Ctx, payload: Incoming) -> bool:
        if isinstance(payload, Command):
            await self._command(ctx, payload)
            return True
        if isinstance(payload, Text):
            typed = _norm(payload.text)
            tracking = parse_tracking(payload.text) if len(payload.text) <= 40 else None
            if typed in self._cancel_words:
                self._cancel(ctx)
            elif typed in self._back_words:
                self._back(ctx)
            elif typed in self._menu_words:
                ctx.start("menu")
            elif typed in self._help_words:
                ctx.start("menu", help=True)
            elif tracking is not None:
                await self._route(ctx, f"p:{tracking}:show")
            else:
                return False
            return True
        if isinstance(payload, Picked):
            if payload.choice_id == CANCEL:
                self._cancel(ctx)
            elif payload.choice_id == BACK:
                self._back(ctx)
            elif payload.choice_id == MORE:
                self._more(ctx)
            elif any(payload.choice_id.startswith(prefix) for prefix, _ in self._routes):
                await self._route(ctx, payload.choice_id)
            else:
                return False
            return True
        return False

    async def _command(self, ctx: Ctx, cmd: Command) -> None:
        name = cmd.name.lower().lstrip("/")
        if name == "start":
            arg = cmd.arg.strip()
            if arg[:2].lower() == "p_" and parse_tracking(arg[2:]):
                await self._route(ctx, f"p:{parse_tracking(arg[2:])}:show")
                return
            if arg and _SOURCE_RE.match(arg):
                ctx.state["source"] = arg
            ctx.start("menu", greet=True)
        elif name == "cancel":
            self._cancel(ctx)
        elif name == "back":
            self._back(ctx)
        elif name in _COMMANDS and _COMMANDS[name].flow in self._flows:  # its pack is here
            spec = _COMMANDS[name]
            arg = cmd.arg.strip()[:40] if spec.takes_arg else ""
            ctx.start(str(spec.flow), **dict(spec.data), **({"arg": arg} if arg else {}))
        else:
            ctx.say(ctx.t("conv.hint.unknown_command"))
            ctx.start("menu")

    async def _route(self, ctx: Ctx, choice_id: str) -> None:
        for prefix, flow_name in self._routes:
            if choice_id.startswith(prefix):
                flow = self._flows[flow_name]
                if ctx.flow == flow_name and not ctx.state.get("resume"):
                    step = flow.steps.get(ctx.step)
                    if step is not None and step.on_pick is not None:  # the flow's own button
                        await step.on_pick(ctx, choice_id)
                        if ctx.acted:
                            return
                ctx.state["resume"] = False
                if flow.on_route is not None:
                    await flow.on_route(ctx, choice_id)
                    return
                ctx.start(flow_name)
                self._enter(ctx)
                step = flow.steps[flow.start]
                if step.on_pick is not None:
                    ctx.acted = False
                    await step.on_pick(ctx, choice_id)
                    if not ctx.acted:
                        ctx.say(ctx.t("conv.hint.stale"))
                        ctx.menu()
                return

    def _cancel(self, ctx: Ctx) -> None:
        if drafts.has_content(self._flows.get(ctx.flow), ctx.state.get("data")):
            self._ask_delete(ctx)  # what was typed is deleted only after "네"
            return
        ctx.state["resume"] = False
        if ctx.flow != "menu":
            ctx.say(ctx.t("conv.cancelled"))
        ctx.start("menu")

    def _ask_delete(self, ctx: Ctx) -> None:
        ctx.state["resume"] = False
        ctx.state[drafts.CONFIRM_KEY] = True
        ctx.state["page"] = 0
        ctx.say(Reply(text=ctx.t("conv.delete.ask"), meta={"input": "choice"}))
        choices = (
            Choice(id=drafts.DELETE_NO, label=ctx.t("conv.delete.decline")),
            Choice(id=drafts.DELETE_YES, label=ctx.t("conv.delete.agree")),
        )
        self._offer(ctx, ctx.out, choices)

    def _delete_answer(self, ctx: Ctx, payload: Incoming) -> bool:
        """Handle the answer to "delete?"; False: something else, handled as usual."""
        picked = payload.choice_id if isinstance(payload, Picked) else None
        typed = payload.text if isinstance(payload, Text) else None
        yes = drafts.answer(picked, typed)
        if yes is None and typed is not None and _norm(typed) in self._cancel_words:
            yes = True  # "취소" again
        if yes is None:
            return False
        if yes:
            ctx.state["data"] = {}
            (ctx.state.get("drafts") or {}).pop(ctx.flow, None)
            ctx.say(ctx.t("conv.delete.done"))
            ctx.start("menu")
        else:
            ctx.stay()
        return True

    def _back(self, ctx: Ctx) -> None:
        stack: list[str] = ctx.state.get("stack", [])
        if ctx.state.get("resume") or not stack:
            ctx.state["resume"] = False
            ctx.start("menu")
            return
        ctx.state["step"] = stack.pop()
        ctx.stay()

    def _more(self, ctx: Ctx) -> None:
        """The next page of the current step's choices, replacing the message where possible."""
        if ctx.state.get("resume") or MORE not in ctx.state.get("visible", []):
            ctx.retry(ctx.t("conv.hint.stale"))
            return
        ctx.stay()
        assert ctx.target is not None
        ctx.target.page = int(ctx.state.get("page", 0)) + 1

    def _paused(self, ctx: Ctx) -> bool:
        flow = self._flows.get(ctx.flow)
        at = ctx.state.get("at")
        if flow is None or not flow.resumable or not at:
            return False
        if flow.draft_keys and not drafts.has_content(flow, ctx.state.get("data")):
            return False
        idle = (self._now() - datetime.fromisoformat(at)).total_seconds()
        return idle >= self.core.settings.conversation_resume_after_seconds

    def _ask_resume(self, ctx: Ctx) -> None:
        flow = self._flows[ctx.flow]
        ctx.state["resume"] = True
        ctx.state["page"] = 0
        choices = (
            Choice(id=RESUME_CONTINUE, label=ctx.t("conv.resume.continue")),
            Choice(id=RESUME_RESTART, label=ctx.t("conv.resume.restart")),
            Choice(id=CANCEL, label=ctx.t("conv.nav.cancel")),
        )
        ctx.say(Reply(text=ctx.t(flow.resume_key)))
        self._offer(ctx, ctx.out, choices)

    async def _resume_answer(self, ctx: Ctx, payload: Incoming) -> None:
        if isinstance(payload, Picked) and payload.choice_id == RESUME_CONTINUE:
            ctx.state["resume"] = False
            ctx.stay()
        elif isinstance(payload, Picked) and payload.choice_id == RESUME_RESTART:
            ctx.state["resume"] = False
            ctx.state["data"] = {}  # chosen: not kept as a draft
            ctx.start(ctx.flow)
        else:
            ctx.retry(ctx.t("conv.hint.choose"))

    async def _to_step(self, ctx: Ctx, payload: Incoming) -> None:
        flow = self._flows.get(ctx.flow)
        step = flow.steps.get(ctx.step) if flow else None
        if flow is None or step is None:  # a flow that is gone (upgrade): back to the menu
            ctx.menu()
            return
        if isinstance(payload, Text) and step.on_text is not None:
            await step.on_text(ctx, payload.text)
        elif isinstance(payload, Picked) and step.on_pick is not None:
            await step.on_pick(ctx, payload.choice_id)
            if not ctx.acted:
                ctx.retry(ctx.t("conv.hint.stale"))
        elif isinstance(payload, Picked):
            ctx.retry(ctx.t("conv.hint.stale"))
        elif isinstance(payload, Photo) and step.on_photo is not None:
            await step.on_photo(ctx, payload.ref, payload.caption)
        elif isinstance(payload, Location) and step.on_location is not None:
            await step.on_location(ctx, payload.latitude, payload.longitude)
        elif isinstance(payload, Photo):
            ctx.retry(ctx.t("conv.hint.no_photo"))
        elif isinstance(payload, Location):
            ctx.retry(ctx.t("conv.hint.no_location"))
        elif isinstance(payload, Unsupported):
            ctx.retry(ctx.t("conv.hint.unsupported"))

    # --- navigation and rendering --------------------------------------------------------
    def _enter(self, ctx: Ctx) -> None:
        """Apply a pending ``start`` (a new flow with its data) without rendering."""
        target = ctx.target
        if target is None or target.data is None:
            return
        flow = self._flows.get(target.flow) or self._flows["menu"]
        drafts.keep(ctx.state, self._flows.get(ctx.flow))  # leaving: what was typed stays
        ctx.state.update(
            flow=flow.name, step=target.step or flow.start, data=target.data, stack=[],
            resume=False,
        )
        target.data = None
        target.step = ctx.state["step"]
        target.flow = flow.name
        target.remember = False

    async def _settle(self, ctx: Ctx) -> None:
        """Follow navigation until a step is shown; or re-offer choices; or say "pardon?"."""
        hops = 0
        while ctx.target is not None:
            hops += 1
            if hops > _MAX_HOPS:
                raise RuntimeError(f"too many redirects in flow {ctx.flow}")
            self._enter(ctx)
            target, ctx.target = ctx.target, None
            if await self._gated(ctx, target.step):
                continue
            stack = ctx.state.setdefault("stack", [])
            if target.remember and target.step != ctx.step and self._current_step(ctx).remember:
                stack.append(ctx.step)
            elif not target.remember and target.step in stack:  # returning: forget the detour
                del stack[stack.index(target.step) :]
            ctx.state["step"] = target.step
            ctx.state["page"] = target.page
            step = self._current_step(ctx)
            rendered = await step.render(ctx)
            if ctx.target is not None:  # the step sent us elsewhere (e.g. skipped)
                continue
            replies = [rendered] if isinstance(rendered, Reply) else list(rendered)
            if not replies:
                replies = [Reply(text=ctx.t("conv.hint.choose"))]
            if target.page:  # another page of the same screen: edit it where the channel can
                replies[0] = replace(replies[0], edit=True)
            choices = replies[-1].choices + (self._nav(ctx) if step.nav else ())
            ctx.out.extend(replies)
            self._offer(ctx, ctx.out, choices)
            return
        if ctx.retry_choices is not None:
            self._attach_retry(ctx)
        elif not ctx.acted:
            ctx.retry(ctx.t("conv.hint.not_understood"))
            self._attach_retry(ctx)

    async def _gated(self, ctx: Ctx, step: str) -> bool:
        for gate in self._gates:
            if await gate(ctx, ctx.flow, step):
                return True
        return False

    def _current_step(self, ctx: Ctx) -> Step:
        flow = self._flows.get(ctx.flow) or self._flows["menu"]
        if ctx.step not in flow.steps:
            ctx.state.update(flow=flow.name, step=flow.start)
        return flow.steps[ctx.step]

    def _nav(self, ctx: Ctx) -> tuple[Choice, ...]:
        if ctx.flow == "menu":
            return ()
        return (
            Choice(id=BACK, label=ctx.t("conv.nav.back")),
            Choice(id=CANCEL, label=ctx.t("conv.nav.cancel")),
        )

    def _attach_retry(self, ctx: Ctx) -> None:
        choices = ctx.retry_choices or ()
        ctx.retry_choices = None
        if choices and ctx.out:
            self._offer(ctx, ctx.out, choices)

    def _offer(self, ctx: Ctx, out: list[Reply], choices: Sequence[Choice]) -> None:
        """Put ``choices`` on the last reply, a page at a time where buttons are few."""
        full = [c for c in choices if c.id != MORE]
        page = int(ctx.state.get("page", 0))
        visible = _window(full, page, max(3, ctx.capabilities.max_buttons), ctx.t("conv.nav.more"))
        ctx.state["offered"] = [[c.id, c.label] for c in full]
        ctx.state["visible"] = [c.id for c in visible]
        if out:
            out[-1] = replace(out[-1], choices=tuple(visible))


def _window(full: list[Choice], page: int, limit: int, more_label: str) -> list[Choice]:
    if len(full) <= limit:
        return full
    items = [c for c in full if c.id not in NAV_IDS]
    nav = [c for c in full if c.id in NAV_IDS]
    per_page = max(1, limit - len(nav) - 1)
    pages = (len(items) + per_page - 1) // per_page
    page %= pages
    return items[page * per_page : (page + 1) * per_page] + [Choice(MORE, more_label)] + nav

