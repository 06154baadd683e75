"""Answering a poll or survey: one question per step, skip for optional ones, then thanks."""

from __future__ import annotations

from typing import Any

from conversations.flow import Ctx, Flow, FlowPack, MenuItem, Step, short_label
from conversations.flows import consent
from conversations.privacy import masked_note
from core.api import CampaignReads
from core.campaigns.commands import CastBallot
from core.campaigns.errors import AlreadyVoted, SurveyClosed, SurveyNotFound, SurveyNotOpenYet
from core.campaigns.loader import MAX_QUESTIONS
from core.campaigns.model import SCALE, Question, QuestionKind, check_answer
from core.campaigns.results import format_results
from core.domain.errors import InvalidField
from core.messages import Choice, Reply
from core.privacy.pii import mask

__all__ = ["flow", "pack"]

ANSWER, SKIP, DONE = "ans:", "ans:skip", "ans:done"
PREFIX = "sv:"


def _service(ctx: Ctx) -> CampaignReads:
    return ctx.core.campaigns


def _step_name(index: int) -> str:
    return f"q{index}"


async def _route(ctx: Ctx, choice_id: str) -> None:
    """``sv:<survey id>:start`` from a push (or anywhere): check, then ask question 1."""
    parts = choice_id.split(":")
    if len(parts) < 2 or not parts[1].isdigit():
        ctx.say(ctx.t("conv.hint.stale"))
        ctx.menu()
        return
    try:
        info = await _service(ctx).survey(int(parts[1]))
    except SurveyNotFound:
        ctx.say(ctx.t("campaign.error.survey_not_found"))
        ctx.menu()
        return
    d = info.definition
    now = ctx.core.clock.now()
    if not info.is_open(now):
        key = "campaign.error.not_open_yet" if now < d.opens_at else "campaign.error.closed"
        ctx.say(ctx.t(key))
        if info.status != "open" or d.live_results:
            await _say_results(ctx, info.id, final=info.status != "open")
        ctx.menu()
        return
    if d.audience == "targeted" and not await _service(ctx).invited(info.id, ctx.person_id):
        ctx.say(ctx.t("campaign.error.not_invited"))
        ctx.menu()
        return
    if not d.allow_change and await _service(ctx).has_voted(info.id, ctx.person_id):
        ctx.say(ctx.t("campaign.error.already_voted"))
        if d.live_results:
            await _say_results(ctx, info.id, final=False)
        ctx.menu()
        return
    intro = [d.title.get(ctx.locale)]
    if d.intro:
        intro.append(d.intro.get(ctx.locale))
    intro.append(ctx.t("campaign.survey.count", count=len(d.questions)))
    ctx.say("\n\n".join(intro))
    ctx.start("survey", step=_step_name(0), survey=info.id, answers={}, picked=[])


async def _question(ctx: Ctx, index: int) -> tuple[Question, int] | None:
    try:
        info = await _service(ctx).survey(int(ctx.data["survey"]))
    except (SurveyNotFound, KeyError, ValueError):
        return None
    questions = info.definition.questions
    if index >= len(questions):
        return None
    return questions[index], len(questions)


def _choices(ctx: Ctx, q: Question, picked: list[str]) -> list[Choice]:
    if q.kind is QuestionKind.CHOICE:
        return [Choice(id=f"{ANSWER}{o.id}", label=short_label(o.label.get(ctx.locale)))
                for o in q.options]
    if q.kind is QuestionKind.MULTI:
        out = [
            Choice(
                id=f"{ANSWER}{o.id}",
                label=short_label(("✓ " if o.id in picked else "") + o.label.get(ctx.locale)),
            )
            for o in q.options
        ]
        return [*out, Choice(id=DONE, label=ctx.t("campaign.survey.done"))]
    if q.kind is QuestionKind.SCALE:
        ends = {SCALE[0]: q.low, SCALE[-1]: q.high}
        return [
            Choice(
                id=f"{ANSWER}{n}",
                label=short_label(f"{n} {end.get(ctx.locale)}" if (end := ends.get(n)) else str(n)),
            )
            for n in SCALE
        ]
    return []


def _render_for(index: int):  # type: ignore[no-untyped-def]
    async def render(ctx: Ctx) -> Reply:
        found = await _question(ctx, index)
        if found is None:
            ctx.say(ctx.t("campaign.error.survey_not_found"))
            ctx.menu()
            return Reply(text="")
        q, total = found
        lines = [ctx.t("campaign.survey.progress", number=index + 1, total=total),
                 q.text.get(ctx.locale)]
        hint = {
            QuestionKind.MULTI: "campaign.survey.hint_multi",
            QuestionKind.SCALE: "campaign.survey.hint_scale",
            QuestionKind.TEXT: "campaign.survey.hint_text",
        }.get(q.kind)
        if hint:
            lines.append(ctx.t(hint, max=q.max_choices or len(q.options)))
        choices = _choices(ctx, q, list(ctx.data.get("picked", [])))
        if not q.required:
            choices.append(Choice(id=SKIP, label=ctx.t("campaign.survey.skip")))
        return Reply(text="\n".join(lines), choices=tuple(choices))

    return render


async def _answer(ctx: Ctx, index: int, value: Any) -> None:
    """Store one answer (validated by the core's rule) and go on, or submit after the last."""
    found = await _question(ctx, index)
    if found is None:
        ctx.say(ctx.t("campaign.error.survey_not_found"))
        ctx.menu()
        return
    q, total = found
    try:
        ctx.data.setdefault("answers", {})[q.id] = check_answer(q, value)
    except InvalidField as err:
        ctx.retry(ctx.t(f"campaign.answer.{err.code}", **err.params))
        return
    if q.kind is QuestionKind.TEXT and isinstance(value, str):
        findings = mask(value).findings
        if findings:
            ctx.say(masked_note(findings, ctx.locale))
    ctx.data["picked"] = []
    if index + 1 < total:
        ctx.goto(_step_name(index + 1))
        return
    await _submit(ctx)


async def _submit(ctx: Ctx) -> None:
    survey_id = int(ctx.data["survey"])
    try:
        outcome = await ctx.core.execute(
            CastBallot(survey_id=survey_id, person_id=ctx.person_id,
                       answers=dict(ctx.data.get("answers", {})), channel=ctx.channel)
        )
    except AlreadyVoted:
        ctx.say(ctx.t("campaign.error.already_voted"))
        ctx.menu()
        return
    except (SurveyClosed, SurveyNotOpenYet, SurveyNotFound) as err:
        ctx.say(ctx.t(err.key))
        ctx.menu()
        return
    info = await _service(ctx).survey(survey_id)
    thanks = info.definition.thanks
    text = thanks.get(ctx.locale) if thanks else ctx.t("campaign.survey.thanks")
    if outcome == "changed":
        text = ctx.t("campaign.survey.changed") + "\n" + text
    ctx.say(text)
    if info.definition.live_results:
        await _say_results(ctx, survey_id, final=False)
    else:
        ctx.say(ctx.t("campaign.survey.results_later"))
    ctx.menu()


async def _say_results(ctx: Ctx, survey_id: int, *, final: bool) -> None:
    results = await _service(ctx).results(survey_id)
    ctx.say(format_results(results, ctx.locale, final=final))


def _pick_for(index: int):  # type: ignore[no-untyped-def]
    async def pick(ctx: Ctx, choice_id: str) -> None:
        if not choice_id.startswith(ANSWER):
            return
        found = await _question(ctx, index)
        if found is None:
            ctx.menu()
            return
        q, _ = found
        if choice_id == SKIP:
            await _answer(ctx, index, None)
            return
        value = choice_id.removeprefix(ANSWER)
        if q.kind is QuestionKind.MULTI:
            picked: list[str] = list(ctx.data.get("picked", []))
            if choice_id == DONE:
                await _answer(ctx, index, picked)
                return
            if value in picked:
                picked.remove(value)
            else:
                picked.append(value)
            ctx.data["picked"] = picked
            ctx.stay()
            return
        await _answer(ctx, index, value)

    return pick


def _text_for(index: int):  # type: ignore[no-untyped-def]
    async def on_text(ctx: Ctx, text: str) -> None:
        found = await _question(ctx, index)
        if found is None:
            ctx.menu()
            return
        q, _ = found
        if q.kind is QuestionKind.TEXT:
            await _answer(ctx, index, text)
        elif q.kind is QuestionKind.MULTI:  # "1, 3" picks options 1 and 3 at once
            numbers = [p for p in text.replace(",", " ").split() if p.isdigit()]
            if not numbers or len(numbers) != len(text.replace(",", " ").split()):
                ctx.retry(ctx.t("campaign.survey.hint_multi", max=q.max_choices or len(q.options)))
                return
            ids = [q.options[int(n) - 1].id for n in numbers if 1 <= int(n) <= len(q.options)]
            await _answer(ctx, index, ids)
        elif q.kind is QuestionKind.SCALE:
            ctx.retry(ctx.t("campaign.answer.scale"))
        else:
            ctx.retry(ctx.t("campaign.answer.unknown_option"))

    return on_text


def flow() -> Flow:
    steps = {
        _step_name(i): Step(render=_render_for(i), on_pick=_pick_for(i), on_text=_text_for(i))
        for i in range(MAX_QUESTIONS)
    }
    return Flow(name="survey", start=_step_name(0), steps=steps, on_route=_route,
                resumable=True, resume_key="campaign.survey.resume")


def pack() -> FlowPack:
    """Polls and surveys (``sv:`` buttons) with the consent and topics flow, its STOP/START
    interceptor and its main-menu entry: what the campaigns feature adds to the engine."""
    return FlowPack(
        flows=(flow(), consent.flow()),
        routes=((PREFIX, "survey"), (consent.PREFIX, consent.FLOW)),
        menu=(MenuItem(choice_id="consent:main", label_key="campaign.menu.subscriptions"),),
        interceptors=(consent.intercept,),
    )
