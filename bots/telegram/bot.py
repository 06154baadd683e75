"""Building python-telegram-bot objects from settings: the Application, the Bot, our commands."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Bot, BotCommand
from telegram.ext import Application, ApplicationBuilder

from bots.telegram.request import AiohttpRequest
from conversations.commands import menu_commands
from core.config import Settings
from core.i18n import t
from core.ports import AddressRate, ChannelLimits

__all__ = [
    "ALLOWED_UPDATES",
    "COMMANDS",
    "TelegramLimits",
    "WEBHOOK_PATH",
    "build_application",
    "build_bot",
    "channel_limits",
    "commands_for",
    "set_commands",
]

WEBHOOK_PATH = "/telegram/webhook"
# The update types Gongnon acts on; everything else is not even sent to us.
ALLOWED_UPDATES = ("message", "edited_message", "callback_query", "my_chat_member")
# Commands shown in Telegram's menu: the engine's one registry (conversations.commands).
COMMANDS = menu_commands()


def _token(settings: Settings) -> str:
    if settings.telegram_token is None:
        raise RuntimeError("GONGNON_TELEGRAM_TOKEN is not set")
    return settings.telegram_token.get_secret_value()


def _urls(settings: Settings) -> tuple[str, str]:
    root = settings.telegram_api_url.rstrip("/")
    return f"{root}/bot", f"{root}/file/bot"


def build_application(settings: Settings) -> Application:  # type: ignore[type-arg]
    """PTB's Application for a shared aiohttp server: no Updater (our routes and poller feed it),
    requests through aiohttp."""
    base_url, base_file_url = _urls(settings)
    return (
        ApplicationBuilder()
        .token(_token(settings))
        .base_url(base_url)
        .base_file_url(base_file_url)
        .request(AiohttpRequest(connection_limit=256))
        .get_updates_request(AiohttpRequest(connection_limit=2))
        .updater(None)
        .build()
    )


def build_bot(settings: Settings) -> Bot:
    """A bare Bot for the command line."""
    base_url, base_file_url = _urls(settings)
    return Bot(
        _token(settings),
        base_url=base_url,
        base_file_url=base_file_url,
        request=AiohttpRequest(connection_limit=4),
    )


@dataclass(frozen=True, kw_only=True)
class TelegramLimits(ChannelLimits):
    """Telegram's limits: ~1 message a second per chat, and a group (a negative chat id) at
    most ``per_group_per_minute`` besides: a group is a chat too."""

    per_group_per_minute: float | None = None

    def for_address(self, address: str) -> tuple[AddressRate, ...]:
        rates = ChannelLimits.for_address(self, address)
        if self.per_group_per_minute is not None and address.startswith("-"):
            rates = (AddressRate(scope="g", count=self.per_group_per_minute, period=60.0), *rates)
        return rates


def channel_limits(settings: Settings) -> TelegramLimits:
    return TelegramLimits(
        per_second=settings.telegram_rate_per_second,
        per_address_per_second=settings.telegram_chat_rate_per_second,
        per_group_per_minute=settings.telegram_group_rate_per_minute,
    )


def commands_for(locale: str) -> list[BotCommand]:
    return [BotCommand(name, t(f"telegram.commands.{name}", locale)) for name in COMMANDS]


async def set_commands(bot: Bot, default_locale: str = "ko") -> None:
    """The command menu: the default locale for everyone, English for ``language_code`` en."""
    await bot.set_my_commands(commands_for(default_locale))
    for locale in ("ko", "en"):
        if locale != default_locale:
            await bot.set_my_commands(commands_for(locale), language_code=locale)
