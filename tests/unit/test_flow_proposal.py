"""The proposal screen and its actions, my/followed lists and lookup, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select

from bots.server import conversation_engine
from core import commands as c
from core.adapters.orm import Feedback
from core.bootstrap import Core
from core.domain.model import ProposalStatus
from core.ports import StateKey
from tests.support_chat import Chat

BODY = "여름마다 버스를 기다리는 시민들이 햇볕에 너무 오래 노출됩니다. 그늘막이 필요합니다."


async def _author(core: Core, name: str = "author") -> int:
    return await core.execute(  # type: ignore[no-any-return]
        c.EnsureIdentity(channel="web", external_id=name, address=f"a-{name}")
    )


async def _submit(core: Core, person_id: int, title: str, region: str | None = None) -> str:
    return await core.execute(  # type: ignore[no-any-return]
        c.SubmitProposal(
            person_id=person_id, title=title, body=BODY, category="transport", region=region
        )
    )


async def _person_of(core: Core, chat: Chat) -> int:
    state = await core.state.get(StateKey(chat.channel, chat.user_id))
    assert state is not None
    return int(state["person_id"])


async def test_screen_shows_status_history_supports_and_answers(core: Core) -> None:
    tracking = await _submit(core, await _author(core), "정류장 그늘막 설치", region="busan")
    await core.execute(
        c.ChangeStatus(
            tracking=tracking, status=ProposalStatus.FORWARDED, reason="국토교통부로 이송",
            actor="slack:U1", source="slack", expected_date=date(2026, 12, 31),
        )
    )
    await core.execute(
        c.AnswerProposal(tracking=tracking, body="내년 예산에 반영하겠습니다.", actor="slack:U1")
    )
    chat = Chat(conversation_engine(core))
    await chat.send(tracking.lower())  # a typed tracking number opens it, any spelling
    text = chat.text
    assert "「정류장 그늘막 설치」 P-2026-000001" in text
    assert "상태: 담당 부처로 넘김" in text and "분야: 교통·주택" in text and "지역: 부산" in text
    assert "공감: 0명" in text and "사유: 국토교통부로 이송" in text
    assert "예정일: 2026-12-31" in text
    assert "담당 부처 답변" in text and "내년 예산에 반영하겠습니다." in text
    assert chat.choice_ids == [
        f"p:{tracking}:support", f"p:{tracking}:follow", f"p:{tracking}:feedback",
        f"p:{tracking}:history", "menu:main",
    ]
    await chat.press("진행 기록")
    lines = chat.text.splitlines()
    assert lines[0] == "「정류장 그늘막 설치」 P-2026-000001 진행 기록"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} 접수", lines[1])
    assert lines[2].endswith("담당 부처로 넘김 — 사유: 국토교통부로 이송 (예정일 2026-12-31)")
    await chat.press("제안으로 돌아가기")
    assert "상태: 담당 부처로 넘김" in chat.text


async def test_support_twice_is_polite_and_follow_toggles(core: Core) -> None:
    tracking = await _submit(core, await _author(core), "정류장 그늘막 설치")
    chat = Chat(conversation_engine(core))
    await chat.command("start", f"p_{tracking}")
    await chat.press("공감하기")
    assert "공감해 주셔서 고맙습니다. 지금 1명이 공감했습니다." in chat.text
    assert "공감: 1명" in chat.text  # the screen is refreshed
    assert f"p:{tracking}:support" not in chat.choice_ids
    assert f"p:{tracking}:unfollow" in chat.choice_ids  # supporting follows
    await chat.pick(f"p:{tracking}:support")  # an old button
    assert "이미 공감하신 제안입니다." in chat.text
    view = await core.views.proposal(tracking)
    assert view is not None and view.support_count == 1
    await chat.press("알림 그만 받기")
    assert "알림을 더 보내지 않겠습니다" in chat.text and f"p:{tracking}:follow" in chat.choice_ids
    await chat.press("알림 받기")
    assert "진행 상황을 알려 드리겠습니다" in chat.text
    person = await _person_of(core, chat)
    assert (await core.views.relation(person, tracking)).following


async def test_notification_buttons_work_from_an_unrelated_state(core: Core) -> None:
    tracking = await _submit(core, await _author(core), "정류장 그늘막 설치")
    chat = Chat(conversation_engine(core))
    await chat.command("start", f"p_{tracking}")
    await chat.press("알림 받기")
    await chat.press("처음으로")
    await chat.press("제안하기")
    await chat.send("도서관 운영 시간 연장")  # in the middle of an intake
    await chat.pick(f"p:{tracking}:unfollow")  # a status-change message's button
    assert "알림을 더 보내지 않겠습니다" in chat.text
    assert chat.choice_ids == [f"p:{tracking}:show"]
    person = await _person_of(core, chat)
    assert not (await core.views.relation(person, tracking)).following
    await chat.send(BODY)  # the intake goes on where it was (the body reads like that one)
    assert "비슷한 제안이 이미 있습니다" in chat.text and tracking in chat.text
    await chat.pick(f"p:{tracking}:show")
    assert "상태: 접수" in chat.text
    await chat.pick("p:P-2026-000777:show")  # gone or never existed
    assert "찾으시는 제안이 없습니다" in chat.text
    await chat.pick("p:garbage")
    assert "쓸 수 없습니다" in chat.text


async def test_feedback_is_saved_and_checked(core: Core) -> None:
    tracking = await _submit(core, await _author(core), "정류장 그늘막 설치")
    chat = Chat(conversation_engine(core))
    await chat.send(tracking)
    await chat.press("의견 남기기")
    assert f"제안 {tracking}에 남기실 의견을 적어 주세요. (1000자 이하)" in chat.text
    await chat.send("가" * 1001)
    assert "의견이 너무 깁니다(1001자)" in chat.text
    await chat.send("   ")
    assert "의견을 적어 주세요" in chat.text
    await chat.send("저도 꼭 필요하다고 생각합니다. <b>굵게</b> & 따옴표\"")
    assert "의견을 남겼습니다. 고맙습니다." in chat.text and "상태: 접수" in chat.text
    async with core.db.read() as s:
        bodies = (await s.execute(select(Feedback.body))).scalars().all()
    assert bodies == ["저도 꼭 필요하다고 생각합니다. <b>굵게</b> & 따옴표\""]
    await chat.pick(f"p:{tracking}:feedback")
    await chat.send("취소")
    assert "취소했습니다" in chat.text


async def test_my_proposals_page_and_open(core: Core) -> None:
    chat = Chat(conversation_engine(core))
    await chat.command("mine")
    assert "아직 보내신 제안이 없습니다" in chat.text and "menu:submit" in chat.choice_ids
    person = await _person_of(core, chat)
    numbers = [await _submit(core, person, f"제안 번호 {n:02d} 입니다") for n in range(1, 8)]
    await chat.command("mine")
    assert "1. 「제안 번호 07 입니다」 P-2026-000007 · 접수 · 공감 0" in chat.text
    assert f"p:{numbers[6]}:show" in chat.choice_ids and "list:next" in chat.choice_ids
    assert f"p:{numbers[1]}:show" not in chat.choice_ids
    await chat.press("다음 목록")
    assert chat.last[0].edit
    assert "6. 「제안 번호 02 입니다」" in chat.text and "list:prev" in chat.choice_ids
    assert "list:next" not in chat.choice_ids
    await chat.send("이전 목록")
    assert "1. 「제안 번호 07 입니다」" in chat.text
    await chat.send("2")  # the second listed proposal
    assert "「제안 번호 06 입니다」 P-2026-000006" in chat.text


async def test_followed_proposals_list(core: Core) -> None:
    other = await _author(core, "other")
    first = await _submit(core, other, "공원 화장실 개선")
    await _submit(core, other, "자전거 도로 확충")
    chat = Chat(conversation_engine(core))
    await chat.command("following")
    assert "알림을 받는 제안이 아직 없습니다" in chat.text
    await chat.pick(f"p:{first}:follow")
    await chat.command("following")
    assert "「공원 화장실 개선」" in chat.text and "자전거" not in chat.text
    await chat.press("공원 화장실 개선")
    assert f"p:{first}:unfollow" in chat.choice_ids


async def test_lookup_by_number_and_words(core: Core) -> None:
    author = await _author(core)
    tracking = await _submit(core, author, "공원 화장실 개선")
    await _submit(core, author, "자전거 도로 확충")
    chat = Chat(conversation_engine(core))
    await chat.command("start")
    await chat.press("제안 찾기")
    assert "접수번호" in chat.text
    await chat.send("P-2026-")
    assert "P-2026-000001처럼" in chat.text
    await chat.send("화장실")
    assert "1. 「공원 화장실 개선」" in chat.text and chat.choice_ids[0] == f"p:{tracking}:show"
    await chat.send("없는낱말")
    assert "찾은 제안이 없습니다" in chat.text
    await chat.send("P2026-2")
    assert "「자전거 도로 확충」 P-2026-000002" in chat.text
    await chat.send("P-2026-000404")
    assert "찾으시는 제안이 없습니다" in chat.text
