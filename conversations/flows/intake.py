"""Proposal intake: title, body, category, region, photo, location, review, submit."""

from __future__ import annotations

from conversations.flow import Ctx, Flow, Step
from core.commands import SubmitProposal
from core.domain.errors import InvalidField
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

__all__ = ["flow"]

ORDER = ("title", "body", "category", "region", "photo", "location", "review")
EDITABLE = ("title", "body", "category", "region", "photo", "location")
REF_MAX = 500


def _next(ctx: Ctx, done: str) -> None:
    """After ``done`` is filled: back to the review when editing, else the next step."""
    if ctx.data.get("editing"):
        ctx.data["editing"] = False
        ctx.goto("review", remember=False)
        return
    ctx.goto(ORDER[ORDER.index(done) + 1])


# --- title and body ------------------------------------------------------------------


async def _ask_title(ctx: Ctx) -> Reply:
    key = "conv.intake.ask_title_again" if ctx.data.get("title") else "conv.intake.ask_title"
    return Reply(text=ctx.t(key, min=TITLE_MIN, max=TITLE_MAX, current=ctx.data.get("title", "")))


async def _title(ctx: Ctx, text: str) -> None:
    ctx.data["title"] = validate_title(text)
    _next(ctx, "title")


async def _ask_body(ctx: Ctx) -> Reply:
    key = "conv.intake.ask_body_again" if ctx.data.get("body") else "conv.intake.ask_body"
    return Reply(text=ctx.t(key, min=BODY_MIN, max=BODY_MAX))


async def _body(ctx: Ctx, text: str) -> None:
    ctx.data["body"] = validate_body(text)
    _next(ctx, "body")


# --- category and region -------------------------------------------------------------


async def _ask_category(ctx: Ctx) -> Reply:
    return Reply(
        text=ctx.t("conv.intake.ask_category"),
        choices=tuple(
            Choice(id=f"cat:{key}", label=ctx.t(f"category.{key}")) for key in CATEGORIES
        ),
    )


async def _category(ctx: Ctx, choice_id: str) -> None:
    if not choice_id.startswith("cat:"):
        return
    ctx.data["category"] = validate_category(choice_id.removeprefix("cat:"))
    _next(ctx, "category")


async def _category_text(ctx: Ctx, _text: str) -> None:
    ctx.retry(ctx.t("conv.intake.pick_category"))


async def _ask_region(ctx: Ctx) -> Reply:
    choices = (Choice(id="reg:skip", label=ctx.t("conv.intake.skip")),) + tuple(
        Choice(id=f"reg:{key}", label=ctx.t(f"region.{key}")) for key in REGIONS
    )
    return Reply(text=ctx.t("conv.intake.ask_region"), choices=choices)


async def _region(ctx: Ctx, choice_id: str) -> None:
    if not choice_id.startswith("reg:"):
        return
    key = choice_id.removeprefix("reg:")
    ctx.data["region"] = None if key == "skip" else validate_region(key)
    _next(ctx, "region")


async def _region_text(ctx: Ctx, _text: str) -> None:
    ctx.retry(ctx.t("conv.intake.pick_region"))


# --- photo and location (only where the channel can take them) -----------------------


async def _ask_photo(ctx: Ctx) -> Reply | list[Reply]:
    if not ctx.capabilities.photo_intake:
        ctx.goto(ORDER[ORDER.index("photo") + 1] if not ctx.data.get("editing") else "review",
                 remember=False)
        return []
    choices = [Choice(id="photo:skip", label=ctx.t("conv.intake.skip"))]
    if ctx.data.get("photo"):
        choices.append(Choice(id="photo:remove", label=ctx.t("conv.intake.remove_photo")))
    return Reply(text=ctx.t("conv.intake.ask_photo"), request=Request.PHOTO, choices=tuple(choices))


async def _photo(ctx: Ctx, ref: str, _caption: str | None) -> None:
    if not ref or len(ref) > REF_MAX:
        ctx.retry(ctx.t("conv.intake.bad_photo"))
        return
    ctx.data["photo"] = ref
    _next(ctx, "photo")


async def _photo_pick(ctx: Ctx, choice_id: str) -> None:
    if choice_id == "photo:remove":
        ctx.data["photo"] = None
    elif choice_id != "photo:skip":
        return
    _next(ctx, "photo")


async def _photo_text(ctx: Ctx, _text: str) -> None:
    ctx.retry(ctx.t("conv.intake.want_photo"))


async def _ask_location(ctx: Ctx) -> Reply | list[Reply]:
    if not ctx.capabilities.location_intake:
        ctx.goto("review", remember=False)
        return []
    choices = [Choice(id="loc:skip", label=ctx.t("conv.intake.skip"))]
    if ctx.data.get("location"):
        choices.append(Choice(id="loc:remove", label=ctx.t("conv.intake.remove_location")))
    return Reply(
        text=ctx.t("conv.intake.ask_location"), request=Request.LOCATION, choices=tuple(choices)
    )


async def _location(ctx: Ctx, latitude: float, longitude: float) -> None:
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
        ctx.retry(ctx.t("conv.intake.bad_location"))
        return
    ctx.data["location"] = [float(latitude), float(longitude)]
    _next(ctx, "location")


async def _location_pick(ctx: Ctx, choice_id: str) -> None:
    if choice_id == "loc:remove":
        ctx.data["location"] = None
    elif choice_id != "loc:skip":
        return
    _next(ctx, "location")


async def _location_text(ctx: Ctx, _text: str) -> None:
    ctx.retry(ctx.t("conv.intake.want_location"))


# --- review and submit ---------------------------------------------------------------


def _editable(ctx: Ctx) -> list[str]:
    fields = ["title", "body", "category", "region"]
    if ctx.capabilities.photo_intake or ctx.data.get("photo"):
        fields.append("photo")
    if ctx.capabilities.location_intake or ctx.data.get("location"):
        fields.append("location")
    return fields


def _summary(ctx: Ctx) -> str:
    data = ctx.data
    none = ctx.t("conv.intake.none")
    lines = [
        ctx.t("conv.intake.review_intro"),
        "",
        ctx.t("conv.intake.field_title", value=data.get("title", "")),
        ctx.t("conv.intake.field_body", value=data.get("body", "")),
        ctx.t("conv.intake.field_category", value=ctx.t(f"category.{data.get('category')}")),
        ctx.t(
            "conv.intake.field_region",
            value=ctx.t(f"region.{data['region']}") if data.get("region") else none,
        ),
    ]
    fields = _editable(ctx)
    if "photo" in fields:
        has = ctx.t("conv.intake.attached") if data.get("photo") else none
        lines.append(ctx.t("conv.intake.field_photo", value=has))
    if "location" in fields:
        has = ctx.t("conv.intake.attached") if data.get("location") else none
        lines.append(ctx.t("conv.intake.field_location", value=has))
    return "\n".join(lines)


async def _review(ctx: Ctx) -> Reply:
    ctx.data["editing"] = False
    choices = [Choice(id="rev:confirm", label=ctx.t("conv.intake.confirm"))]
    choices += [
        Choice(id=f"rev:edit:{f}", label=ctx.t(f"conv.intake.edit_{f}")) for f in _editable(ctx)
    ]
    choices.append(Choice(id="nav:cancel", label=ctx.t("conv.nav.cancel")))
    return Reply(text=_summary(ctx), choices=tuple(choices))


async def _review_pick(ctx: Ctx, choice_id: str) -> None:
    if choice_id == "rev:confirm":
        await _submit(ctx)
        return
    field = choice_id.removeprefix("rev:edit:")
    if choice_id.startswith("rev:edit:") and field in EDITABLE:
        ctx.data["editing"] = True
        ctx.goto(field)


async def _review_text(ctx: Ctx, _text: str) -> None:
    ctx.retry(ctx.t("conv.intake.review_hint"))


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
    try:
        tracking = await ctx.execute(
            SubmitProposal(
                person_id=ctx.person_id,
                title=data["title"],
                body=data["body"],
                category=data["category"],
                region=data.get("region"),
                attachments=tuple(attachments),
                channel=ctx.channel,
            )
        )
    except InvalidField as err:  # should not happen: each field was checked on entry
        from conversations.engine import error_text

        ctx.say(error_text(err, ctx.locale))
        ctx.data["editing"] = True
        ctx.goto(err.field if err.field in EDITABLE else "review")
        return
    ctx.say(
        Reply(
            text=ctx.t("conv.intake.submitted", tracking=tracking),
            choices=(Choice(id=f"p:{tracking}:show", label=ctx.t("conv.intake.view_it")),),
            meta={"tracking": tracking},
        )
    )
    ctx.menu()


def flow() -> Flow:
    return Flow(
        name="intake",
        start="title",
        resumable=True,
        resume_key="conv.resume.ask",
        steps={
            "title": Step(render=_ask_title, on_text=_title),
            "body": Step(render=_ask_body, on_text=_body),
            "category": Step(render=_ask_category, on_pick=_category, on_text=_category_text),
            "region": Step(render=_ask_region, on_pick=_region, on_text=_region_text),
            "photo": Step(
                render=_ask_photo, on_photo=_photo, on_pick=_photo_pick, on_text=_photo_text
            ),
            "location": Step(
                render=_ask_location,
                on_location=_location,
                on_pick=_location_pick,
                on_text=_location_text,
            ),
            "review": Step(
                render=_review, on_pick=_review_pick, on_text=_review_text, nav=False
            ),
        },
    )
