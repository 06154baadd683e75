"""Proposal intake: title and body (one message is enough), similar proposals, area, extras
(region, address, photo, location in one optional step), review, submit.

Nothing typed is lost: leaving keeps the draft (the engine keeps ``data`` of a flow with
``draft_keys``) and the next "제안하기" offers to continue it; "취소" asks first; a refused
text is quoted back (or stays in the web page's box); going back shows the current value
with "그대로 두기". A minimal proposal takes five turns: 제안하기, the text, the area, 없음,
제출하기. See intake.md.
"""

from __future__ import annotations

import re
from dataclasses import replace

from conversations.flow import Ctx, Flow, Step, error_text, short_label
from conversations.matching import REGION_NAMES, closest, is_word
from conversations.privacy import mask_field, masked_summary
from core.commands import FollowProposal, SubmitProposal, SupportProposal
from core.domain.errors import AlreadyDone, InvalidField, NotAllowed
from core.domain.model import (
    BODY_MAX,
    BODY_MIN,
    CATEGORIES,
    REGIONS,
    TITLE_MAX,
    TITLE_MIN,
    AttachmentView,
    validate_body,
    validate_category,
    validate_region,
    validate_title,
)
from core.messages import Choice, Reply, Request

__all__ = ["DRAFT_KEYS", "flow"]

ORDER = ("title", "body", "similar", "category", "extras", "review")
EDITABLE = ("title", "body", "category", "extras")
DRAFT_KEYS = ("title", "body", "category", "region", "address", "photo", "location")
REF_MAX = 500
ADDRESS_MIN, ADDRESS_MAX = 2, 200
SIMILAR_SHOWN = 3
QUOTE_MARGIN = 200  # room left for the explanation around a quoted text


def _next(ctx: Ctx, done: str) -> None:
    """After ``done`` is filled: back to the review when editing, else the next step."""
    if ctx.data.get("editing"):
        ctx.data["editing"] = False
        ctx.goto("review", remember=False)
        return
    ctx.goto(ORDER[ORDER.index(done) + 1])


def _refuse(ctx: Ctx, message: str, typed: str | None = None) -> None:
    """Stay on this step and say why; the typed text is never thrown away: the web page
    keeps it in its box (``invalid``), other channels get it quoted back to copy and fix."""
    text = message
    if typed and typed.strip() and not ctx.capabilities.keeps_typed_text:
        room = max(0, ctx.capabilities.text_max - len(message) - QUOTE_MARGIN)
        quote = typed if len(typed) <= room else typed[: max(0, room - 1)] + "…"
        if quote:
            text += "\n\n" + ctx.t("conv.intake.your_text", text=quote)
    ctx.retry(text)
    ctx.out[-1] = replace(ctx.out[-1], meta={**ctx.out[-1].meta, "invalid": "1"})


def _keep(ctx: Ctx, field: str) -> Choice:
    return Choice(id=f"keep:{field}", label=ctx.t("conv.intake.keep"))


# --- start: a kept draft? -------------------------------------------------------------


def _kept(ctx: Ctx) -> dict[str, object] | None:
    kept = (ctx.state.get("drafts") or {}).get("intake")
    return kept if isinstance(kept, dict) and kept else None


async def _start(ctx: Ctx) -> Reply | list[Reply]:
    kept = _kept(ctx)
    if kept is None or any(ctx.data.get(k) for k in DRAFT_KEYS):
        ctx.goto("title", remember=False)
        return []
    title = str(kept.get("title") or kept.get("body") or "")
    text = ctx.t("conv.intake.draft_ask")
    if title:
        text += "\n" + ctx.t("conv.intake.draft_title", title=short_label(title, 60))
    return Reply(
        text=text,
        choices=(
            Choice(id="draft:resume", label=ctx.t("conv.intake.draft_resume")),
            Choice(id="draft:new", label=ctx.t("conv.intake.draft_new")),
        ),
        meta={"input": "choice"},
    )


async def _start_pick(ctx: Ctx, choice_id: str) -> None:
    drafts = ctx.state.setdefault("drafts", {})
    kept = drafts.pop("intake", None) or {}
    if choice_id == "draft:resume":
        ctx.data.update({k: v for k, v in kept.items() if k in DRAFT_KEYS})
        missing = [f for f in ("title", "body", "category") if not ctx.data.get(f)]
        target = missing[0] if missing else "review"
        # "이전" from there goes through what was written before, as if never left.
        ctx.state["stack"] = [s for s in ("title", "body") if ORDER.index(s) < ORDER.index(target)]
        ctx.goto(target, remember=False)
    elif choice_id == "draft:new":
        ctx.goto("title", remember=False)
    else:
        drafts["intake"] = kept


async def _start_text(ctx: Ctx, text: str) -> None:
    _refuse(ctx, ctx.t("conv.intake.draft_choose"), text)


# --- title and body ------------------------------------------------------------------


async def _ask_title(ctx: Ctx) -> Reply:
    current = ctx.data.get("title")
    if current:
        text = ctx.t("conv.intake.ask_title_again", min=TITLE_MIN, max=TITLE_MAX, current=current)
        return Reply(text=text, choices=(_keep(ctx, "title"),))
    return Reply(text=ctx.t("conv.intake.ask_title", min=TITLE_MIN, max=TITLE_MAX))


async def _title(ctx: Ctx, text: str) -> None:
    first, _, rest = text.strip().partition("\n")
    try:
        title = validate_title(first)
    except InvalidField as err:
        _refuse(ctx, _error(err, ctx), text)
        return
    if rest.strip() and not ctx.data.get("editing"):  # the whole proposal in one message
        try:
            body = validate_body(rest)
        except InvalidField as err:
            ctx.data["title"] = mask_field(ctx, "title", title)
            ctx.say(_error(err, ctx) + "\n\n" + ctx.t("conv.intake.your_text", text=rest.strip()))
            ctx.goto("body")
            return
        ctx.data.update(title=mask_field(ctx, "title", title), body=mask_field(ctx, "body", body))
        _next(ctx, "body")
        return
    ctx.data["title"] = mask_field(ctx, "title", title)
    _next(ctx, "title")


async def _ask_body(ctx: Ctx) -> Reply:
    current = ctx.data.get("body")
    if current:
        text = ctx.t("conv.intake.ask_body_again", min=BODY_MIN, max=BODY_MAX, current=current)
        return Reply(text=text, choices=(_keep(ctx, "body"),))
    return Reply(text=ctx.t("conv.intake.ask_body", min=BODY_MIN, max=BODY_MAX))


async def _body(ctx: Ctx, text: str) -> None:
    try:
        ctx.data["body"] = mask_field(ctx, "body", validate_body(text))
    except InvalidField as err:
        _refuse(ctx, _error(err, ctx), text)
        return
    _next(ctx, "body")


async def _keep_pick(ctx: Ctx, choice_id: str) -> None:
    field = choice_id.removeprefix("keep:")
    if choice_id.startswith("keep:") and field == ctx.step and ctx.data.get(field):
        _next(ctx, field)


def _error(err: InvalidField, ctx: Ctx) -> str:
    return error_text(err, ctx.locale)


# --- similar proposals ---------------------------------------------------------------


async def _similar(ctx: Ctx) -> Reply | list[Reply]:
    shown = ctx.data.get("similar")
    if shown is None:
        found = await ctx.core.similar.find(
            str(ctx.data.get("title", "")), str(ctx.data.get("body", "")), limit=SIMILAR_SHOWN
        )
        shown = [[m.summary.tracking, m.summary.title, m.summary.support_count] for m in found]
        ctx.data["similar"] = shown
    if not shown:
        _next(ctx, "similar")
        return []
    done: list[str] = list(ctx.data.get("helped", []))
    lines = [ctx.t("conv.intake.similar_intro")]
    choices: list[Choice] = []
    for n, (tracking, title, supports) in enumerate(shown, start=1):
        lines.append(ctx.t("conv.intake.similar_line", n=n, title=title, tracking=tracking,
                           count=supports))
        if f"support:{tracking}" not in done:
            choices.append(Choice(id=f"sim:support:{tracking}",
                                  label=ctx.t("conv.intake.similar_support", n=n)))
        if f"follow:{tracking}" not in done:
            choices.append(Choice(id=f"sim:follow:{tracking}",
                                  label=ctx.t("conv.intake.similar_follow", n=n)))
    choices.append(Choice(id="sim:new", label=ctx.t("conv.intake.similar_new")))
    if done:
        choices.append(Choice(id="sim:drop", label=ctx.t("conv.intake.similar_drop")))
    return Reply(text="\n".join(lines), choices=tuple(choices), meta={"input": "choice"})


async def _similar_pick(ctx: Ctx, choice_id: str) -> None:
    if choice_id == "sim:new":
        _next(ctx, "similar")
        return
    if choice_id == "sim:drop":
        ctx.data.clear()
        ctx.say(ctx.t("conv.intake.dropped"))
        ctx.menu()
        return
    _, action, tracking = (choice_id.split(":", 2) + ["", ""])[:3]
    if tracking not in [s[0] for s in ctx.data.get("similar") or []]:
        return
    try:
        if action == "support":
            count = await ctx.core.execute(
                SupportProposal(person_id=ctx.person_id, tracking=tracking)
            )
            text = ctx.t("conv.proposal.supported", count=count)
        elif action == "follow":
            await ctx.core.execute(FollowProposal(person_id=ctx.person_id, tracking=tracking))
            text = ctx.t("conv.proposal.followed")
        else:
            return
    except AlreadyDone:
        text = ctx.t("conv.proposal.already_supported")
    except NotAllowed:
        text = ctx.t("conv.proposal.closed")
    ctx.data.setdefault("helped", []).append(f"{action}:{tracking}")
    ctx.say(text)
    ctx.stay()


async def _similar_text(ctx: Ctx, text: str) -> None:
    _refuse(ctx, ctx.t("conv.intake.similar_hint"), text)


# --- area -----------------------------------------------------------------------------


def _category_names(ctx: Ctx) -> list[tuple[str, list[str]]]:
    from core.i18n import LOCALES, t

    out = []
    for key in CATEGORIES:
        names = []
        for locale in LOCALES:
            label = t(f"category.{key}", locale)
            names += [label, *re.split(r"[·/,]", label)]
        out.append((key, names))
    return out


async def _ask_category(ctx: Ctx) -> Reply:
    choices = [Choice(id=f"cat:{key}", label=ctx.t(f"category.{key}")) for key in CATEGORIES]
    text = ctx.t("conv.intake.ask_category")
    current = ctx.data.get("category")
    if current:
        text += "\n" + ctx.t("conv.intake.current", value=ctx.t(f"category.{current}"))
        choices.insert(0, _keep(ctx, "category"))
    return Reply(text=text, choices=tuple(choices))


async def _category(ctx: Ctx, choice_id: str) -> None:
    if choice_id == "all":
        ctx.stay()
        return
    if choice_id.startswith("keep:"):
        await _keep_pick(ctx, choice_id)
        return
    if not choice_id.startswith("cat:"):
        return
    ctx.data["category"] = validate_category(choice_id.removeprefix("cat:"))
    _next(ctx, "category")


async def _category_text(ctx: Ctx, text: str) -> None:
    found = closest(text, _category_names(ctx))
    if found.exact:
        ctx.data["category"] = found.exact
        _next(ctx, "category")
        return
    if found.options:
        _offer_closest(ctx, [(f"cat:{k}", ctx.t(f"category.{k}")) for k in found.options])
        return
    _refuse(ctx, ctx.t("conv.intake.pick_category"), text)


def _offer_closest(ctx: Ctx, options: list[tuple[str, str]]) -> None:
    """Ambiguous: the two or three closest options, "show all", and the way back."""
    ctx.retry(ctx.t("conv.intake.did_you_mean"))
    ctx.retry_choices = (
        tuple(Choice(id=i, label=label) for i, label in options)
        + (Choice(id="all", label=ctx.t("conv.intake.show_all")),)
        + tuple(c for c in ctx.offered if c.id.startswith("nav:"))
    )


# --- extras: region, address, photo, location (all optional, one step) ----------------


def _region_names() -> list[tuple[str, list[str]]]:
    from core.i18n import LOCALES, t

    return [
        (key, [*(t(f"region.{key}", loc) for loc in LOCALES), *REGION_NAMES[key]])
        for key in REGIONS
    ]


def _attached(ctx: Ctx) -> list[str]:
    data = ctx.data
    out = []
    if data.get("region"):
        out.append(ctx.t("conv.intake.field_region", value=ctx.t(f"region.{data['region']}")))
    if data.get("address"):
        out.append(ctx.t("conv.intake.field_address", value=data["address"]))
    if data.get("photo"):
        out.append(ctx.t("conv.intake.field_photo", value=ctx.t("conv.intake.attached")))
    if data.get("location"):
        out.append(ctx.t("conv.intake.field_location", value=ctx.t("conv.intake.attached")))
    return out


async def _ask_extras(ctx: Ctx) -> Reply:
    caps = ctx.capabilities
    if caps.photo_intake and caps.location_intake:
        key, request = "conv.intake.ask_extras_all", Request.PHOTO_OR_LOCATION
    elif caps.photo_intake:
        key, request = "conv.intake.ask_extras_photo", Request.PHOTO
    elif caps.location_intake:
        key, request = "conv.intake.ask_extras_location", Request.LOCATION
    else:
        key, request = "conv.intake.ask_extras_text", None
    attached = _attached(ctx)
    if attached:
        text = ctx.t("conv.intake.extras_so_far") + "\n" + "\n".join(attached)
        text += "\n\n" + ctx.t("conv.intake.extras_more")
        choices = [Choice(id="ext:done", label=ctx.t("conv.intake.extras_done"))]
    else:
        text = ctx.t(key)
        choices = [Choice(id="ext:done", label=ctx.t("conv.intake.extras_none"))]
    choices.append(Choice(id="ext:region", label=ctx.t("conv.intake.pick_region_button")))
    for field in ("region", "address", "photo", "location"):
        if ctx.data.get(field):
            choices.append(Choice(id=f"ext:rm:{field}", label=ctx.t(f"conv.intake.remove_{field}")))
    return Reply(text=text, request=request, choices=tuple(choices))


def _extras_done(ctx: Ctx) -> None:
    _next(ctx, "extras")


async def _extras_pick(ctx: Ctx, choice_id: str) -> None:
    if choice_id == "ext:done":
        _extras_done(ctx)
    elif choice_id == "ext:region":
        ctx.goto("region")
    elif choice_id.startswith("ext:rm:") and choice_id[7:] in ("region", "address", "photo",
                                                              "location"):
        ctx.data[choice_id[7:]] = None
        ctx.stay()


async def _extras_text(ctx: Ctx, text: str) -> None:
    typed = " ".join(text.split())
    if is_word(typed, "conv.words.skip") or is_word(typed, "conv.words.done"):
        _extras_done(ctx)
        return
    if is_word(typed, "conv.words.no_region"):  # "전국": the whole country, nothing to add
        ctx.data["region"] = None
        _extras_done(ctx)
        return
    region = closest(typed, _region_names())
    if region.exact and len(typed) <= 8:  # "서울", "경기도": a region, not an address
        ctx.data["region"] = region.exact
        ctx.stay()
        return
    if len(typed) < ADDRESS_MIN or len(typed) > ADDRESS_MAX:
        _refuse(ctx, ctx.t("conv.intake.bad_address", max=ADDRESS_MAX), text)
        return
    # Anything else is a place in the person's own words ("종로구 세종대로 209", "시장 앞").
    ctx.data["address"] = mask_field(ctx, "address", typed)
    first = closest(typed.split()[0], _region_names())  # "서울특별시 종로구 …" → 서울
    if first.exact and not ctx.data.get("region"):
        ctx.data["region"] = first.exact
    ctx.stay()


async def _photo(ctx: Ctx, ref: str, _caption: str | None) -> None:
    if not ref or len(ref) > REF_MAX:
        ctx.retry(ctx.t("conv.intake.bad_photo"))
        return
    ctx.data["photo"] = ref
    ctx.stay()


async def _location(ctx: Ctx, latitude: float, longitude: float) -> None:
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
        ctx.retry(ctx.t("conv.intake.bad_location"))
        return
    ctx.data["location"] = [float(latitude), float(longitude)]
    ctx.stay()


async def _ask_region(ctx: Ctx) -> Reply:
    choices = (Choice(id="reg:none", label=ctx.t("conv.intake.no_region")),) + tuple(
        Choice(id=f"reg:{key}", label=ctx.t(f"region.{key}")) for key in REGIONS
    )
    return Reply(text=ctx.t("conv.intake.ask_region"), choices=choices)


async def _region(ctx: Ctx, choice_id: str) -> None:
    if choice_id == "all":
        ctx.stay()
        return
    if not choice_id.startswith("reg:"):
        return
    key = choice_id.removeprefix("reg:")
    ctx.data["region"] = None if key in ("none", "skip") else validate_region(key)
    ctx.goto("extras", remember=False)


async def _region_text(ctx: Ctx, text: str) -> None:
    if is_word(text, "conv.words.no_region") or is_word(text, "conv.words.skip"):
        ctx.data["region"] = None
        ctx.goto("extras", remember=False)
        return
    found = closest(text, _region_names())
    if found.exact:
        ctx.data["region"] = found.exact
        ctx.goto("extras", remember=False)
        return
    if found.options:
        _offer_closest(ctx, [(f"reg:{k}", ctx.t(f"region.{k}")) for k in found.options])
        return
    _refuse(ctx, ctx.t("conv.intake.pick_region"), text)


# --- review and submit ---------------------------------------------------------------


def _summary(ctx: Ctx) -> str:
    data = ctx.data
    none = ctx.t("conv.intake.none")
    lines = [
        ctx.t("conv.intake.review_intro"),
        "",
        ctx.t("conv.intake.field_title", value=data.get("title", "")),
        ctx.t("conv.intake.field_body", value=data.get("body", "")),
        ctx.t("conv.intake.field_category", value=ctx.t(f"category.{data.get('category')}")),
    ]
    extras = _attached(ctx)
    if not data.get("region"):
        extras.insert(0, ctx.t("conv.intake.field_region", value=none))
    lines += extras
    if note := masked_summary(ctx):
        lines += ["", note, ctx.t("privacy.masked.hint")]
    return "\n".join(lines)


async def _review(ctx: Ctx) -> Reply:
    ctx.data["editing"] = False
    choices = [Choice(id="rev:confirm", label=ctx.t("conv.intake.confirm"))]
    choices += [Choice(id=f"rev:edit:{f}", label=ctx.t(f"conv.intake.edit_{f}")) for f in EDITABLE]
    choices.append(Choice(id="nav:cancel", label=ctx.t("conv.intake.delete")))
    return Reply(text=_summary(ctx), choices=tuple(choices), meta={"input": "choice"})


async def _review_pick(ctx: Ctx, choice_id: str) -> None:
    if choice_id == "rev:confirm":
        await _submit(ctx)
        return
    field = choice_id.removeprefix("rev:edit:")
    if choice_id.startswith("rev:edit:") and field in EDITABLE:
        ctx.data["editing"] = True
        ctx.goto(field)


async def _review_text(ctx: Ctx, text: str) -> None:
    if is_word(text, "conv.words.submit"):
        await _submit(ctx)
        return
    _refuse(ctx, ctx.t("conv.intake.review_hint"), text)


async def _submit(ctx: Ctx) -> None:
    data = ctx.data
    missing = [f for f in ("title", "body", "category") if not data.get(f)]
    if missing:  # an old or damaged draft: ask for what is missing
        ctx.say(ctx.t("conv.intake.missing"))
        ctx.goto(missing[0])
        return
    attachments: list[AttachmentView] = []
    if data.get("photo"):
        attachments.append(AttachmentView(kind="photo", ref=str(data["photo"])))
    if data.get("location"):
        lat, lon = data["location"]
        attachments.append(AttachmentView(kind="location", latitude=lat, longitude=lon))
    body = str(data["body"])
    if data.get("address"):  # a place in words travels with the text everyone reads
        body += "\n\n" + ctx.t("conv.intake.field_address", value=data["address"])
    try:
        tracking = await ctx.execute(
            SubmitProposal(
                person_id=ctx.person_id,
                title=data["title"],
                body=body,
                category=data["category"],
                region=data.get("region"),
                attachments=tuple(attachments),
                channel=ctx.channel,
            )
        )
    except InvalidField as err:  # e.g. the address made the text too long
        ctx.say(_error(err, ctx))
        ctx.data["editing"] = True
        ctx.goto("body" if err.field == "body" else "review")
        return
    ctx.data.clear()  # sent: nothing left to keep
    ctx.data["tracking"] = tracking
    ctx.goto("done", remember=False)


async def _done(ctx: Ctx) -> Reply:
    tracking = str(ctx.data.get("tracking", ""))
    return Reply(
        text=ctx.t("conv.intake.submitted", tracking=tracking),
        choices=(
            Choice(id=f"p:{tracking}:show", label=ctx.t("conv.intake.view_it")),
            Choice(id="menu:mine", label=ctx.t("conv.intake.view_mine")),
            Choice(id="menu:main", label=ctx.t("conv.nav.menu")),
        ),
        meta={"tracking": tracking, "input": "choice"},
    )


def flow() -> Flow:
    return Flow(
        name="intake",
        start="start",
        resumable=True,
        resume_key="conv.resume.ask",
        draft_keys=DRAFT_KEYS,
        steps={
            "start": Step(
                render=_start, on_pick=_start_pick, on_text=_start_text, remember=False
            ),
            "title": Step(render=_ask_title, on_text=_title, on_pick=_keep_pick),
            "body": Step(render=_ask_body, on_text=_body, on_pick=_keep_pick),
            "similar": Step(
                render=_similar, on_pick=_similar_pick, on_text=_similar_text, remember=False
            ),
            "category": Step(render=_ask_category, on_pick=_category, on_text=_category_text),
            "extras": Step(
                render=_ask_extras,
                on_text=_extras_text,
                on_pick=_extras_pick,
                on_photo=_photo,
                on_location=_location,
            ),
            "region": Step(render=_ask_region, on_pick=_region, on_text=_region_text,
                           remember=False),
            "review": Step(
                render=_review, on_pick=_review_pick, on_text=_review_text, nav=False
            ),
            "done": Step(render=_done, nav=False, remember=False),
        },
    )
