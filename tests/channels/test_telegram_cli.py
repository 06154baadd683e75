"""``gongnon telegram …`` against the fake Bot API (run in a thread: the CLI owns its own loop)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bots.cli import _parser
from tests.conftest import make_settings
from tests.fakes.telegram_api import FakeTelegram

SECRET = "cli-Secret_1"  # noqa: S105 - test value


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    loop = asyncio.new_event_loop()
    fake = FakeTelegram()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(fake.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def run_cli(tmp_path: Path, tg: FakeTelegram, *argv: str, **settings: object) -> int:
    values: dict[str, object] = {
        "telegram_token": tg.token,
        "telegram_api_url": tg.root,
        "telegram_webhook_secret": SECRET,
    }
    values.update(settings)
    args = _parser().parse_args(["telegram", *argv])
    return int(args.handler(make_settings(tmp_path, **values), args))


def test_set_webhook_info_and_delete(
    tmp_path: Path, tg: FakeTelegram, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "https://gongnon.example/telegram/webhook"
    assert run_cli(tmp_path, tg, "set-webhook", "--url", url) == 0
    assert tg.webhook_url == url and tg.webhook_secret == SECRET
    assert tg.allowed_updates == ["message", "edited_message", "callback_query", "my_chat_member"]
    assert run_cli(tmp_path, tg, "info") == 0
    out = capsys.readouterr().out
    assert "@gongnon_test_bot" in out and url in out and SECRET not in out
    assert run_cli(tmp_path, tg, "delete-webhook") == 0
    assert tg.webhook_url == ""


def test_set_webhook_defaults_to_the_public_url(tmp_path: Path, tg: FakeTelegram) -> None:
    assert run_cli(tmp_path, tg, "set-webhook", public_url="https://x.example/") == 0
    assert tg.webhook_url == "https://x.example/telegram/webhook"


def test_set_webhook_without_any_url_is_a_usage_error(tmp_path: Path, tg: FakeTelegram) -> None:
    assert run_cli(tmp_path, tg, "set-webhook") == 2


def test_set_commands_in_korean_and_english(tmp_path: Path, tg: FakeTelegram) -> None:
    assert run_cli(tmp_path, tg, "set-commands") == 0
    korean = {c["command"]: c["description"] for c in tg.commands[""]}
    english = {c["command"]: c["description"] for c in tg.commands["en"]}
    assert korean["new"] == "새 제안 쓰기" and english["new"] == "Write a new proposal"
    assert korean.keys() == english.keys()


def test_a_rejected_token_is_never_printed(
    tmp_path: Path, tg: FakeTelegram, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = "999:WRONG-token"
    assert run_cli(tmp_path, tg, "info", telegram_token=wrong) == 1
    captured = capsys.readouterr()
    assert "rejected" in captured.err and wrong not in captured.err + captured.out


def test_without_a_token(tmp_path: Path, tg: FakeTelegram) -> None:
    assert run_cli(tmp_path, tg, "info", telegram_token=None) == 2
