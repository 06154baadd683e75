"""Linking identities, channel-neutral: show a one-time code here, type it on another channel.

"다른 메신저 연결" (menu) or ``/link`` shows a code; ``/link 123456``, "연결 123456" (from any
step: an interceptor) or the "받은 번호 입력하기" step joins this identity's person into the
person who was shown the code (``core.people``). The linked identities can be listed and each
unlinked.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from conversations.flow import Ctx, Flow, Step
from core.domain.errors import DomainError
from core.domain.participation import Level, NeedsParticipation
from core.messages import Choice, Reply
from core.people.commands import IssueLinkCode, RedeemLinkCode, UnlinkIdentity
from core.people.model import LinkResult
from core.ports import StateKey

__all__ = ["flow", "intercept", "offer_link"]

START = "link:start"
ENTER = "link:enter"
LIST = "link:list"
UNLINK = "link:unlink:"
MENU = "menu:main"
# "연결 123456", "link 123 456", "/link 123456" typed anywhere
_TYPED = re.compile(r"^\s*/?(?:연결|link)\s*([0-9０-９][0-9０-９\s-]{4,10})\s*$", re.IGNORECASE)

_SUMMARY = ("proposals", "opinions", "supports", "follows", "ballots", "subscriptions")


def _channel(ctx: Ctx, channel: str) -> str:
    key = f"people.channel.{channel}"
    text = ctx.t(key)
    return channel if text == key else text


def _summary_text(ctx: Ctx, result: LinkResult) -> str:
    s = result.summary
    assert s is not None
    parts = []
    for name in _SUMMARY:
        count = int(getattr(s, name))
        if count:
            form = "one" if count == 1 else "other"
            parts.append(ctx.t(f"people.count.{name}_{form}", count=count))
    lines = [ctx.t("people.linked")]
    lines.append(
        ctx.t("people.moved", items=", ".join(parts)) if parts else ctx.t("people.moved_none")
    )
    dropped = s.supports_dropped + s.ballots_dropped + s.opinion_supports_dropped
    dropped += s.statement_votes_dropped + s.anonymous_duplicates
    if dropped:
        key = "people.once_one" if dropped == 1 else "people.once_other"
        lines.append(ctx.t(key, count=dropped))
    return "\n".join(lines)


async def _rehome(ctx: Ctx, old: int, new: int) -> None:
    """Conversations of the identities that moved now speak for the joined person."""
    ctx.state["person_id"] = new
    for identity in await ctx.core.people.identities_of(new):
        if identity.channel == ctx.channel and identity.external_id == ctx.user_id:
            continue
        key = StateKey(identity.channel, identity.external_id)
        state = await ctx.core.state.get(key)
        if state and state.get("person_id") == old:
            state["person_id"] = new
            await ctx.core.state.set(key, state, ttl=ctx.core.settings.conversation_ttl_seconds)


async def redeem(ctx: Ctx, code: str) -> str:
    """Type ``code`` for this person; the polite answer (joined, or why not)."""
    result: LinkResult = await ctx.execute(
        RedeemLinkCode(person_id=ctx.person_id, code=code, channel=ctx.channel)
    )
    if result.summary is None:
        return ctx.t(f"people.error.{result.refused}")
    await _rehome(ctx, result.summary.merged_id, result.summary.survivor_id)
    return _summary_text(ctx, result)


async def intercept(ctx: Ctx, payload: Any) -> list[Reply] | None:
    """"연결 123456" from any step."""
    text = getattr(payload, "text", None)
    if not isinstance(text, str) or len(text) > 40:
        return None
    found = _TYPED.match(text)
    if found is None:
        return None
    answer = await redeem(ctx, found.group(1))
    return [Reply(text=answer)]


async def _main(ctx: Ctx) -> Reply:
    typed = ctx.data.pop("arg", None)
    if typed:
        answer = await redeem(ctx, str(typed))
        return Reply(text=answer, choices=(Choice(id=MENU, label=ctx.t("people.to_menu")),))
    code = await ctx.core.execute(IssueLinkCode(person_id=ctx.person_id))
    return Reply(
        text=ctx.t("people.code", code=code),
        choices=(
            Choice(id=ENTER, label=ctx.t("people.enter")),
            Choice(id=LIST, label=ctx.t("people.list")),
        ),
    )


async def _pick(ctx: Ctx, choice_id: str) -> None:
    if choice_id == START:
        ctx.goto("main")
    elif choice_id == ENTER:
        ctx.goto("enter")
    elif choice_id == LIST:
        ctx.goto("list")
    elif choice_id == MENU:
        ctx.menu()
    elif choice_id.startswith(UNLINK):
        await _unlink(ctx, choice_id.removeprefix(UNLINK))


async def _text(ctx: Ctx, text: str) -> None:
    if len(text) > 40:
        ctx.retry(ctx.t("people.ask_code"))
        return
    ctx.say(await redeem(ctx, text))
    ctx.menu()


async def _enter(ctx: Ctx) -> Reply:
    return Reply(text=ctx.t("people.ask_code"))


async def _list(ctx: Ctx) -> Reply:
    rows = await ctx.core.people.identities_of(ctx.person_id)
    lines = [ctx.t("people.list_head")]
    for n, row in enumerate(rows, 1):
        here = ctx.t("people.here") if (
            row.channel == ctx.channel and row.external_id == ctx.user_id
        ) else ""
        lines.append(f"{n}. {_channel(ctx, row.channel)}{here}")
    if len(rows) < 2:
        lines.append(ctx.t("people.only_one"))
    choices = tuple(
        Choice(id=f"{UNLINK}{row.id}",
               label=ctx.t("people.unlink", channel=_channel(ctx, row.channel)))
        for row in rows
        if len(rows) > 1
    )
    return Reply(text="\n".join(lines), choices=choices)


async def _unlink(ctx: Ctx, raw: str) -> None:
    if not raw.isdigit():
        return
    rows = {row.id: row for row in await ctx.core.people.identities_of(ctx.person_id)}
    row = rows.get(int(raw))
    if row is None:
        ctx.say(ctx.t("conv.hint.stale"))
        ctx.menu()
        return
    new_person = await ctx.core.execute(
        UnlinkIdentity(person_id=ctx.person_id, identity_id=row.id)
    )
    key = StateKey(row.channel, row.external_id)
    if row.channel == ctx.channel and row.external_id == ctx.user_id:
        ctx.state["person_id"] = new_person
    else:
        await ctx.core.state.delete(key)  # that conversation starts afresh as its own person
    ctx.say(ctx.t("people.unlinked", channel=_channel(ctx, row.channel)))
    ctx.menu()


def offer_link(ctx: Ctx, err: DomainError) -> None:
    """Refused for want of a messenger: say how to link one, and offer the way there (the
    refused step and its draft stay as they were)."""
    if not isinstance(err, NeedsParticipation) or err.required is not Level.MESSENGER:
        return
    if ctx.out:
        last = ctx.out[-1]
        ctx.out[-1] = replace(last, text=f"{last.text}\n\n{ctx.t('people.guest_hint')}")
    way = Choice(id=START, label=ctx.t("conv.menu.link"))
    ctx.retry_choices = (way, *(ctx.retry_choices or ()))


def flow() -> Flow:
    return Flow(
        name="link",
        start="main",
        steps={
            "main": Step(render=_main, on_pick=_pick, on_text=_text),
            "enter": Step(render=_enter, on_text=_text),
            "list": Step(render=_list, on_pick=_pick),
        },
    )
