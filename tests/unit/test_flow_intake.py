"""Proposal intake through the engine, on SQLite and PostgreSQL, with the web page's and
Telegram's channel capabilities: five turns, natural answers, no lost drafts, similar proposals."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bots.server import conversation_engine
from bots.telegram.sender import capabilities as telegram_capabilities
from bots.web.sender import WebSender
from core import commands as c
from core.bootstrap import Core
from core.domain.model import AttachmentView, ProposalStatus
from core.messages import Request
from core.ports import ChannelCapabilities, ChannelLimits
from tests.support import ManualClock
from tests.support_chat import Chat

TITLE = "버스 정류장에 그늘막을 설치해 주세요"
BODY = "여름마다 버스를 기다리는 시민들이 햇볕에 너무 오래 노출됩니다. 그늘막이 필요합니다."
CHANNELS = ["web", "telegram"]


class _Sender:
    """A registered sender with a real channel's capabilities (the engine never sends)."""

    limits = ChannelLimits(per_second=30)

    def __init__(self, channel: str, capabilities: ChannelCapabilities) -> None:
        self.channel = channel
        self.capabilities = capabilities

    async def send(self, address: str, reply: object, *, edit_ref: str | None = None) -> None:
        raise AssertionError("the engine never sends by itself")


def _chat(core: Core, channel: str = "web", user_id: str = "u1") -> Chat:
    caps = WebSender.capabilities if channel == "web" else telegram_capabilities()
    core.register_sender(_Sender(channel, caps))  # type: ignore[arg-type]
    return Chat(conversation_engine(core), channel=channel, user_id=user_id)


async def _to_review(chat: Chat) -> None:
    await chat.command("start")
    await chat.press("제안하기")
    assert "제목" in chat.text
    await chat.send(TITLE)
    assert "어떻게 바뀌면 좋을지" in chat.text
    await chat.send(BODY)
    assert "분야" in chat.text
    await chat.pick("cat:transport")
    assert "덧붙일 것" in chat.text
    await chat.send("서울")
    assert "지역: 서울" in chat.text
    await chat.press("다 됐어요")


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_proposal_in_five_turns(core: Core, channel: str) -> None:
    chat = _chat(core, channel)
    await chat.command("start")
    turns = 0
    for step in ("제안하기", f"{TITLE}\n{BODY}", "복지", "없어요", "제출하기"):
        await chat.send(step)
        turns += 1
    assert "제출했습니다. 접수번호는 P-2026-000001입니다." in chat.text, chat.text
    print(f"\nturns per proposal on {channel}: {turns}")
    assert turns <= 5
    view = await core.views.proposal("P-2026-000001")
    assert view is not None
    assert (view.title, view.body, view.category, view.region) == (TITLE, BODY, "welfare", None)
    # After submitting, "내 제안 보기" is right there (not only the menu).
    assert chat.choice_ids[:2] == ["p:P-2026-000001:show", "menu:mine"]
    await chat.press("내 제안 보기")
    assert TITLE in chat.text


async def test_full_intake_with_edit_and_confirm(core: Core) -> None:
    chat = _chat(core)
    await _to_review(chat)
    assert "이대로 제출할까요?" in chat.text
    assert TITLE in chat.text and BODY in chat.text and "교통·주택" in chat.text
    assert chat.choice_ids[0] == "rev:confirm" and chat.labels[0] == "제출하기"
    assert chat.last[-1].to_dict()["input"] == "choice"  # the page offers no text box here

    await chat.press("제목 고치기")
    assert "지금 제목: " + TITLE in chat.text and chat.labels[0] == "그대로 두기"
    await chat.send("정류장 그늘막 설치 제안")
    assert "이대로 제출할까요?" in chat.text  # straight back to the review
    await chat.press("덧붙인 것 고치기")
    await chat.press("지역 빼기")
    await chat.press("없음")
    assert "지역: 없음" in chat.text

    await chat.press("제출하기")
    assert "제출했습니다. 접수번호는 P-2026-000001입니다." in chat.text
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


@pytest.mark.parametrize("channel", CHANNELS)
async def test_extras_take_region_address_photo_and_location_in_one_step(
    core: Core, channel: str
) -> None:
    chat = _chat(core, channel)
    await chat.command("new")
    await chat.send(f"{TITLE}\n{BODY}")
    await chat.send("교통")
    assert chat.last[-1].request is Request.PHOTO_OR_LOCATION
    await chat.send("서울특별시 종로구 세종대로 209")  # a typed address
    assert "주소: 서울특별시 종로구 세종대로 209" in chat.text
    assert "지역: 서울" in chat.text  # read from the address
    await chat.photo(f"{channel}:AgAD123")
    await chat.location(37.5665, 126.9780)
    assert "사진: 있음" in chat.text and "위치: 있음" in chat.text
    await chat.press("사진 빼기")
    assert "사진: 있음" not in chat.text
    await chat.press("다 됐어요")
    assert "주소: 서울특별시 종로구 세종대로 209" in chat.text  # on the review
    await chat.press("제출하기")
    view = await core.views.proposal("P-2026-000001")
    assert view is not None
    assert view.region == "seoul"
    assert view.body.endswith("주소: 서울특별시 종로구 세종대로 209")
    assert view.attachments == (AttachmentView("location", None, 37.5665, 126.9780),)


async def test_natural_answers(core: Core) -> None:
    chat = _chat(core)
    await chat.command("new")
    await chat.send(TITLE)
    await chat.send(BODY)
    answers = (("복지보건", "복지·보건"), ("복지", "복지·보건"), ("환경 에너지", "환경·에너지"),
               ("education", "교육"))
    for typed, label in answers:
        await chat.send(typed)
        assert "덧붙일 것" in chat.text, typed
        await chat.pick("nav:back")
        assert f"지금 고른 것: {label}" in chat.text
    await chat.send("경")  # ambiguous: the closest few, not "잘 알아듣지 못했습니다"
    assert "이 가운데 어느 것인가요?" in chat.text
    assert chat.choice_ids[:2] == ["cat:economy", "cat:environment"]
    assert "all" in chat.choice_ids
    await chat.press("경제·일자리")
    for skip in ("없음", "없어요", "아니요", "건너뛰기", "다음에", "no", "SKIP"):
        await chat.send(skip)
        assert "이대로 제출할까요?" in chat.text, skip
        await chat.press("덧붙인 것 고치기")
    await chat.send("전국")
    assert "이대로 제출할까요?" in chat.text and "지역: 없음" in chat.text
    await chat.press("덧붙인 것 고치기")
    await chat.press("지역 고르기")
    await chat.send("충청")  # two regions start so
    assert chat.choice_ids[:2] == ["reg:chungbuk", "reg:chungnam"]
    await chat.send("충청남도")
    assert "지역: 충남" in chat.text
    await chat.press("다 됐어요")
    await chat.send("제출")
    assert "P-2026-000001" in chat.text


@pytest.mark.parametrize("channel", CHANNELS)
async def test_five_draft_loss_paths_lose_nothing(core: Core, channel: str) -> None:
    chat = _chat(core, channel)
    await chat.command("start")
    # 1. The header's "처음으로" (/menu), "메뉴", "도움말" keep the draft.
    for leave in (lambda: chat.command("menu"), lambda: chat.send("메뉴"),
                  lambda: chat.send("도움말"), lambda: chat.command("start", "p_P-2026-000009")):
        if "menu:submit" in chat.choice_ids:
            await chat.press("제안하기")
        else:
            await chat.command("new")
        if "이어서 쓰기" in chat.labels:
            await chat.press("이어서 쓰기")
            assert "지금 제목: " + TITLE in chat.text or "어떻게 바뀌면" in chat.text
        else:
            await chat.send(TITLE)
        await leave()
        await chat.command("new")
        assert "쓰시던 제안이 있습니다. 이어서 쓰시겠어요?" in chat.text
        assert TITLE in chat.text
        await chat.press("이어서 쓰기")
        assert "어떻게 바뀌면 좋을지" in chat.text  # the body is next: the title is kept
        await chat.command("menu")
    # 2. "이전" on the title step goes to the menu, and keeps the draft.
    await chat.command("new")
    await chat.press("이어서 쓰기")
    await chat.send(BODY)
    await chat.send("이전")
    await chat.send("이전")
    await chat.send("이전")
    assert "무엇을 도와드릴까요?" in chat.text
    await chat.press("제안하기")
    await chat.press("이어서 쓰기")
    assert "분야" in chat.text  # title and body both kept
    # 3. Cancel (typed, numbered or pressed, even on the review) asks first.
    await chat.send("복지")
    await chat.send("없음")
    assert "이대로 제출할까요?" in chat.text
    await chat.send(str(chat.choice_ids.index("nav:cancel") + 1))  # "8 취소" on the old page
    assert "쓰시던 제안을 지울까요?" in chat.text
    await chat.press("아니요, 계속 씁니다")
    assert "이대로 제출할까요?" in chat.text and TITLE in chat.text
    await chat.command("cancel")
    await chat.send("아니요")
    assert "이대로 제출할까요?" in chat.text
    # 4. "이전" shows what is there, with "그대로 두기".
    await chat.press("내용 고치기")
    assert "지금 내용: " + BODY in chat.text
    await chat.press("그대로 두기")
    assert "이대로 제출할까요?" in chat.text and BODY in chat.text
    # 5. A refused text is never dropped: the web page keeps it in its box, other channels
    #    quote it back.
    await chat.press("내용 고치기")
    long = "가" * 3200
    await chat.send(long)
    assert "내용이 너무 깁니다(3200자)" in chat.text
    refused = chat.last[-1].to_dict()
    assert refused.get("invalid") is True
    if channel == "web":
        assert long not in chat.text  # the page's box still holds it
    else:
        assert long in chat.text
    await chat.send("짧")
    assert chat.last[-1].to_dict().get("invalid") is True
    await chat.press("그대로 두기")
    # Only "네" deletes.
    await chat.send("취소")
    await chat.press("네, 지웁니다")
    assert "쓰시던 제안을 지웠습니다." in chat.text and "무엇을 도와드릴까요?" in chat.text
    await chat.press("제안하기")
    assert "쓰시던 제안" not in chat.text and "제안의 제목" in chat.text
    assert await core.views.proposal("P-2026-000001") is None


async def test_a_refused_title_in_a_one_message_proposal_keeps_the_text(core: Core) -> None:
    chat = _chat(core, "telegram")
    await chat.command("new")
    await chat.send("짧\n" + BODY)
    assert "제목은 4자 이상" in chat.text and BODY in chat.text  # quoted back
    await chat.send(TITLE + "\n너무 짧음")
    assert "내용은 10자 이상" in chat.text and "너무 짧음" in chat.text
    await chat.send(BODY)
    assert "분야" in chat.text


async def test_similar_proposals_before_submitting(core: Core) -> None:
    pid = await core.execute(c.EnsureIdentity(channel="web", external_id="x", address="a"))
    existing = await core.execute(
        c.SubmitProposal(person_id=pid, title="버스 정류장 그늘막 설치", body=BODY,
                         category="transport")
    )
    chat = _chat(core)
    await chat.command("new")
    await chat.send(f"{TITLE}\n{BODY}")
    assert "비슷한 제안이 이미 있습니다. 공감으로 힘을 보태시겠어요?" in chat.text
    assert existing in chat.text
    assert chat.choice_ids[:3] == [f"sim:support:{existing}", f"sim:follow:{existing}", "sim:new"]
    await chat.press("1번에 공감하기")
    assert "공감해 주셔서 고맙습니다. 지금 1명이 공감했습니다." in chat.text
    assert f"sim:support:{existing}" not in chat.choice_ids
    assert "sim:drop" in chat.choice_ids
    await chat.press("그래도 새로 제안하기")
    assert "분야" in chat.text
    view = await core.views.proposal(existing)
    assert view is not None and view.support_count == 1
    await chat.send("교통")
    await chat.send("없음")
    await chat.send("제출하기")
    assert "P-2026-000002" in chat.text
    # Or stop writing after supporting.
    await chat.command("new")
    await chat.send(f"{TITLE}\n{BODY}")
    await chat.press("1번 알림 받기")
    await chat.press("제안 그만 쓰기")
    assert "쓰시던 제안은 지웠습니다" in chat.text
    await chat.command("new")
    assert "쓰시던 제안" not in chat.text


async def test_every_validation_error_is_polite_and_keeps_the_step(core: Core) -> None:
    chat = _chat(core)
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
    assert "분야를 알아보지 못했습니다" in chat.text
    await chat.pick("cat:nope")
    assert "분야는 아래에서 골라 주세요" in chat.text
    await chat.unsupported("sticker")
    assert "스티커" in chat.text
    await chat.photo("web:1")
    assert "사진을 받을 수 없습니다" in chat.text
    await chat.pick("cat:welfare")
    await chat.send("가" * 201)
    assert "주소는 200자까지" in chat.text
    await chat.press("지역 고르기")
    await chat.pick("reg:atlantis")
    assert "지역은 아래에서 골라 주세요" in chat.text
    await chat.pick("reg:none")
    await chat.press("없음")
    assert "이대로 제출할까요?" in chat.text and "교육" not in chat.text


async def test_choices_answer_to_numbers_and_labels(core: Core) -> None:
    chat = _chat(core)
    await chat.command("start")
    assert chat.labels[0] == "제안하기"
    await chat.send("1")
    assert "제안의 제목" in chat.text
    await chat.send(TITLE)
    await chat.send(BODY)
    await chat.send("  교육 ")
    assert "덧붙일 것" in chat.text
    await chat.send("1")  # the first choice: nothing to add
    assert "이대로 제출할까요?" in chat.text and "교육" in chat.text
    await chat.send("1")  # the first choice: submit
    assert "P-2026-000001" in chat.text


async def test_categories_page_where_buttons_are_few(core: Core) -> None:
    chat = Chat(conversation_engine(core))  # no sender registered: 10 buttons at most
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
    assert "덧붙일 것" in chat.text


async def test_resume_after_a_long_pause(core: Core, clock: ManualClock) -> None:
    chat = _chat(core)
    await chat.command("new")
    await chat.send(TITLE)
    clock.advance(seconds=core.settings.conversation_resume_after_seconds + 1)
    await chat.send(BODY)
    assert chat.text == "작성 중인 제안이 있습니다. 이어서 쓰시겠어요?"
    assert chat.choice_ids == ["resume:continue", "resume:restart", "nav:cancel"]
    await chat.send("1")
    assert "어떻게 바뀌면 좋을지" in chat.text
    await chat.send(BODY)
    assert "분야" in chat.text
    clock.advance(hours=2)
    await chat.send("아무말")
    await chat.press("처음부터 다시")
    assert "제안의 제목" in chat.text
    state = await core.state.get(_key(chat))
    assert state is not None and state["data"] == {}
    assert not (state.get("drafts") or {}).get("intake")
    # A short pause does not ask.
    clock.advance(seconds=60)
    await chat.send(TITLE)
    assert "어떻게 바뀌면 좋을지" in chat.text


def _key(chat: Chat):  # type: ignore[no-untyped-def]
    from core.ports import StateKey

    return StateKey(chat.channel, chat.user_id)


async def test_unsupported_payloads_get_a_hint(core: Core) -> None:
    for n, payload in enumerate(["sticker", "voice", "document"]):
        chat = Chat(conversation_engine(core), user_id=f"u{n}")
        await chat.unsupported(payload)  # first contact: the greeting
        assert "안녕하세요" in chat.text
        await chat.unsupported(payload)
        assert "스티커, 음성, 파일은 받을 수 없습니다" in chat.text
        assert "menu:submit" in chat.choice_ids


def test_reply_shape_is_frozen() -> None:
    from core.messages import Reply

    reply = Reply(text="x")
    assert replace(reply, text="y").text == "y"
