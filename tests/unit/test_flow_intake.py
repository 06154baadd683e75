"""Proposal intake through the engine, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

from conversations.engine import Engine
from core.bootstrap import Core
from core.domain.model import AttachmentView, ProposalStatus
from core.messages import Request
from core.ports import ChannelCapabilities, ChannelLimits
from tests.support import ManualClock
from tests.support_chat import Chat

TITLE = "버스 정류장에 그늘막을 설치해 주세요"
BODY = "여름마다 버스를 기다리는 시민들이 햇볕에 너무 오래 노출됩니다. 그늘막이 필요합니다."


class _PhotoSender:
    """A registered sender whose channel takes photos and locations (like Telegram)."""

    channel = "tg"
    capabilities = ChannelCapabilities(photo_intake=True, location_intake=True, max_buttons=100)
    limits = ChannelLimits(per_second=30)

    async def send(self, address: str, reply: object, *, edit_ref: str | None = None) -> None:
        raise AssertionError("the engine never sends by itself")


async def _to_review(chat: Chat) -> None:
    await chat.command("start")
    await chat.press("제안하기")
    assert "제목" in chat.text
    await chat.send(TITLE)
    assert "내용" in chat.text
    await chat.send(BODY)
    assert "분야" in chat.text
    await chat.pick("cat:transport")
    assert "지역" in chat.text
    await chat.pick("reg:seoul")


async def test_full_intake_with_edit_and_confirm(core: Core) -> None:
    chat = Chat(Engine.from_core(core))
    await _to_review(chat)
    assert "보내시기 전에 확인해 주세요" in chat.text
    assert TITLE in chat.text and BODY in chat.text and "교통·주택" in chat.text
    assert "서울" in chat.text
    assert "rev:confirm" in chat.choice_ids
    assert "사진" not in chat.text  # the default channel takes no photos

    await chat.press("제목 고치기")
    assert "새 제목" in chat.text and TITLE in chat.text
    await chat.send("정류장 그늘막 설치 제안")
    assert "보내시기 전에 확인해 주세요" in chat.text  # straight back to the review
    assert "정류장 그늘막 설치 제안" in chat.text
    await chat.press("지역 고치기")
    await chat.press("건너뛰기")
    assert "지역: 없음" in chat.text

    await chat.press("제출하기")
    assert "접수되었습니다. 접수번호는 P-2026-000001입니다." in chat.text
    assert "무엇을 도와드릴까요?" in chat.text  # back at the menu
    view = await core.views.proposal("P-2026-000001")
    assert view is not None
    assert (view.title, view.body, view.category, view.region) == (
        "정류장 그늘막 설치 제안", BODY, "transport", None,
    )
    assert view.status is ProposalStatus.RECEIVED
    # A second press of the old confirm button does not submit twice.
    await chat.pick("rev:confirm")
    assert "쓸 수 없습니다" in chat.text
    assert (await core.views.proposal("P-2026-000002")) is None


async def test_photo_and_location_where_the_channel_takes_them(core: Core) -> None:
    core.register_sender(_PhotoSender())  # type: ignore[arg-type]
    chat = Chat(Engine.from_core(core), channel="tg")
    await _to_review(chat)
    assert chat.last[-1].request is Request.PHOTO
    await chat.send("사진 대신 글")
    assert "사진을 보내 주시거나" in chat.text
    await chat.photo("telegram:AgAD123")
    assert chat.last[-1].request is Request.LOCATION
    await chat.location(37.5665, 126.9780)
    assert "사진: 있음" in chat.text and "위치: 있음" in chat.text
    await chat.press("사진 고치기")
    await chat.press("사진 빼기")
    assert "사진: 없음" in chat.text
    await chat.press("제출하기")
    view = await core.views.proposal("P-2026-000001")
    assert view is not None
    assert view.attachments == (AttachmentView("location", None, 37.5665, 126.9780),)


async def test_every_validation_error_is_polite_and_keeps_the_step(core: Core) -> None:
    chat = Chat(Engine.from_core(core))
    await chat.command("start")
    await chat.press("제안하기")
    await chat.send("짧")
    assert chat.text == "제목은 4자 이상 100자 이하로 적어 주세요."
    assert chat.choice_ids == ["nav:back", "nav:cancel"]
    await chat.send("   ")
    assert chat.text == "제목은 4자 이상 100자 이하로 적어 주세요."
    await chat.send("가" * 101)
    assert "제목이 너무 깁니다(101자)" in chat.text
    await chat.send("\x00\x07제목\u200b")  # control characters are stripped first
    assert "제목은 4자 이상" in chat.text
    await chat.send(TITLE)
    await chat.send("너무 짧음")
    assert chat.text == "내용은 10자 이상 3000자 이하로 적어 주세요."
    await chat.send("가" * 10_000)
    assert "내용이 너무 깁니다(10000자)" in chat.text
    await chat.send(BODY)
    await chat.send("아무 분야")
    assert "분야는 아래에서 골라 주세요" in chat.text
    assert "cat:education" in chat.choice_ids or "nav:more" in chat.choice_ids
    await chat.pick("cat:nope")
    assert "분야는 아래에서 골라 주세요" in chat.text
    await chat.unsupported("sticker")
    assert "스티커" in chat.text
    await chat.photo("web:1")
    assert "사진을 받을 수 없습니다" in chat.text
    await chat.pick("cat:welfare")
    await chat.pick("reg:atlantis")
    assert "지역은 아래에서 골라 주세요" in chat.text
    await chat.pick("reg:skip")
    assert "보내시기 전에" in chat.text and "교육" not in chat.text


async def test_cancel_and_back_from_any_step(core: Core) -> None:
    chat = Chat(Engine.from_core(core))
    await chat.command("start")
    await chat.press("제안하기")
    await chat.send(TITLE)
    await chat.send("이전")
    assert "새 제목을 적어 주세요" in chat.text and TITLE in chat.text
    await chat.send(TITLE)
    await chat.send(BODY)
    await chat.pick("nav:back")
    assert "새 내용을 적어 주세요" in chat.text
    await chat.send(BODY)
    await chat.send("취소")
    assert "취소했습니다" in chat.text and "무엇을 도와드릴까요?" in chat.text
    await chat.command("new")
    await chat.send(TITLE)
    await chat.command("cancel")
    assert "취소했습니다" in chat.text
    await chat.command("new")
    await chat.send("CANCEL")
    assert "취소했습니다" in chat.text
    await chat.command("new")
    await chat.send("이전")  # back from the first step: the menu
    assert "무엇을 도와드릴까요?" in chat.text
    assert (await core.views.proposals_of(chat_person := await _person(core, chat)))[1] == 0
    assert chat_person > 0


async def _person(core: Core, chat: Chat) -> int:
    state = await core.state.get(_key(chat))
    assert state is not None
    return int(state["person_id"])


def _key(chat: Chat):  # type: ignore[no-untyped-def]
    from core.ports import StateKey

    return StateKey(chat.channel, chat.user_id)


async def test_choices_answer_to_numbers_and_labels(core: Core) -> None:
    chat = Chat(Engine.from_core(core))
    await chat.command("start")
    assert chat.labels[0] == "제안하기"
    await chat.send("1")
    assert "제안의 제목" in chat.text
    await chat.send(TITLE)
    await chat.send(BODY)
    await chat.send("  교육 ")  # a label, whitespace and case do not matter
    assert "지역" in chat.text
    await chat.send("건너뛰기")
    assert "보내시기 전에" in chat.text and "교육" in chat.text
    await chat.send("1")  # the first choice: submit
    assert "P-2026-000001" in chat.text


async def test_categories_page_where_buttons_are_few(core: Core) -> None:
    chat = Chat(Engine.from_core(core))
    await chat.command("new")
    await chat.send(TITLE)
    await chat.send(BODY)
    first = chat.choice_ids
    assert len(first) <= 10 and "nav:more" in first and first[-2:] == ["nav:back", "nav:cancel"]
    await chat.press("더 보기")
    assert chat.last[0].edit and "어느 분야의 제안인가요?" in chat.text  # the same question
    second = chat.choice_ids
    assert "cat:other" in second and "nav:cancel" in second
    assert set(first).isdisjoint(set(second) - {"nav:more", "nav:back", "nav:cancel"})
    await chat.send("기타")  # a label from any page works
    assert "지역" in chat.text


async def test_resume_after_a_long_pause(core: Core, clock: ManualClock) -> None:
    chat = Chat(Engine.from_core(core))
    await chat.command("new")
    await chat.send(TITLE)
    clock.advance(seconds=core.settings.conversation_resume_after_seconds + 1)
    await chat.send(BODY)
    assert chat.text == "작성 중인 제안이 있습니다. 이어서 쓰시겠어요?"
    assert chat.choice_ids == ["resume:continue", "resume:restart", "nav:cancel"]
    await chat.send("1")
    assert "제안 내용을 적어 주세요" in chat.text
    await chat.send(BODY)
    assert "분야" in chat.text
    clock.advance(hours=2)
    await chat.send("아무말")
    await chat.press("처음부터 다시")
    assert "제안의 제목" in chat.text
    state = await core.state.get(_key(chat))
    assert state is not None and state["data"] == {}
    # A short pause does not ask.
    clock.advance(seconds=60)
    await chat.send(TITLE)
    assert "제안 내용을 적어 주세요" in chat.text


async def test_unsupported_payloads_get_a_hint(core: Core) -> None:
    for n, payload in enumerate(["sticker", "voice", "document"]):
        chat = Chat(Engine.from_core(core), user_id=f"u{n}")
        await chat.unsupported(payload)  # first contact: the greeting
        assert "안녕하세요" in chat.text
        await chat.unsupported(payload)
        assert "스티커, 음성, 파일은 받을 수 없습니다" in chat.text
        assert "menu:submit" in chat.choice_ids


def test_reply_shape_is_frozen() -> None:
    from core.messages import Reply

    reply = Reply(text="x")
    assert replace(reply, text="y").text == "y"
