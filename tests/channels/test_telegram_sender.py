"""The Telegram Sender and the aiohttp BaseRequest against the fake Bot API (PTB, real HTTP)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from telegram import Bot
from telegram.error import TimedOut

from bots.telegram.request import AiohttpRequest
from bots.telegram.sender import TelegramSender
from core.adapters.state_memory import MemoryStateStore
from core.messages import Choice, Image, Reply
from core.ports import (
    ChannelLimits,
    PermanentSendError,
    RetryLater,
    TransientSendError,
    Unreachable,
)
from tests.fakes.telegram_api import FakeTelegram, TelegramLimits

CHAT = 987654


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


def make_bot(tg: FakeTelegram, **request: float) -> Bot:
    return Bot(
        tg.token,
        base_url=tg.api_base,
        base_file_url=tg.file_base,
        request=AiohttpRequest(**request),  # type: ignore[arg-type]
    )


@pytest.fixture
async def sender(tg: FakeTelegram) -> AsyncIterator[TelegramSender]:
    bot = make_bot(tg)
    async with bot:
        yield TelegramSender(
            bot=bot, state=MemoryStateStore(), limits=ChannelLimits(per_second=30.0)
        )


async def test_sends_and_edits(tg: FakeTelegram, sender: TelegramSender) -> None:
    ref = await sender.send(str(CHAT), Reply(text="안녕하세요", choices=(Choice("a", "네"),)))
    assert ref == str(tg.last(CHAT).message_id)
    edited = await sender.send(str(CHAT), Reply(text="감사합니다", edit=True), edit_ref=ref)
    assert edited == ref
    message = tg.last(CHAT)
    assert message.text == "감사합니다" and message.reply_markup is None and message.edits == 1
    # the same edit again: Telegram says "message is not modified", which is success
    assert await sender.send(str(CHAT), Reply(text="감사합니다", edit=True), edit_ref=ref) == ref
    assert len(tg.chat(CHAT)) == 1


async def test_edit_of_a_vanished_message_sends_a_new_one(
    tg: FakeTelegram, sender: TelegramSender
) -> None:
    ref = await sender.send(str(CHAT), Reply(text="새 메시지", edit=True), edit_ref="999")
    assert ref == str(tg.last(CHAT).message_id) and ref != "999"
    assert [c.method.lower() for c in tg.calls] == ["getme", "editmessagetext", "sendmessage"]


async def test_hostile_text_arrives_verbatim(tg: FakeTelegram, sender: TelegramSender) -> None:
    hostile = "<b>bold?</b> & <script>x</script> *bold* _it_ [a](http://x) \\ 😀 한국어 &lt;"
    await sender.send(str(CHAT), Reply(text=hostile, heading="<u>h</u>"))
    message = tg.last(CHAT)
    assert message.text == "<u>h</u>\n" + hostile
    assert message.entities == [{"type": "bold", "offset": 0, "length": 8}]


async def test_ten_thousand_characters_arrive_whole(
    tg: FakeTelegram, sender: TelegramSender
) -> None:
    text = "\n".join(f"{i:04d} 가나다라 😀 <&>" for i in range(700))  # 11,899 UTF-16 units
    await sender.send(str(CHAT), Reply(text=text))
    parts = [m.text for m in tg.chat(CHAT)]
    assert len(parts) == 3 and "\n".join(parts) == text


async def test_picture_goes_as_multipart(tg: FakeTelegram, sender: TelegramSender) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    await sender.send(str(CHAT), Reply(text="결과 <그래프>", image=Image(png=png, alt="그래프")))
    [call] = tg.calls_to("sendPhoto")
    assert call.files["photo"] == png
    assert tg.last(CHAT).text == "결과 <그래프>"


async def test_long_choice_ids_round_trip(tg: FakeTelegram, sender: TelegramSender) -> None:
    long_id = "survey:" + "q" * 70
    await sender.send(str(CHAT), Reply(text="설문", choices=(Choice(long_id, "참여"),)))
    data = tg.last(CHAT).reply_markup["inline_keyboard"][0][0]["callback_data"]  # type: ignore[index]
    assert len(data.encode()) <= 64
    assert await sender.resolve(data) == long_id
    assert await sender.resolve("menu:main") == "menu:main"


async def test_429_is_retry_later(tg: FakeTelegram, sender: TelegramSender) -> None:
    tg.inject_429(retry_after=7)
    with pytest.raises(RetryLater) as err:
        await sender.send(str(CHAT), Reply(text="x"))
    assert err.value.retry_after == 7
    assert tg.rejected_429 == 1 and tg.chat(CHAT) == []


@pytest.mark.parametrize(
    "description",
    ["Forbidden: bot was blocked by the user", "Forbidden: user is deactivated"],
)
async def test_403_is_unreachable(
    tg: FakeTelegram, sender: TelegramSender, description: str
) -> None:
    tg.inject_403(description=description)
    with pytest.raises(Unreachable):
        await sender.send(str(CHAT), Reply(text="x"))


async def test_chat_not_found_is_unreachable(tg: FakeTelegram, sender: TelegramSender) -> None:
    tg.fail_next(status=400, description="Bad Request: chat not found")
    with pytest.raises(Unreachable):
        await sender.send(str(CHAT), Reply(text="x"))


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_transient(tg: FakeTelegram, sender: TelegramSender, status: int) -> None:
    tg.inject_5xx(status=status)
    with pytest.raises(TransientSendError):
        await sender.send(str(CHAT), Reply(text="x"))
    assert await sender.send(str(CHAT), Reply(text="x"))  # and the next one goes through


async def test_other_400_is_permanent(tg: FakeTelegram, sender: TelegramSender) -> None:
    tg.fail_next(status=400, description="Bad Request: message is too long")
    with pytest.raises(PermanentSendError):
        await sender.send(str(CHAT), Reply(text="x"))


async def test_bad_address_is_permanent(sender: TelegramSender) -> None:
    with pytest.raises(PermanentSendError):
        await sender.send("web:abc", Reply(text="x"))


async def test_a_429_inside_a_split_message_waits_instead_of_repeating(
    tg: FakeTelegram, sender: TelegramSender
) -> None:
    text = "\n".join(["가" * 1000] * 5)  # two messages

    async def second_part_limited() -> None:
        while not tg.calls_to("sendMessage"):  # noqa: ASYNC110 - watching the fake's log
            await asyncio.sleep(0.001)
        tg.inject_429(retry_after=1)

    armed = asyncio.create_task(second_part_limited())
    await sender.send(str(CHAT), Reply(text=text))
    await armed
    assert len(tg.chat(CHAT)) == 2
    assert "\n".join(m.text for m in tg.chat(CHAT)) == text


async def test_timeout_is_transient() -> None:
    async with FakeTelegram(latency=0.5) as slow:
        bot = make_bot(slow, read_timeout=0.1)
        sender = TelegramSender(
            bot=bot, state=MemoryStateStore(), limits=ChannelLimits(per_second=30.0)
        )
        await bot.request.initialize()  # type: ignore[attr-defined]
        try:
            with pytest.raises(TransientSendError):
                await sender.send(str(CHAT), Reply(text="x"))
            with pytest.raises(TimedOut):
                await bot.get_me()
        finally:
            await bot.shutdown()
            await bot.request.shutdown()  # type: ignore[attr-defined]


async def test_request_downloads_files(tg: FakeTelegram) -> None:
    file_id = tg.add_file(b"\xff\xd8jpeg-bytes")
    async with make_bot(tg) as bot:
        file = await bot.get_file(file_id)
        assert bytes(await file.download_as_bytearray()) == b"\xff\xd8jpeg-bytes"


async def test_fake_enforces_rate_limits(tg: FakeTelegram) -> None:
    async with FakeTelegram(limits=TelegramLimits(global_per_s=3, per_chat_per_s=1)) as limited:
        async with make_bot(limited) as bot:
            sender = TelegramSender(
                bot=bot, state=MemoryStateStore(), limits=ChannelLimits(per_second=3.0)
            )
            await sender.send("1", Reply(text="a"))
            with pytest.raises(RetryLater) as err:
                await sender.send("1", Reply(text="b"))  # same chat within a second
            assert err.value.retry_after >= 1
            await sender.send("2", Reply(text="c"))
            await sender.send("3", Reply(text="d"))
            with pytest.raises(RetryLater):
                await sender.send("4", Reply(text="e"))  # a fourth in one second overall
        assert (limited.sent, limited.rejected_429, limited.violations) == (3, 2, 2)


async def test_a_document_goes_as_a_file_then_the_words(
    tg: FakeTelegram, sender: TelegramSender
) -> None:
    from core.messages import Document

    data = '{"proposals": [], "이름": "홍길동"}'.encode()
    reply = Reply(text="내 정보를 파일로 보내 드립니다.", choices=(Choice("menu:main", "메뉴"),),
                  document=Document(name="gongnon-mydata.json", mime="application/json", data=data))
    await sender.send(str(CHAT), reply)
    sent = sorted((m for m in tg.messages.values() if m.chat_id == CHAT),
                  key=lambda m: m.message_id)
    assert sent[0].document == data and sent[0].file_name == "gongnon-mydata.json"
    assert sent[1].text == "내 정보를 파일로 보내 드립니다." and sent[1].reply_markup is not None
