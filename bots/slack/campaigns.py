"""The campaigner's Slack: a modal to define (and push) a survey, live progress, final results."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core.bootstrap import Core
from core.campaigns import commands as c
from core.campaigns.events import SurveyResultsPublished
from core.campaigns.loader import SurveyErrors, parse_survey
from core.campaigns.model import Segment, SurveyDef
from core.campaigns.results import format_results
from core.domain.errors import DomainError
from core.domain.model import CATEGORIES
from core.i18n import normalise_locale, t

__all__ = ["COMMAND", "VIEW", "CampaignDesk", "campaign_modal", "escape"]

log = logging.getLogger(__name__)

COMMAND = "/gongnon-campaign"
SHORTCUT = "gongnon_campaign"
VIEW = "gongnon_campaign_modal"
YAML_MAX = 3000  # plain_text_input's own limit
ERROR_MAX = 1500
BAR = 20


def escape(text: str) -> str:
    """Slack's three control characters, so no text becomes a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str, limit: int = 75) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:limit]}


def campaign_modal(locale: str) -> dict[str, Any]:
    """The modal: survey YAML, and optionally topics/channels to push it to right away."""

    def field(block_id: str, label: str, *, hint: str | None = None, multiline: bool = False,
              optional: bool = False, max_length: int = 200) -> dict[str, Any]:
        block: dict[str, Any] = {
            "type": "input", "block_id": block_id, "optional": optional,
            "label": _plain(t(label, locale), 2000),
            "element": {"type": "plain_text_input", "action_id": "value",
                        "multiline": multiline, "max_length": max_length},
        }
        if hint:
            block["hint"] = _plain(t(hint, locale), 2000)
        return block

    return {
        "type": "modal",
        "callback_id": VIEW,
        "title": _plain(t("campaign.slack.modal_title", locale), 24),
        "submit": _plain(t("campaign.slack.submit", locale), 24),
        "close": _plain(t("campaign.slack.close", locale), 24),
        "blocks": [
            field("yaml", "campaign.slack.yaml_label", hint="campaign.slack.yaml_hint",
                  multiline=True, max_length=YAML_MAX),
            field("topics", "campaign.slack.push_label", hint="campaign.slack.push_hint",
                  optional=True),
            field("channels", "campaign.slack.channel_label", optional=True, max_length=100),
        ],
    }


def _words(value: str | None) -> tuple[str, ...]:
    return tuple(w.strip() for w in (value or "").replace(" ", ",").split(",") if w.strip())


def progress_text(progress: Any, locale: str) -> str:
    filled = round(progress.share * BAR)
    return t("campaign.slack.progress", locale, id=progress.push_id, name=escape(progress.name),
             status=progress.status, bar="▓" * filled + "░" * (BAR - filled),
             done=progress.finished, audience=progress.audience)


class CampaignDesk:
    """Listeners for campaign staff (``settings.slack_campaigners``), on the Slack mount's Bolt."""

    progress_every = 5.0  # seconds between in-place updates of a push's progress message

    def __init__(self, *, core: Core, client: AsyncWebClient,
                 spawn: Callable[[Coroutine[Any, Any, None]], None]) -> None:
        self.core = core
        self.client = client
        self.spawn = spawn
        self.service = core.campaigns
        self._followers: set[asyncio.Task[None]] = set()

    @classmethod
    def attach(cls, app: AsyncApp, *, core: Core, client: AsyncWebClient,
               spawn: Callable[[Coroutine[Any, Any, None]], None]) -> CampaignDesk:
        desk = cls(core=core, client=client, spawn=spawn)
        app.command(COMMAND)(desk._on_open)
        app.shortcut(SHORTCUT)(desk._on_open)
        app.view(VIEW)(desk._on_submit)
        core.bus.after_commit(SurveyResultsPublished, desk._on_results)
        core.on_start(desk.resume_progress)
        core.on_stop(desk.close)
        return desk

    def _watch(self, push_id: int, ref: str, locale: str) -> None:
        """Follow a push in the background (not awaited by the listeners' drain)."""
        task = asyncio.create_task(self._follow(push_id, ref, locale))
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)

    async def close(self) -> None:
        for task in list(self._followers):
            task.cancel()
        await asyncio.gather(*self._followers, return_exceptions=True)

    def _campaigner(self, user: str) -> bool:
        return bool(user) and user in self.core.settings.slack_campaigners

    def _locale(self, body: dict[str, Any]) -> str:
        user = body.get("user") if isinstance(body.get("user"), dict) else {}
        return normalise_locale(body.get("locale") or (user or {}).get("locale"),
                                self.core.settings.default_locale)

    # --- opening the modal -----------------------------------------------------------
    async def _on_open(self, ack: Any, body: dict[str, Any]) -> None:
        user = str(body.get("user_id") or (body.get("user") or {}).get("id") or "")
        locale = self._locale(body)
        if not self._campaigner(user):
            await ack(text=t("campaign.slack.not_campaigner", locale))
            return
        await ack()
        try:  # trigger_id lives 3 seconds: open at once, no database work before
            await self.client.views_open(trigger_id=body["trigger_id"],
                                         view=campaign_modal(locale))
        except SlackApiError as exc:
            log.warning("slack: campaign modal failed (%s)", exc.response.get("error"))

    # --- submitting ----------------------------------------------------------------------
    async def _on_submit(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = str((body.get("user") or {}).get("id") or "")
        locale = self._locale(body)
        values = view.get("state", {}).get("values", {})

        def value(block: str) -> str:
            return str((values.get(block, {}).get("value") or {}).get("value") or "")

        if not self._campaigner(user):
            await ack(response_action="errors",
                      errors={"yaml": t("campaign.slack.not_campaigner", locale)})
            return
        try:  # fast and local: errors go back into the modal, each with its line
            definition = parse_survey(
                value("yaml"), tz=self.core.settings.tz, now=self.core.clock.now()
            )
        except SurveyErrors as errors:
            await ack(response_action="errors",
                      errors={"yaml": "\n".join(errors.lines(locale))[:ERROR_MAX]})
            return
        topics = _words(value("topics"))
        unknown = [x for x in topics if x not in CATEGORIES]
        if unknown:
            await ack(response_action="errors", errors={"topics": ", ".join(CATEGORIES)})
            return
        await ack()
        self.spawn(self._create(user, locale, definition, topics, _words(value("channels"))))

    async def _dm(self, user: str, text: str) -> str | None:
        try:
            answer = await self.client.chat_postMessage(channel=user, text=text)
        except SlackApiError as exc:
            log.warning("slack: campaign message failed (%s)", exc.response.get("error"))
            return None
        return f"{answer.get('channel') or user}:{answer.get('ts')}"

    async def _create(self, user: str, locale: str, definition: SurveyDef,
                      topics: tuple[str, ...], channels: tuple[str, ...]) -> None:
        actor = f"slack:{user}"
        try:
            survey_id = await self.core.execute(c.CreateSurvey(definition=definition,
                                                               actor=actor))
            await self._dm(user, t("campaign.slack.created", locale, slug=definition.slug,
                                   id=survey_id))
            if not topics:
                return
            push_id = await self.core.execute(c.CreatePush(
                name=definition.title.ko, message={}, survey_id=survey_id, actor=actor,
                segment=Segment(topics=topics, channels=channels)))
            await self.core.execute(c.StartPush(push_id=push_id, actor=actor))
        except DomainError as err:
            await self._dm(user, t("campaign.cli.domain_error", locale,
                                   message=t(err.key, locale, **err.params)))
            return
        ref = await self._dm(user, progress_text(await self.service.progress(push_id), locale))
        if ref is not None:
            await self.core.execute(c.SetProgressRef(push_id=push_id, ref=f"slack:{ref}"))
            self._watch(push_id, ref, locale)

    # --- progress, updated in place ------------------------------------------------------
    async def _follow(self, push_id: int, ref: str, locale: str) -> None:
        try:
            await self._follow_until_done(push_id, ref, locale)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("slack: following push %s failed", push_id)

    async def _follow_until_done(self, push_id: int, ref: str, locale: str) -> None:
        channel, _, ts = ref.partition(":")
        last = ""
        while True:
            progress = await self.service.progress(push_id)
            text = progress_text(progress, locale)
            if progress.done:
                counts = {s: progress.counts.get(s, 0) for s in
                          ("sent", "failed", "unreachable", "opted_out", "cancelled")}
                text += "\n" + t("campaign.cli.report", locale, **counts)
            if text != last:
                try:
                    await self.client.chat_update(channel=channel, ts=ts, text=text)
                except SlackApiError as exc:
                    log.warning("slack: progress update failed (%s)", exc.response.get("error"))
                last = text
            if progress.done:
                return
            await asyncio.sleep(self.progress_every)

    async def resume_progress(self) -> None:
        """After a restart, keep updating the progress messages of unfinished pushes."""
        for progress in await self.service.pushes(limit=50):
            ref = progress.progress_ref or ""
            if ref.startswith("slack:") and not progress.done:
                self._watch(progress.push_id, ref.removeprefix("slack:"),
                            self.core.settings.default_locale)

    # --- results at close ------------------------------------------------------------------
    async def _on_results(self, event: SurveyResultsPublished) -> None:
        channel = self.core.settings.slack_digest_channel or self.core.settings.slack_triage_channel
        if not channel or not await self.core.once(f"slack:survey-results:{event.survey_id}"):
            return
        locale = self.core.settings.default_locale
        results = await self.service.results(event.survey_id)
        text = escape(format_results(results, locale, final=True))
        charts = await self.service.charts(results, locale)
        if not charts:
            await self.client.chat_postMessage(channel=channel, text=text)
            return
        title = t("campaign.slack.results_title", locale, title=results.title.get(locale))
        await self.client.files_upload_v2(
            channel=channel, initial_comment=text,
            file_uploads=[{"content": png, "filename": f"survey-{results.slug}-{i}.png",
                           "title": title} for i, png in enumerate(charts, start=1)],
        )
