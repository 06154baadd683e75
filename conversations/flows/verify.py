"""Verifying who one is by a code sent in a text message (``core.verification``): the
number, then the code; the person's supports and ballots then count at level ``verified``.

Offered only when the composition root has a verifier (``CoreAPI.verifier``): in the main menu
("휴대폰 문자로 본인 확인"), and beside the explanation when a support or a ballot is refused for
want of a level (the refused step and its draft stay as they were). The number typed is passed
to the verifier and never kept in the conversation.
"""

from __future__ import annotations

from dataclasses import replace

from conversations.flow import Ctx, Flow, FlowPack, MenuItem, Step
from core.domain.errors import DomainError
from core.domain.participation import NeedsParticipation
from core.messages import Choice, Reply
from core.verification.ports import Outcome, Verifier

__all__ = ["flow", "offer_verify", "pack"]

PREFIX = "verify:"
START = "verify:start"
AGAIN = "verify:again"  # a new code (the number once more)
MENU = "menu:main"
_TEXT_MAX = 40  # a phone number or a code; anything longer is neither


def _verifier(ctx: Ctx) -> Verifier | None:
    return ctx.core.verifier


async def _phone(ctx: Ctx) -> Reply:
    return Reply(text=ctx.t("verify.ask_phone"))


async def _on_phone(ctx: Ctx, text: str) -> None:
    verifier = _verifier(ctx)
    if verifier is None:  # switched off since the flow began
        ctx.say(ctx.t("verify.off"))
        ctx.menu()
        return
    if len(text) > _TEXT_MAX:
        ctx.retry(ctx.t("verify.outcome.bad_number"))
        return
    outcome = await verifier.start(ctx.person_id, text, locale=ctx.locale)
    if outcome is Outcome.SENT:
        ctx.say(ctx.t("verify.outcome.sent"))
        ctx.goto("code")
    elif outcome is Outcome.BAD_NUMBER:
        ctx.retry(ctx.t("verify.outcome.bad_number"))
    else:  # too soon, too many, taken, the SMS service down: said, and back to the menu
        ctx.say(ctx.t(f"verify.outcome.{outcome.value}"))
        ctx.menu()


async def _code(ctx: Ctx) -> Reply:
    return Reply(
        text=ctx.t("verify.ask_code"),
        choices=(Choice(id=AGAIN, label=ctx.t("verify.again")),),
    )


async def _on_code(ctx: Ctx, text: str) -> None:
    verifier = _verifier(ctx)
    if verifier is None:
        ctx.say(ctx.t("verify.off"))
        ctx.menu()
        return
    if len(text) > _TEXT_MAX:
        ctx.retry(ctx.t("verify.outcome.wrong"))
        return
    outcome = await verifier.confirm(ctx.person_id, text)
    if outcome is Outcome.VERIFIED:
        ctx.say(ctx.t("verify.outcome.verified"))
        ctx.menu()
    elif outcome is Outcome.WRONG:
        ctx.retry(ctx.t("verify.outcome.wrong"))
    elif outcome in (Outcome.EXPIRED, Outcome.TOO_MANY_ATTEMPTS):
        ctx.say(ctx.t(f"verify.outcome.{outcome.value}"))
        ctx.goto("phone")
    else:  # the number verified someone else meanwhile
        ctx.say(ctx.t(f"verify.outcome.{outcome.value}"))
        ctx.menu()


async def _pick(ctx: Ctx, choice_id: str) -> None:
    if choice_id in (START, AGAIN):
        ctx.goto("phone")
    elif choice_id == MENU:
        ctx.menu()


def offer_verify(ctx: Ctx, err: DomainError) -> None:
    """A support or a ballot refused for want of a level: say that a text message verifies,
    and offer the way there."""
    if not isinstance(err, NeedsParticipation) or ctx.core.verifier is None:
        return
    if ctx.out:
        last = ctx.out[-1]
        ctx.out[-1] = replace(last, text=f"{last.text}\n\n{ctx.t('verify.hint')}")
    way = Choice(id=START, label=ctx.t("verify.menu"))
    ctx.retry_choices = (way, *(ctx.retry_choices or ()))


def flow() -> Flow:
    return Flow(
        name="verify",
        start="phone",
        steps={
            "phone": Step(render=_phone, on_pick=_pick, on_text=_on_phone),
            "code": Step(render=_code, on_pick=_pick, on_text=_on_code),
        },
    )


def pack() -> FlowPack:
    """The verify flow, its ``verify:`` buttons, its menu entry and its offer on a refusal
    (the composition root adds it only when a verifier is configured)."""
    return FlowPack(
        flows=(flow(),),
        routes=((PREFIX, "verify"),),
        menu=(MenuItem(choice_id=START, label_key="verify.menu"),),
        refusals=(offer_verify,),
    )
