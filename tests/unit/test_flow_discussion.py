"""The discussion in the chat: read others' opinions, reply, 공감, withdraw, statement voting;
by buttons and by typed numbers, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

from bots.server import conversation_engine
from core import commands as c
from core.bootstrap import Core
from core.deliberation import commands as dc
from tests.support_chat import Chat
from tests.unit.test_proposals import person, submit

PHONE = "010-1234-5678"


async def _seeded(core: Core) -> tuple[str, list[int]]:
    author = await person(core, "author")
    tracking = await submit(core, author)
    others = [await person(core, f"o{i}") for i in range(3)]
    ids = []
    for pid, (stance, body) in zip(others, [("for", "정류장마다 꼭 필요합니다"),
                                            ("against", "예산을 먼저 따져 봐야 합니다"),
                                            ("other", "나무를 심는 방법도 있습니다")],
                                   strict=True):
        ids.append(await core.execute(c.AddFeedback(tracking=tracking, body=body,
                                                    person_id=pid, stance=stance)))
    await core.execute(dc.SupportOpinion(opinion_id=ids[1], person_id=others[0]))
    return tracking, ids


async def test_citizen_reads_replies_supports_and_withdraws(core: Core) -> None:
    tracking, ids = await _seeded(core)
    engine = conversation_engine(core)
    chat = Chat(engine, user_id="reader")
    await chat.send(tracking)
    assert "의견 3건 (찬성 1 · 반대 1 · 기타 1)" in chat.text
    await chat.pick(chat.choice_by_label("의견 보기").id)
    page = chat.text
    # most 공감 first; a pseudonym and a stance, never a name or a channel
    assert page.index("예산을 먼저") < page.index("정류장마다")
    assert re.search(r"1\. 시민 \d{4} · 반대 · 공감 1", page)
    assert "web" not in page and "author" not in page and "o0" not in page
    # typed numbers work like buttons: "1" opens the first opinion
    await chat.send("1")
    assert "예산을 먼저 따져 봐야 합니다" in chat.text
    await chat.pick(chat.choice_by_label("공감하기").id)
    assert "2명이 공감했습니다" in chat.text
    assert "공감하기" not in chat.labels  # once per person
    # an old 공감 button tapped again is answered politely, not applied twice
    await chat.pick(f"d:o:{ids[1]}:support")
    assert "이미 하신 일입니다" in chat.text
    await chat.pick(chat.choice_by_label("답글 쓰기").id)
    await chat.send("저도 같은 생각입니다")
    assert "답글을 남겼습니다" in chat.text
    assert re.search(r"↳ 시민 \d{4} \(나\): 저도 같은 생각입니다", chat.text)
    # the list shows the reply under its opinion
    await chat.pick(chat.choice_by_label("의견 목록으로").id)
    assert "↳ 시민" in chat.text and "답글 1" in chat.text
    # write my own opinion with a stance, then withdraw it
    await chat.pick(chat.choice_by_label("의견 쓰기").id)
    await chat.pick(chat.choice_by_label("반대").id)
    assert "'반대'(으)로 고르셨습니다" in chat.text
    await chat.send("그늘막보다 버스를 늘려야 합니다")
    assert "의견을 남겼습니다" in chat.text
    assert re.search(r"1\. 시민 \d{4} \(나\) · 반대", chat.text)  # newest first after writing
    await chat.send("1")
    await chat.pick(chat.choice_by_label("내 의견 지우기").id)
    await chat.pick(chat.choice_by_label("네, 지웁니다").id)
    assert "의견을 지웠습니다" in chat.text
    assert "그늘막보다" not in chat.text


async def test_cannot_support_own_opinion_and_english_labels(core: Core) -> None:
    tracking, ids = await _seeded(core)
    engine = conversation_engine(core)
    writer = Chat(engine, user_id="o0")  # a different identity: not the writer
    await writer.pick(f"d:o:{ids[0]}:open")
    assert "정류장마다" in writer.text
    english = Chat(engine, user_id="en-reader", locale="en")
    await english.pick(f"d:{tracking}:list")
    assert "Opinions: 3 (For 1 · Against 1 · Other 1)" in english.text
    assert re.search(r"Citizen \d{4} · Against · Likes: 1", english.text)


async def test_paging_sort_and_stale_ids(core: Core) -> None:
    author = await person(core, "author")
    tracking = await submit(core, author)
    for i in range(7):
        await core.execute(c.AddFeedback(tracking=tracking, body=f"의견 번호 {i}",
                                         person_id=await person(core, f"w{i}"), stance="for"))
    chat = Chat(conversation_engine(core), user_id="reader")
    await chat.pick(f"d:{tracking}:list")
    assert "1/2쪽" in chat.text
    await chat.pick(chat.choice_by_label("다음 쪽").id)
    assert "2/2쪽" in chat.text
    await chat.pick(chat.choice_by_label("최신 순").id)
    assert "의견 번호 6" in chat.text.split("\n\n")[1]
    await chat.pick("d:o:999999:open")
    assert "더 이상 볼 수 없습니다" in chat.text
    await chat.pick("d:P-2026-999999:list")
    assert "d:" not in chat.text


async def test_statement_voting_in_chat(core: Core) -> None:
    author = await person(core, "author")
    tracking = await submit(core, author)
    await core.execute(dc.OpenStatements(tracking=tracking, actor="slack:U1",
                                         statements=("그늘막이 필요하다", "예산이 아깝다")))
    chat = Chat(conversation_engine(core), user_id="voter")
    await chat.send(tracking)
    await chat.pick(chat.choice_by_label("쟁점 투표 하기").id)
    assert "그늘막이 필요하다" in chat.text
    first_agree = chat.choice_by_label("동의").id
    await chat.pick(first_agree)
    assert "예산이 아깝다" in chat.text
    # a repeated tap on the first statement's button never answers the second
    await chat.pick(first_agree)
    assert "이미 답하신 문장입니다" in chat.text
    await chat.pick(chat.choice_by_label("잘 모르겠음").id)
    assert "모두 답하셨습니다" in chat.text
    await chat.pick(chat.choice_by_label("내 문장 더하기").id)
    await chat.send(f"밤에는 조명도 필요하다 {PHONE}")
    assert "담당자가 확인한 뒤" in chat.text
    assert "전화번호" in chat.text  # told what was hidden
    listed = await core.discussions.statements(tracking)
    assert [(s.agree, s.disagree, s.passed) for s in listed[:2]] == [(1, 0, 0), (0, 0, 1)]
    assert listed[2].status.value == "pending"
    assert PHONE not in listed[2].text and "밤에는 조명도 필요하다" in listed[2].text
    assert PHONE not in chat.text


async def test_opinion_with_a_phone_number_is_masked_and_the_writer_told(core: Core) -> None:
    tracking, _ = await _seeded(core)
    chat = Chat(conversation_engine(core), user_id="writer")
    await chat.pick(f"d:{tracking}:write")
    await chat.pick("disc:stance:for")
    await chat.send(f"저에게 {PHONE}로 연락 주세요")
    assert "의견을 남겼습니다" in chat.text and "전화번호" in chat.text
    assert PHONE not in chat.text and "저에게" in chat.text
    reader = Chat(conversation_engine(core), user_id="reader")
    await reader.pick(f"d:{tracking}:list")
    await reader.pick(reader.choice_by_label("최신 순").id)
    assert "저에게" in reader.text and PHONE not in reader.text
