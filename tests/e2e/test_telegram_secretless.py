"""A Telegram webhook configured without a secret: ``serve`` makes one, registers it with
``setWebhook`` (the fake Bot API records it), and refuses every update without it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bots.server import CORE
from bots.telegram.routes import SECRET_HEADER, TELEGRAM, webhook_secret
from core.adapters.orm import Identity
from tests.conftest import make_settings
from tests.e2e.test_telegram import HOOK, serving
from tests.fakes.telegram_api import FakeTelegram


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


def _settings(tg: FakeTelegram, tmp_path: Path, database_url: str) -> Any:
    return make_settings(
        tmp_path,
        database_url=database_url,
        telegram_token=tg.token,
        telegram_api_url=tg.root,
        telegram_webhook_url=HOOK,
        telegram_chat_rate_per_second=50.0,
        run_workers=True,
    )


async def test_a_secret_is_made_registered_and_required(
    tg: FakeTelegram, tmp_path: Path, sqlite_url: str
) -> None:
    settings = _settings(tg, tmp_path, sqlite_url)
    assert settings.telegram_webhook_secret is None
    async with serving(settings) as app:
        secret = tg.webhook_secret
        assert tg.webhook_url == HOOK
        assert secret is not None and re.fullmatch(r"[0-9a-f]{64}", secret)
        assert secret == webhook_secret(settings)
        assert tg.token not in secret

        async def post(update: dict[str, Any], headers: dict[str, str]) -> int:
            response = await app.post("/telegram/webhook", json=update, headers=headers)
            await app.app[TELEGRAM].drain()
            return response.status

        # A forged "STOP" for a chosen chat: refused, nothing happens.
        forged = tg.message_update(4242, text="/stop")
        assert await post(forged, {}) == 401
        assert await post(forged, {SECRET_HEADER: "guessed-secret"}) == 403
        assert await post(forged, {SECRET_HEADER: secret[:-1]}) == 403
        assert tg.chat(4242) == []
        async with app.app[CORE].db.read() as session:
            assert (await session.execute(select(Identity))).first() is None
        # What Telegram sends (with the registered secret) is served.
        assert await post(tg.message_update(4242, text="/start"), {SECRET_HEADER: secret}) == 200
        assert tg.chat(4242)


async def test_every_process_derives_the_same_secret(
    tg: FakeTelegram, tmp_path: Path, sqlite_url: str
) -> None:
    settings = _settings(tg, tmp_path, sqlite_url)
    async with serving(settings):
        first = tg.webhook_secret
    async with serving(settings):  # a restart, or a second process behind the same URL
        assert tg.webhook_secret == first
    other = _settings(tg, tmp_path, sqlite_url).model_copy(
        update={"telegram_token": None}
    )
    assert webhook_secret(other) is None


async def test_a_configured_secret_wins(tg: FakeTelegram, tmp_path: Path, sqlite_url: str) -> None:
    settings = _settings(tg, tmp_path, sqlite_url).model_copy(
        update={"telegram_webhook_secret": SecretStr("Configured_secret-1")}
    )
    async with serving(settings):
        assert tg.webhook_secret == "Configured_secret-1"
