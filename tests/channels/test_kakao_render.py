"""Kakao's renderer, parser and Event API Sender against the fake Open Builder's rules."""

from __future__ import annotations

import json

import pytest

from bots.kakao.parse import BadPayload, parse_skill
from bots.kakao.render import callback_waiting, render, split_text
from bots.kakao.sender import KakaoSender, event_text
from bots.kakao.settings import KakaoSettings
from conversations.incoming import Command, Location, Picked, Text, Unsupported
from core.messages import Choice, Image, Reply
from core.ports import PermanentSendError, RetryLater, TransientSendError
from tests.fakes.kakao import FakeOpenBuilder, SkillResponseError, validate_response


def test_a_simple_answer_golden() -> None:
    out = render([Reply(text="안녕하세요", choices=(Choice("menu:submit", "제안하기"),))])
    assert out == {
        "version": "2.0",
        "template": {
            "outputs": [{"simpleText": {"text": "안녕하세요"}}],
            "quickReplies": [{"label": "제안하기", "messageText": "제안하기", "action": "message"}],
        },
    }
    validate_response(out)


def test_long_text_many_replies_and_pictures_stay_within_three_outputs() -> None:
    long = "가나다라 " * 700  # 3,500 characters
    replies = [
        Reply(text=long),
        Reply(text="차트입니다", image=Image(ref="https://cdn.example/chart.png", alt="막대 차트")),
        Reply(text="끝"),
    ]
    out = render(replies, image_url=lambda image: image.ref)
    validate_response(out)
    outputs = out["template"]["outputs"]
    assert len(outputs) == 3
    assert all(len(o["simpleText"]["text"]) <= 1000 for o in outputs if "simpleText" in o)
    assert split_text("a" * 2500) == ["a" * 1000, "a" * 1000, "a" * 500]


def test_a_card_where_it_fits_and_an_image_otherwise() -> None:
    image = Image(ref="https://cdn.example/c.png", alt="결과 차트")
    card = render([Reply(text="참여 2명", heading="설문 결과", image=image)],
                  image_url=lambda i: i.ref)
    assert card["template"]["outputs"][0]["basicCard"]["thumbnail"]["imageUrl"] == image.ref
    plain = render([Reply(text="결과", image=Image(png=b"x", alt="차트"))])  # no URL: alt text
    assert plain["template"]["outputs"] == [{"simpleText": {"text": "결과\n\n차트"}}]
    for out in (card, plain):
        validate_response(out)


def test_long_labels_and_many_choices_get_a_numbered_list() -> None:
    choices = tuple(Choice(f"c:{n}", f"아주 긴 선택지 이름 번호 {n}") for n in range(12))
    out = render([Reply(text="골라 주세요", choices=choices)], block_id="block-1")
    validate_response(out)
    quick = out["template"]["quickReplies"]
    assert len(quick) == 10 and all(len(q["label"]) <= 14 for q in quick)
    assert quick[0]["action"] == "block" and quick[0]["extra"] == {"c": "c:0"}
    text = out["template"]["outputs"][-1]["simpleText"]["text"]
    assert "1. 아주 긴 선택지 이름 번호 0" in text and "12. 아주 긴 선택지 이름 번호 11" in text


def test_markup_is_never_interpreted() -> None:
    hostile = "<b>x</b> *y* [a](http://evil) {{#webhook.x}} \u202e"
    out = render([Reply(text=hostile)])
    assert out["template"]["outputs"][0]["simpleText"]["text"] == hostile.strip()


def test_the_validator_refuses_what_kakao_refuses() -> None:
    bad = [
        {"version": "1.0", "template": {"outputs": [{"simpleText": {"text": "x"}}]}},
        {"version": "2.0", "template": {"outputs": [{"simpleText": {"text": "x"}}] * 4}},
        {"version": "2.0", "template": {"outputs": [{"simpleText": {"text": "x" * 1001}}]}},
        {"version": "2.0", "template": {"outputs": [{"simpleText": {"text": "x"}}],
                                        "quickReplies": [{"label": "x" * 15, "action": "message",
                                                          "messageText": "x"}]}},
        {"version": "2.0", "template": {"outputs": [{"simpleText": {"text": "x"}}],
                                        "quickReplies": [{"label": "x", "action": "message",
                                                          "messageText": "x"}] * 11}},
        {"version": "2.0", "template": {"outputs": [{"basicCard": {
            "title": "t", "description": "d", "thumbnail": {"imageUrl": "https://x/y.png"},
            "buttons": [{"label": "b", "action": "message", "messageText": "b"}] * 4}}]}},
    ]
    for data in bad:
        with pytest.raises(SkillResponseError):
            validate_response(data)
    validate_response(callback_waiting("잠시만요"))


def _payload(utterance: str = "", **action: object) -> dict[str, object]:
    return {
        "userRequest": {"utterance": utterance, "lang": "ko",
                        "user": {"id": "u1", "type": "botUserKey",
                                 "properties": {"plusfriendUserKey": "pf1", "isFriend": True}}},
        "bot": {"id": "b1"},
        "action": {"params": {}, "clientExtra": None, **action},
    }


def test_parse_every_kind_of_input() -> None:
    assert parse_skill(_payload("안녕")).inbound.payload == Text("안녕")
    assert parse_skill(_payload("/mine")).inbound.payload == Command("mine", "")
    assert parse_skill(_payload("x", clientExtra={"c": "menu:submit"})).inbound.payload == (
        Picked("menu:submit"))
    assert parse_skill(_payload("x", clientExtra={"start": "p_P-2026-000001"})).inbound.payload \
        == Command("start", "p_P-2026-000001")
    loc = parse_skill(_payload("x", params={"location": '{"latitude": 37.5, "longitude": 127}'}))
    assert loc.inbound.payload == Location(37.5, 127.0)
    assert parse_skill(_payload("37.5665, 126.978")).inbound.payload == Location(37.5665, 126.978)
    photo = parse_skill(_payload("x", params={
        "secureimage": json.dumps({"secureUrls": "List(https://talk.kakaocdn.net/a.jpg)"})}))
    assert photo.photo is not None and photo.photo.urls == ("https://talk.kakaocdn.net/a.jpg",)
    skill = parse_skill(_payload("\x00\x01"))
    assert skill.inbound.payload == Unsupported("empty")
    assert skill.plusfriend_user_key == "pf1" and skill.is_friend is True
    assert parse_skill(_payload("가" * 6000)).too_long


def test_parse_refuses_what_is_no_skill_payload() -> None:
    for data in ([], {}, {"userRequest": {"user": {"id": ""}}},
                 {"userRequest": {"user": {"id": "a b"}}},
                 {"userRequest": {"user": {"id": "x" * 200}}},
                 {"userRequest": {"user": {"id": "u"}, "utterance": 5}}):
        with pytest.raises(BadPayload):
            parse_skill(data)
    hostile = _payload("x", clientExtra={"c": "한글 아이디"}, params={"location": "[1e999, 2]"})
    assert parse_skill(hostile).inbound.payload == Text("x")


def test_event_text_numbers_the_choices() -> None:
    text = event_text(Reply(text="설문", choices=(Choice("sv:1:start", "참여하기"),)))
    assert text == "설문\n\n1. 참여하기"


async def test_event_api_sender_maps_errors() -> None:
    async with FakeOpenBuilder() as kakao:
        settings = KakaoSettings(_env_file=None, skill_secret="s" * 16, bot_id=kakao.bot_id,
                                 event_api_key=kakao.event_key, event_api_url=kakao.url)
        sender = KakaoSender(settings=settings)
        try:
            assert sender.capabilities.push and sender.capabilities.push_cost == 15.0
            ref = await sender.send("user-1", Reply(text="알림"))
            assert ref and ref.startswith("kakao:task-")
            assert kakao.events[0].data == {"text": "알림"}
            for status, error in ((429, RetryLater), (503, TransientSendError),
                                  (400, PermanentSendError)):
                kakao.fail_next = [status]
                with pytest.raises(error):
                    await sender.send("user-1", Reply(text="알림"))
            wrong = KakaoSender(settings=settings.model_copy(update={"event_api_key": None}))
            assert not wrong.capabilities.push
            with pytest.raises(PermanentSendError):
                await wrong.send("user-1", Reply(text="알림"))
        finally:
            await sender.close()


async def test_the_fake_callback_is_one_use_and_one_minute() -> None:
    from aiohttp import ClientSession

    body = render([Reply(text="답")])
    async with FakeOpenBuilder(callback_ttl=0.2) as kakao, ClientSession() as http:
        url = kakao.new_callback()
        async with http.post(url, json=body) as first:
            assert first.status == 200
        async with http.post(url, json=body) as second:
            assert second.status == 400
        late = kakao.new_callback()
        import asyncio

        await asyncio.sleep(0.3)
        async with http.post(late, json=body) as resp:
            assert resp.status == 400
        bad = kakao.new_callback()
        async with http.post(bad, json={"version": "2.0", "template": {"outputs": []}}) as resp:
            assert resp.status == 400
        assert kakao.refused[:2] == ["callback used twice", "callback expired"]
