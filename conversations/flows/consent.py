"""Consent and topics: the STOP/START interceptor and the subscription settings flow."""

from __future__ import annotations

import re

from conversations.flow import Ctx, Flow, Step, short_label
from conversations.incoming import Command, Incoming, Text
from core.campaigns.commands import SetConsent, SetSubscription
from core.domain.model import CATEGORIES, REGIONS
from core.messages import Choice, Reply

__all__ = ["FLOW", "PREFIX", "flow", "intercept", "is_start", "is_stop"]

PREFIX = "consent:"
TOPIC = "sub:"  # sub:category:<key> | sub:region:<key> — handled by the flow's steps
FLOW = "subscriptions"

# Compared after removing spaces, punctuation and case: "수신 거부", "STOP!", "opt-out" …
STOP_WORDS = frozenset({
    "수신거부", "수신중지", "수신거절", "광고거부", "구독취소", "구독해지",
    "stop", "stopall", "unsubscribe", "optout",
})
START_WORDS = frozenset({
    "수신동의", "수신재개", "구독하기", "start", "unstop", "subscribe", "optin",
})
STOP_COMMANDS = frozenset({"stop", "unsubscribe", "optout"})
START_COMMANDS = frozenset({"subscribe", "optin"})
_STRIP = re.compile(r"[\s\W_]+", re.UNICODE)


def _word(text: str) -> str:
    return _STRIP.sub("", text).casefold()


def is_stop(payload: Incoming) -> bool:
    if isinstance(payload, Command):
        return payload.name.lower().lstrip("/") in STOP_COMMANDS
    return isinstance(payload, Text) and len(payload.text) <= 40 and (
        _word(payload.text) in STOP_WORDS
    )


def is_start(payload: Incoming) -> bool:
    if isinstance(payload, Command):
        return payload.name.lower().lstrip("/") in START_COMMANDS
    return isinstance(payload, Text) and len(payload.text) <= 40 and (
        _word(payload.text) in START_WORDS
    )


def _source(payload: Incoming) -> str:
    if isinstance(payload, Command):
        return f"/{payload.name}"
    return payload.text if isinstance(payload, Text) else type(payload).__name__


async def intercept(ctx: Ctx, payload: Incoming) -> list[Reply] | None:
    """Runs before any flow, on every channel. STOP takes effect at once, whatever the state."""
    if is_stop(payload):
        await ctx.core.execute(SetConsent(person_id=ctx.person_id, opted_in=False,
                                          channel=ctx.channel, source=_source(payload)))
        ctx.state["flow"], ctx.state["step"], ctx.state["data"] = "menu", "main", {}
        return [Reply(text=ctx.t("campaign.consent.stopped"),
                      choices=(Choice(id=f"{PREFIX}on", label=ctx.t("campaign.consent.resume")),
                               Choice(id="menu:main", label=ctx.t("conv.nav.menu"))))]
    if is_start(payload):
        await ctx.core.execute(SetConsent(person_id=ctx.person_id, opted_in=True,
                                          channel=ctx.channel, source=_source(payload)))
        return [_started(ctx)]
    if isinstance(payload, Command) and payload.name.lower().lstrip("/") == "start":
        # "/start" opts back in a person who had opted out; the menu follows as usual.
        if await ctx.core.campaigns.consent_of(ctx.person_id) is False:
            await ctx.core.execute(SetConsent(person_id=ctx.person_id, opted_in=True,
                                              channel=ctx.channel, source="/start"))
            ctx.say(ctx.t("campaign.consent.restarted"))
    return None


def _started(ctx: Ctx) -> Reply:
    return Reply(
        text=ctx.t("campaign.consent.started"),
        choices=(Choice(id=f"{PREFIX}topics", label=ctx.t("campaign.consent.pick_topics")),
                 Choice(id="menu:main", label=ctx.t("conv.nav.menu"))),
    )


# --- the subscription settings flow ---------------------------------------------------


async def _mine(ctx: Ctx) -> set[tuple[str, str]]:
    return set(await ctx.core.campaigns.subscriptions_of(ctx.person_id))


async def _render_main(ctx: Ctx) -> Reply:
    consent = await ctx.core.campaigns.consent_of(ctx.person_id)
    mine = await _mine(ctx)
    lines = [ctx.t("campaign.consent.on_status" if consent else "campaign.consent.off_status")]
    topics = [ctx.t(f"category.{k}") for k in CATEGORIES if ("category", k) in mine]
    regions = [ctx.t(f"region.{k}") for k in REGIONS if ("region", k) in mine]
    lines.append(ctx.t("campaign.consent.topics", topics=", ".join(topics) or "-"))
    lines.append(ctx.t("campaign.consent.regions", regions=", ".join(regions) or "-"))
    toggle = (Choice(id=f"{PREFIX}off", label=ctx.t("campaign.consent.turn_off")) if consent
              else Choice(id=f"{PREFIX}on", label=ctx.t("campaign.consent.turn_on")))
    return Reply(text="\n".join(lines), choices=(
        toggle,
        Choice(id=f"{PREFIX}topics", label=ctx.t("campaign.consent.pick_topics")),
        Choice(id=f"{PREFIX}regions", label=ctx.t("campaign.consent.pick_regions")),
        Choice(id="menu:main", label=ctx.t("conv.nav.menu")),
    ))


def _render_list(kind: str, keys: tuple[str, ...], label_key: str, prompt: str):  # type: ignore[no-untyped-def]
    async def render(ctx: Ctx) -> Reply:
        mine = await _mine(ctx)
        choices = [Choice(id=f"{TOPIC}done", label=ctx.t("campaign.survey.done"))]
        choices += [
            Choice(id=f"{TOPIC}{kind}:{key}",
                   label=short_label(("✓ " if (kind, key) in mine else "") +
                                     ctx.t(f"{label_key}.{key}")))
            for key in keys
        ]
        return Reply(text=ctx.t(prompt), choices=tuple(choices))

    return render


async def _toggle(ctx: Ctx, choice_id: str) -> None:
    if choice_id == f"{TOPIC}done":
        ctx.goto("main", remember=False)
        return
    _, kind, key = (choice_id.split(":") + ["", ""])[:3]
    if kind not in ("category", "region"):
        return
    on = (kind, key) not in await _mine(ctx)
    await ctx.core.execute(SetSubscription(person_id=ctx.person_id, kind=kind, topic=key, on=on))
    if on and await ctx.core.campaigns.consent_of(ctx.person_id) is not True:
        ctx.say(ctx.t("campaign.consent.needs_consent"))
    ctx.stay()


async def _route(ctx: Ctx, choice_id: str) -> None:
    action = choice_id.removeprefix(PREFIX)
    if action in ("on", "off"):
        await ctx.core.execute(SetConsent(person_id=ctx.person_id, opted_in=action == "on",
                                          channel=ctx.channel, source=f"button:{action}"))
        ctx.say(ctx.t("campaign.consent.started" if action == "on"
                      else "campaign.consent.stopped"))
        ctx.start(FLOW)
    elif action == "topics":
        ctx.start(FLOW, step="topics")
    elif action == "regions":
        ctx.start(FLOW, step="regions")
    else:
        ctx.start(FLOW)


def flow() -> Flow:
    return Flow(
        name=FLOW,
        start="main",
        on_route=_route,
        steps={
            "main": Step(render=_render_main),
            "topics": Step(render=_render_list("category", CATEGORIES, "category",
                                               "campaign.consent.topics_prompt"),
                           on_pick=_toggle),
            "regions": Step(render=_render_list("region", REGIONS, "region",
                                                "campaign.consent.regions_prompt"),
                            on_pick=_toggle),
        },
    )

