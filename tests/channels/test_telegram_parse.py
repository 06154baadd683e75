"""Telegram updates (as the fake Bot API builds them, parsed by PTB) → typed inbound values."""

from __future__ import annotations

from typing import Any

import pytest
from telegram import Chat, Location, Update, Venue

from bots.telegram.parse import FromPerson, Ignored, Membership, parse_update
from conversations.incoming import Command, Photo, Picked, Text, Unsupported
from conversations.incoming import Location as Loc
from tests.fakes.telegram_api import FakeTelegram

USER = 5551234


@pytest.fixture
def tg() -> FakeTelegram:
    return FakeTelegram()  # only its update builders: no server


def parsed(data: dict[str, Any]) -> Any:
    return parse_update(Update.de_json(data, None), bot_username="gongnon_test_bot")


def payload(data: dict[str, Any]) -> Any:
    result = parsed(data)
    assert isinstance(result, FromPerson)
    assert result.inbound.channel == "telegram"
    assert result.inbound.user_id == str(USER) and result.inbound.address == str(USER)
    assert result.inbound.display_name is None  # we never keep Telegram names
    return result.inbound.payload


def test_text_and_locale(tg: FakeTelegram) -> None:
    result = parsed(tg.message_update(USER, text="버스 정류장에 그늘막을", language_code="en-US"))
    assert isinstance(result, FromPerson)
    assert result.inbound.payload == Text("버스 정류장에 그늘막을")
    assert result.inbound.locale == "en-US"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/start", Command("start", "")),
        ("/start p_P-2026-000001", Command("start", "p_P-2026-000001")),
        ("/start@gongnon_test_bot camp_spring", Command("start", "camp_spring")),
        ("/Mine", Command("mine", "")),
        ("/lookup  P-2026-42 ", Command("lookup", "P-2026-42")),
    ],
)
def test_commands_and_deep_links(tg: FakeTelegram, text: str, expected: Command) -> None:
    assert payload(tg.message_update(USER, text=text)) == expected


def test_command_after_emoji_uses_utf16_offsets(tg: FakeTelegram) -> None:
    # Not a command (does not start the message): plain text, kept whole.
    assert payload(tg.message_update(USER, text="😀 /start", entities=[])) == Text("😀 /start")


def test_photo_takes_the_largest_size(tg: FakeTelegram) -> None:
    data = tg.photo_update(USER, b"\xff\xd8photo", caption="정류장 사진")
    largest = data["message"]["photo"][-1]["file_id"]
    assert payload(data) == Photo(ref=f"telegram:{largest}", caption="정류장 사진")


def test_image_sent_as_a_file_is_a_photo(tg: FakeTelegram) -> None:
    data = tg.document_update(USER, mime_type="image/jpeg")
    file_id = data["message"]["document"]["file_id"]
    assert payload(data) == Photo(ref=f"telegram:{file_id}", caption=None)


def test_location_and_venue(tg: FakeTelegram) -> None:
    assert payload(tg.location_update(USER, 37.5665, 126.978)) == Loc(37.5665, 126.978)
    venue = Venue(Location(127.0, 37.5), "시청", "서울 중구")
    assert payload(tg.message_update(USER, venue=venue, location=Location(127.0, 37.5))) == Loc(
        37.5, 127.0
    )


@pytest.mark.parametrize(
    ("build", "kind"),
    [
        ("sticker_update", "sticker"),
        ("voice_update", "voice"),
        ("document_update", "document"),
    ],
)
def test_unsupported_media(tg: FakeTelegram, build: str, kind: str) -> None:
    assert payload(getattr(tg, build)(USER)) == Unsupported(kind)


def test_button_press(tg: FakeTelegram) -> None:
    tg.messages.clear()
    data = tg.callback_update(USER, "p:P-2026-000001:support", message_id=17)
    result = parsed(data)
    assert isinstance(result, FromPerson)
    assert result.inbound.payload == Picked("p:P-2026-000001:support")
    assert result.edit_ref == "17" and result.callback_id == data["callback_query"]["id"]


def test_edited_message_is_answered_politely_not_processed(tg: FakeTelegram) -> None:
    result = parsed(tg.message_update(USER, text="고친 글", edited=True))
    assert result == Ignored(reason="edited", notice_to=str(USER), locale="ko")


def test_group_messages_are_ignored_unless_addressed(tg: FakeTelegram) -> None:
    group = -100200300
    chatter = parsed(
        tg.message_update(USER, text="안녕하세요", chat_id=group, chat_type=Chat.SUPERGROUP)
    )
    assert isinstance(chatter, Ignored) and chatter.group and chatter.notice_to is None
    command = parsed(tg.message_update(USER, text="/start", chat_id=group, chat_type=Chat.GROUP))
    assert isinstance(command, Ignored) and command.notice_to == str(group)
    other_bot = parsed(
        tg.message_update(USER, text="/start@other_bot", chat_id=group, chat_type=Chat.GROUP)
    )
    assert isinstance(other_bot, Ignored) and other_bot.notice_to is None


def test_channel_posts_are_ignored(tg: FakeTelegram) -> None:
    assert parsed(tg.channel_post_update()) == Ignored(reason="channel")


@pytest.mark.parametrize("sender", [1087968824, 777000])
def test_service_accounts_are_not_people(tg: FakeTelegram, sender: int) -> None:
    result = parsed(tg.message_update(sender, text="/start"))
    assert result == Ignored(reason="not_a_person")


def test_bots_are_not_people(tg: FakeTelegram) -> None:
    assert parsed(tg.message_update(USER, text="hi", is_bot=True)) == Ignored(reason="not_a_person")


def test_block_and_unblock(tg: FakeTelegram) -> None:
    assert parsed(tg.my_chat_member_update(USER, status="kicked")) == Membership(
        address=str(USER), reachable=False
    )
    assert parsed(tg.my_chat_member_update(USER, status="member")) == Membership(
        address=str(USER), reachable=True
    )
