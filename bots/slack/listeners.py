"""Bolt listeners for officials: ``/gongnon``, triage buttons, modal submissions, mentions.

Every listener acks at once and hands slow work to a tracked task; the request middleware
refuses replayed requests and drops redelivered events (``event_id``) before any listener.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Coroutine
from datetime import date
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack import render
from bots.slack.slash import SlashRequest, parse_slash
from core.bootstrap import Core
from core.domain.model import parse_tracking
from core.i18n import normalise_locale, t
from core.officials import Officials, Outcome

__all__ = ["SlackListeners"]

log = logging.getLogger(__name__)
SIGNATURE_TTL = 600  # longer than Slack's 300 s timestamp window
EVENT_TTL = 24 * 3600
TRACKING_IN_TEXT = re.compile(r"P-?\d{4}-?\d{1,6}", re.IGNORECASE)


def _first(headers: dict[str, Any], name: str) -> str:
    value = headers.get(name) or [""]
    return str(value[0] if isinstance(value, list | tuple) else value)


class SlackListeners:
    def __init__(self, *, core: Core, client: AsyncWebClient) -> None:
        self.core = core
        self.client = client
        self.officials: Officials = core.officials
        self._tasks: set[asyncio.Task[None]] = set()

    # --- wiring ------------------------------------------------------------------
    def register(self, app: AsyncApp) -> None:
        app.use(self._dedupe)
        app.command("/gongnon")(self._on_slash)
        for action, kind in (
            (render.ACTION_STATUS, "status"),
            (render.ACTION_ASSIGN, "assign"),
            (render.ACTION_ANSWER, "answer"),
            (render.ACTION_THREAD, "thread"),
        ):
            app.action(action)(self._button(kind))
        app.view(render.VIEW_STATUS)(self._on_status_submit)
        app.view(render.VIEW_ASSIGN)(self._on_assign_submit)
        app.view(render.VIEW_ANSWER)(self._on_answer_submit)
        app.event("app_mention")(self._on_mention)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._guard(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception:
            log.exception("slack: work after ack failed")

    async def drain(self) -> None:
        """Wait for work started after acks (shutdown and tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- middleware --------------------------------------------------------------
    async def _dedupe(self, req: AsyncBoltRequest, body: dict[str, Any], next: Any) -> Any:
        """Runs after Bolt checked the signature and timestamp."""
        if body.get("type") == "event_callback":
            event_id = str(body.get("event_id") or "")
            if event_id and not await self.core.state.claim(f"slack:event:{event_id}",
                                                            ttl=EVENT_TTL):
                return BoltResponse(status=200, body="")  # a retry of what we already took
        else:
            signature = _first(req.headers, "x-slack-signature")
            if signature and not await self.core.state.claim(f"slack:sig:{signature}",
                                                              ttl=SIGNATURE_TTL):
                return BoltResponse(status=401, body="replayed request")
        return await next()

    # --- helpers -----------------------------------------------------------------
    def _locale(self, body: dict[str, Any]) -> str:
        user = body.get("user") if isinstance(body.get("user"), dict) else {}
        hint = body.get("locale") or (user or {}).get("locale")
        return normalise_locale(hint, self.core.settings.default_locale)

    async def _ephemeral(self, channel: str | None, user: str, message: dict[str, Any]) -> None:
        try:
            if channel:
                await self.client.chat_postEphemeral(
                    channel=channel, user=user, text=message["text"], blocks=message["blocks"]
                )
            else:  # a modal opened outside a channel: answer in the app's DM
                await self.client.chat_postMessage(
                    channel=user, text=message["text"], blocks=message["blocks"]
                )
        except SlackApiError as exc:
            log.warning("slack: ephemeral answer failed (%s)", exc.response.get("error"))

    # --- /gongnon ----------------------------------------------------------------
    async def _on_slash(self, ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        self.spawn(self._slash(body, respond))

    async def _slash(self, body: dict[str, Any], respond: Any) -> None:
        user = str(body.get("user_id", ""))
        locale = self._locale(body)
        request = parse_slash(str(body.get("text", "")))
        message = await self._slash_answer(user, request, locale)
        await respond(text=message["text"], blocks=message["blocks"], response_type="ephemeral")

    async def _slash_answer(self, user: str, req: SlashRequest, locale: str) -> dict[str, Any]:
        if req.problem and req.verb != "help":
            return render.notice(self._problem(req, locale))
        if req.verb == "help":
            message = render.help_message(locale)
            if req.problem:
                text = self._problem(req, locale) + "\n\n" + message["text"]
                message = render.notice(text)
            return message
        if not self.officials.is_official(user):
            outcome = await self.officials.refuse(user=user, action=f"slash_{req.verb}",
                                                  tracking=req.tracking)
            return render.outcome_message(outcome, locale)
        await self.officials.audit(user=user, action=f"slash_{req.verb}", tracking=req.tracking,
                                   outcome="ok", detail={"words": req.words[:100]})
        if req.verb == "search":
            found = await self.core.views.search(req.words, limit=10)
            return render.search_message(req.words, found, locale)
        if req.verb == "stats":
            return render.stats_message(await self.core.views.stats(), locale)
        if req.verb == "show":
            view = await self.core.views.proposal(req.tracking or "")
            if view is None:
                return render.outcome_message(
                    Outcome(ok=False, key="slack.error.not_found",
                            params={"tracking": req.tracking}), locale)
            return render.detail_message(view, locale, self.core.settings.tz)
        assert req.status is not None and req.tracking is not None
        outcome = await self.officials.change_status(
            user=user, tracking=req.tracking, status=req.status.value, reason=req.reason
        )
        return render.outcome_message(outcome, locale)

    @staticmethod
    def _problem(req: SlashRequest, locale: str) -> str:
        from core.domain.model import ProposalStatus

        choices = ", ".join(t(f"status.{s.value}", locale) for s in ProposalStatus
                            if s not in (ProposalStatus.RECEIVED, ProposalStatus.WITHDRAWN))
        return t(req.problem or "slack.error.generic", locale,
                 word=render.esc(render.clip(req.problem_word, 40)), choices=choices)

    # --- buttons -----------------------------------------------------------------
    def _button(self, kind: str) -> Any:
        async def listener(ack: Any, body: dict[str, Any]) -> None:
            await ack()
            self.spawn(self._open(kind, body))

        listener.__name__ = f"on_{kind}_button"
        return listener

    async def _open(self, kind: str, body: dict[str, Any]) -> None:
        user = str((body.get("user") or {}).get("id", ""))
        action = (body.get("actions") or [{}])[0]
        tracking = parse_tracking(str(action.get("value", ""))) or ""
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
            "channel_id")
        locale = self._locale(body)
        if not self.officials.is_official(user):
            outcome = await self.officials.refuse(user=user, action=f"open_{kind}",
                                                  tracking=tracking or None)
            await self._ephemeral(channel, user, render.outcome_message(outcome, locale))
            return
        if kind == "thread":
            outcome = await self.officials.open_thread(user=user, tracking=tracking)
            await self._ephemeral(channel, user, render.outcome_message(outcome, locale))
            return
        view = await self.core.views.proposal(tracking) if tracking else None
        if view is None:
            await self._ephemeral(channel, user, render.outcome_message(
                Outcome(ok=False, key="slack.error.not_found", params={"tracking": tracking}),
                locale))
            return
        if kind == "status" and not render.official_statuses(view.status):
            await self._ephemeral(channel, user, render.outcome_message(
                Outcome(ok=False, key="slack.error.no_transitions",
                        params={"tracking": tracking, "status": view.status.value}), locale))
            return
        origin = {"channel": channel or "", "locale": locale}
        modal = {"status": render.status_modal, "assign": render.assign_modal,
                 "answer": render.answer_modal}[kind](view, locale, origin)
        try:
            await self.client.views_open(trigger_id=str(body.get("trigger_id", "")), view=modal)
        except SlackApiError as exc:
            log.warning("slack: views.open failed (%s)", exc.response.get("error"))

    # --- modal submissions -------------------------------------------------------
    @staticmethod
    def _values(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
        values = (view.get("state") or {}).get("values") or {}
        return {block: (fields or {}).get("value") or {} for block, fields in values.items()}

    @staticmethod
    def _meta(view: dict[str, Any]) -> dict[str, str]:
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}

    def _submit_context(self, body: dict[str, Any], view: dict[str, Any]) -> tuple[
        str, dict[str, str], str, str
    ]:
        user = str((body.get("user") or {}).get("id", ""))
        meta = self._meta(view)
        locale = normalise_locale(meta.get("locale"), self.core.settings.default_locale)
        return user, meta, locale, f"view:{view.get('id', '')}"

    async def _finish(self, user: str, meta: dict[str, str], locale: str,
                      work: Coroutine[Any, Any, Outcome]) -> None:
        outcome = await work
        await self._ephemeral(meta.get("channel") or None, user,
                              render.outcome_message(outcome, locale))

    async def _on_status_submit(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        user, meta, locale, key = self._submit_context(body, view)
        values = self._values(view)
        status = ((values.get("status") or {}).get("selected_option") or {}).get("value")
        reason = str((values.get("reason") or {}).get("value") or "").strip()
        picked = (values.get("expected_date") or {}).get("selected_date")
        errors: dict[str, str] = {}
        if not status:
            errors["status"] = t("slack.error.field.status.unknown", locale)
        if not reason:
            errors["reason"] = t("slack.error.field.reason.too_short", locale)
        expected: date | None = None
        if picked:
            try:
                expected = date.fromisoformat(str(picked))
            except ValueError:
                expected = None
            today = self.core.clock.now().astimezone(self.core.settings.tz).date()
            if expected is None or expected < today:
                errors["expected_date"] = t("slack.error.field.expected_date.past", locale)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        self.spawn(self._finish(user, meta, locale, self.officials.change_status(
            user=user, tracking=meta.get("tracking", ""), status=str(status), reason=reason,
            expected_date=expected, request_key=key)))

    async def _on_assign_submit(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        user, meta, locale, key = self._submit_context(body, view)
        assignee = str((self._values(view).get("assignee") or {}).get("value") or "").strip()
        if not assignee:
            await ack(response_action="errors",
                      errors={"assignee": t("slack.error.field.assignee.too_short", locale)})
            return
        await ack()
        self.spawn(self._finish(user, meta, locale, self.officials.assign(
            user=user, tracking=meta.get("tracking", ""), assignee=assignee, request_key=key)))

    async def _on_answer_submit(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        user, meta, locale, key = self._submit_context(body, view)
        answer = str((self._values(view).get("answer") or {}).get("value") or "").strip()
        if not answer:
            await ack(response_action="errors",
                      errors={"answer": t("slack.error.field.feedback.too_short", locale)})
            return
        await ack()
        self.spawn(self._finish(user, meta, locale, self.officials.answer(
            user=user, tracking=meta.get("tracking", ""), body=answer, request_key=key)))

    # --- mentions ----------------------------------------------------------------
    async def _on_mention(self, event: dict[str, Any]) -> None:
        self.spawn(self._mention(event))

    async def _mention(self, event: dict[str, Any]) -> None:
        user = str(event.get("user", ""))
        channel = str(event.get("channel", ""))
        thread = str(event.get("thread_ts") or event.get("ts") or "")
        locale = self.core.settings.default_locale
        if not self.officials.is_official(user):
            outcome = await self.officials.refuse(user=user, action="mention", tracking=None)
            await self._ephemeral(channel, user, render.outcome_message(outcome, locale))
            return
        match = TRACKING_IN_TEXT.search(str(event.get("text", "")))
        view = await self.core.views.proposal(match.group(0)) if match else None
        if view is None:
            message = render.notice(t("slack.mention.help", locale))
        else:
            message = render.detail_message(view, locale, self.core.settings.tz)
        await self.client.chat_postMessage(channel=channel, thread_ts=thread or None,
                                           text=message["text"], blocks=message["blocks"])
