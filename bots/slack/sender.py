"""The officials' board on Slack: posts and edits triage cards, thread replies, alerts and
digests through the Web API, mapping Slack's errors onto the core's send errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack import render
from core.config import Settings
from core.domain.model import FeedbackView, ProposalView
from core.officials.model import Alert, Digest, DiscussionAlert, PostRef
from core.ports import PermanentSendError, RetryLater, TransientSendError

__all__ = ["SlackBoard", "build_client", "send_errors"]

TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"}
)


def build_client(
    settings: Settings, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    """The one Web API client: connection errors and 429s (after ``Retry-After``) retried."""
    assert settings.slack_bot_token is not None
    base_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else (
        settings.slack_api_url + "/"
    )
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=base_url,
        session=session,
        timeout=30,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
        ],
    )


def _retry_after(headers: Any) -> float:
    for key, value in dict(headers or {}).items():
        if str(key).lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) else value
            try:
                return max(float(raw), 0.0)
            except (TypeError, ValueError):
                return 1.0
    return 1.0


def send_errors(exc: BaseException) -> Exception:
    """Slack's failure as the core's send error (raise the result ``from exc``)."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = getattr(response, "status_code", 0)
        error = str(response.get("error", "")) if hasattr(response, "get") else ""
        if status == 429 or error == "ratelimited":
            return RetryLater(_retry_after(getattr(response, "headers", {})), f"slack 429 {error}")
        if status >= 500 or error in TRANSIENT_ERRORS:
            return TransientSendError(f"slack {status} {error}")
        return PermanentSendError(f"slack {status} {error}")
    if isinstance(exc, SlackRequestError | aiohttp.ClientError | asyncio.TimeoutError | OSError):
        return TransientSendError(f"slack request failed: {type(exc).__name__}")
    return TransientSendError(f"slack: {type(exc).__name__}")


class _Pacer:
    """Keeps posts to one channel at or under ``per_second`` (Slack: about 1 per second)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def wait(self, channel: str) -> None:
        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:
            now = time.monotonic()
            due = self._next.get(channel, now)
            if due > now:
                await asyncio.sleep(due - now)
            self._next[channel] = max(due, now) + self.interval


class SlackBoard:
    """Implements ``core.officials.model.Board`` on the Slack Web API."""

    def __init__(self, *, client: AsyncWebClient, settings: Settings) -> None:
        self.client = client
        self.locale = settings.default_locale
        self.tz = settings.tz
        self._pacer = _Pacer(settings.slack_channel_rate_per_second)

    async def _call(self, channel: str, call: Callable[[], Awaitable[Any]]) -> Any:
        await self._pacer.wait(channel)
        try:
            return await call()
        except (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError,
                OSError) as exc:
            raise send_errors(exc) from exc

    async def _post(self, channel: str, message: dict[str, Any], **extra: Any) -> str:
        response = await self._call(
            channel,
            lambda: self.client.chat_postMessage(
                channel=channel, text=message["text"], blocks=message["blocks"],
                unfurl_links=False, unfurl_media=False, **extra,
            ),
        )
        return str(response["ts"])

    async def post_card(self, channel: str, proposal: ProposalView) -> PostRef:
        message = render.triage_message(proposal, self.locale, self.tz)
        ts = await self._post(channel, message)
        return PostRef(channel=channel, ts=ts)

    async def update_card(self, ref: PostRef, proposal: ProposalView) -> None:
        message = render.triage_message(proposal, self.locale, self.tz)
        await self._call(
            ref.channel,
            lambda: self.client.chat_update(
                channel=ref.channel, ts=ref.ts, text=message["text"], blocks=message["blocks"]
            ),
        )

    async def post_reply(self, ref: PostRef, proposal: ProposalView,
                         feedback: FeedbackView) -> None:
        message = render.thread_reply(proposal, feedback, self.locale, self.tz)
        await self._post(ref.channel, message, thread_ts=ref.ts)

    async def post_alert(self, channel: str, alert: Alert) -> None:
        await self._post(channel, render.alert_message(alert, self.locale))

    async def post_discussion_alert(self, channel: str, alert: DiscussionAlert) -> None:
        await self._post(channel, render.discussion_alert_message(alert, self.locale))

    async def post_digest(
        self,
        channel: str,
        digest: Digest,
        *,
        chart: bytes | None,
        done_parts: int,
        on_part: Callable[[int], Awaitable[None]],
    ) -> None:
        messages = render.digest_messages(digest, self.locale)
        for index in range(done_parts, len(messages)):
            await self._post(channel, messages[index])
            await on_part(index + 1)
        if chart is not None and done_parts <= len(messages):
            title, alt = render.chart_texts(digest, self.locale)
            filename = f"gongnon-{digest.period}-{digest.start.isoformat()}.png"
            await self._call(
                channel,
                lambda: self.client.files_upload_v2(
                    channel=channel, file=chart, filename=filename, title=title, alt_txt=alt
                ),
            )
            await on_part(len(messages) + 1)
