"""The personal-data notice before a first proposal, comment or ballot, and "내 정보" (my data).

The diagram is in ``privacy.md`` beside this module.
"""

from __future__ import annotations

from typing import Any

from conversations.flow import Ctx, Flow, FlowPack, MenuItem, Step, short_label
from core.api import PrivacyReads
from core.commands import WithdrawProposal
from core.domain.model import ProposalStatus, allowed_next, parse_tracking
from core.messages import Choice, Document, Reply
from core.privacy.commands import ErasePerson, ProposalsOnErasure, RecordPrivacyConsent

__all__ = ["GATED", "gate", "pack"]

NOTICE, MYDATA = "privacy_notice", "mydata"
PREFIX = "mydata:"
OK_KEY = "privacy_ok"  # conversation state: the notice version this person agreed to
# (flow, step) pairs that need the notice agreed first; step None means any step of the flow.
GATED: tuple[tuple[str, str | None], ...] = (
    ("intake", None),
    ("survey", None),
    ("proposal", "feedback"),
    ("discussion", "write"),  # an opinion or a reply
    ("discussion", "vote"),  # statement voting
    ("discussion", "statement"),
)


def _service(ctx: Ctx) -> PrivacyReads:
    return ctx.core.privacy


# --- the notice gate --------------------------------------------------------------------


async def gate(ctx: Ctx, flow: str, step: str) -> bool:
    if not any(flow == f and (s is None or s == step) for f, s in GATED):
        return False
    if not ctx.core.settings.privacy_notice_enabled:
        return False
    service = _service(ctx)
    if ctx.state.get(OK_KEY) == service.notice_version:
        return False
    if await service.has_agreed(ctx.person_id):
        ctx.state[OK_KEY] = service.notice_version
        return False
    ctx.start(NOTICE, then={"flow": flow, "step": step, "data": dict(ctx.data)})
    return True


async def _render_notice(ctx: Ctx) -> Reply:
    return Reply(
        text=ctx.t(
            "privacy.notice.text",
            version=_service(ctx).notice_version,
            delivery_days=ctx.core.settings.retention_delivery_days,
        ),
        choices=(
            Choice(id="notice:agree", label=ctx.t("privacy.notice.agree")),
            Choice(id="notice:refuse", label=ctx.t("privacy.notice.refuse")),
        ),
    )


async def _notice_pick(ctx: Ctx, choice_id: str) -> None:
    if choice_id not in ("notice:agree", "notice:refuse"):
        return
    version = _service(ctx).notice_version
    agreed = choice_id == "notice:agree"
    await ctx.execute(
        RecordPrivacyConsent(
            person_id=ctx.person_id, version=version, agreed=agreed, channel=ctx.channel
        )
    )
    if not agreed:
        ctx.state.pop(OK_KEY, None)
        ctx.say(ctx.t("privacy.notice.refused"))
        ctx.menu()
        return
    ctx.state[OK_KEY] = version
    ctx.say(ctx.t("privacy.notice.thanks"))
    then = ctx.data.get("then") or {}
    flow, step = str(then.get("flow") or "menu"), str(then.get("step") or "")
    ctx.start(flow, step=step or None, **dict(then.get("data") or {}))


async def _notice_text(ctx: Ctx, _text: str) -> None:
    ctx.retry(ctx.t("conv.hint.choose"))


# --- my data ------------------------------------------------------------------------------


async def _render_main(ctx: Ctx) -> Reply:
    data = await _service(ctx).data_of(ctx.person_id)
    if data is None:
        return Reply(text=ctx.t("privacy.mydata.gone"),
                     choices=(Choice(id="menu:main", label=ctx.t("conv.nav.menu")),))
    channels = sorted({i["channel"] for i in data["identities"]})
    names = ", ".join(ctx.t(f"privacy.mydata.channel.{c}") for c in channels)
    lines = [
        ctx.t("privacy.mydata.title"),
        ctx.t("privacy.mydata.channels", channels=names or ctx.t("privacy.mydata.none")),
        ctx.t("privacy.mydata.counts", proposals=len(data["proposals"]),
              comments=len(data["comments"]), supports=len(data["supports"]),
              follows=len(data["follows"])),
        ctx.t("privacy.mydata.ballots", ballots=len(data["ballots"])),
        ctx.t("privacy.mydata.consents", consents=len(data["consents"]),
              subscriptions=len(data["subscriptions"])),
    ]
    for p in data["proposals"][:10]:
        status = ctx.t("status." + p["status"])
        lines.append(f"  - {p['tracking']} {p['title']} ({status})")
    return Reply(
        text="\n".join(lines),
        choices=(
            Choice(id=f"{PREFIX}download", label=ctx.t("privacy.mydata.download")),
            Choice(id=f"{PREFIX}withdraw", label=ctx.t("privacy.mydata.withdraw")),
            Choice(id=f"{PREFIX}erase", label=ctx.t("privacy.mydata.erase")),
            Choice(id="menu:main", label=ctx.t("conv.nav.menu")),
        ),
    )


async def _download(ctx: Ctx) -> bool:
    if not ctx.capabilities.documents:  # e.g. KakaoTalk: no files in a skill answer
        ctx.say(ctx.t("privacy.mydata.no_file"))
        return True
    raw = await _service(ctx).download_of(ctx.person_id)
    if raw is None:
        ctx.say(ctx.t("privacy.mydata.gone"))
        return False
    ctx.say(Reply(
        text=ctx.t("privacy.mydata.file_ready"),
        document=Document(name="gongnon-mydata.json", mime="application/json", data=raw),
    ))
    return True


async def _main_pick(ctx: Ctx, choice_id: str) -> None:
    action = choice_id.removeprefix(PREFIX)
    if action == "main":
        ctx.stay()
    elif action == "download":
        if await _download(ctx):
            ctx.stay()
        else:
            ctx.menu()
    elif action in ("withdraw", "erase"):
        ctx.goto(action)


async def _withdrawable(ctx: Ctx) -> list[dict[str, Any]]:
    data = await _service(ctx).data_of(ctx.person_id) or {"proposals": []}
    return [
        p for p in data["proposals"]
        if ProposalStatus.WITHDRAWN in allowed_next(ProposalStatus(p["status"]))
    ]


async def _render_withdraw(ctx: Ctx) -> Reply | list[Reply]:
    mine = await _withdrawable(ctx)
    if not mine:
        ctx.say(ctx.t("privacy.mydata.nothing_to_withdraw"))
        ctx.goto("main", remember=False)
        return []
    return Reply(
        text=ctx.t("privacy.mydata.pick_withdraw"),
        choices=tuple(
            Choice(id=f"{PREFIX}wd:{p['tracking']}",
                   label=short_label(f"{p['tracking']} {p['title']}"))
            for p in mine[:20]
        ),
    )


async def _withdraw_pick(ctx: Ctx, choice_id: str) -> None:
    tracking = parse_tracking(choice_id.removeprefix(f"{PREFIX}wd:"))
    if not choice_id.startswith(f"{PREFIX}wd:") or tracking is None:
        return
    ctx.data["tracking"] = tracking
    ctx.goto("confirm_withdraw")


async def _render_confirm_withdraw(ctx: Ctx) -> Reply:
    tracking = str(ctx.data.get("tracking", ""))
    title = next((p["title"] for p in await _withdrawable(ctx) if p["tracking"] == tracking), "")
    return Reply(
        text=ctx.t("privacy.mydata.confirm_withdraw", tracking=tracking, title=title),
        choices=(Choice(id=f"{PREFIX}wd_yes", label=ctx.t("privacy.mydata.yes_withdraw")),),
    )


async def _confirm_withdraw_pick(ctx: Ctx, choice_id: str) -> None:
    if choice_id != f"{PREFIX}wd_yes":
        return
    tracking = str(ctx.data.pop("tracking", ""))
    await ctx.execute(WithdrawProposal(person_id=ctx.person_id, tracking=tracking))
    ctx.say(ctx.t("privacy.mydata.withdrawn", tracking=tracking))
    ctx.goto("main", remember=False)


async def _render_erase(ctx: Ctx) -> Reply:
    return Reply(
        text=ctx.t("privacy.mydata.erase_explain"),
        choices=(
            Choice(id=f"{PREFIX}erase:anonymise", label=ctx.t("privacy.mydata.erase_anonymise")),
            Choice(id=f"{PREFIX}erase:withdraw", label=ctx.t("privacy.mydata.erase_withdraw")),
        ),
    )


async def _erase_pick(ctx: Ctx, choice_id: str) -> None:
    choice = choice_id.removeprefix(f"{PREFIX}erase:")
    if not choice_id.startswith(f"{PREFIX}erase:") or choice not in ("anonymise", "withdraw"):
        return
    ctx.data["proposals"] = choice
    ctx.goto("erase_confirm")


async def _render_erase_confirm(ctx: Ctx) -> Reply:
    return Reply(
        text=ctx.t("privacy.mydata.erase_confirm"),
        choices=(Choice(id=f"{PREFIX}erase_yes", label=ctx.t("privacy.mydata.erase_yes")),),
    )


async def _erase_confirm_pick(ctx: Ctx, choice_id: str) -> None:
    if choice_id != f"{PREFIX}erase_yes":
        return
    choice = ProposalsOnErasure(str(ctx.data.get("proposals") or "anonymise"))
    await ctx.execute(ErasePerson(person_id=ctx.person_id, proposals=choice))
    ctx.say(ctx.t("privacy.mydata.erased"))
    # The person is gone: the next message starts a new conversation (and a new person).
    ctx.state.clear()


async def _route(ctx: Ctx, choice_id: str) -> None:
    """A "mydata:…" button from anywhere (the menu, an old message)."""
    action = choice_id.removeprefix(PREFIX)
    if action in ("withdraw", "erase"):
        ctx.start(MYDATA, step=action)
        return
    if action == "download" and not await _download(ctx):
        ctx.menu()
        return
    ctx.start(MYDATA)


def _notice_flow() -> Flow:
    return Flow(
        name=NOTICE,
        start="notice",
        steps={"notice": Step(render=_render_notice, on_pick=_notice_pick, on_text=_notice_text)},
    )


def _mydata_flow() -> Flow:
    return Flow(
        name=MYDATA,
        start="main",
        on_route=_route,
        steps={
            "main": Step(render=_render_main, on_pick=_main_pick),
            "withdraw": Step(render=_render_withdraw, on_pick=_withdraw_pick),
            "confirm_withdraw": Step(
                render=_render_confirm_withdraw, on_pick=_confirm_withdraw_pick
            ),
            "erase": Step(render=_render_erase, on_pick=_erase_pick),
            "erase_confirm": Step(render=_render_erase_confirm, on_pick=_erase_confirm_pick),
        },
    )


def pack() -> FlowPack:
    """The notice and "내 정보" flows, ``mydata:`` buttons from any state, the main-menu entry
    and the notice gate before a first proposal, comment, ballot or opinion."""
    return FlowPack(
        flows=(_notice_flow(), _mydata_flow()),
        routes=((PREFIX, MYDATA),),
        menu=(MenuItem(choice_id=f"{PREFIX}main", label_key="privacy.menu.mydata"),),
        gates=(gate,),
    )
