"""Golden JSON for the Telegram renderer, and what Telegram's HTML parser makes of it."""

from __future__ import annotations

import hashlib

import pytest

from bots.telegram.render import TOKEN_PREFIX, callback_data, render, split_text, utf16_len
from core.messages import Choice, Image, Reply, Request
from tests.fakes.telegram_api import parse_html

CHAT = 4242


def calls(reply: Reply, **kw: object) -> list[dict[str, object]]:
    rendered = render(reply, chat_id=CHAT, locale=str(kw.pop("locale", "ko")), **kw)  # type: ignore[arg-type]
    return [call.to_json() for call in rendered.calls]


def test_text_with_heading_and_choices() -> None:
    reply = Reply(
        text="제목을 적어 주세요.",
        heading="새 제안",
        choices=(Choice("nav:back", "이전"), Choice("nav:cancel", "취소")),
    )
    assert calls(reply) == [
        {
            "method": "sendMessage",
            "chat_id": CHAT,
            "text": "<b>새 제안</b>\n제목을 적어 주세요.",
            "parse_mode": "HTML",
            "reply_markup": {
                "inline_keyboard": [
                    [
                        {"text": "이전", "callback_data": "nav:back"},
                        {"text": "취소", "callback_data": "nav:cancel"},
                    ]
                ]
            },
        }
    ]


def test_long_labels_get_a_row_each() -> None:
    reply = Reply(
        text="메뉴",
        choices=(
            Choice("menu:submit", "새 제안 쓰기 (정책 아이디어)"),
            Choice("menu:mine", "내가 낸 제안 보기와 처리 상황"),
        ),
    )
    [call] = calls(reply)
    assert [len(row) for row in call["reply_markup"]["inline_keyboard"]] == [1, 1]  # type: ignore[index]


def test_edit_replaces_the_buttons_message() -> None:
    reply = Reply(
        text="지지해 주셔서 감사합니다.", edit=True, choices=(Choice("menu:main", "처음으로"),)
    )
    assert calls(reply, edit_ref="77") == [
        {
            "method": "editMessageText",
            "chat_id": CHAT,
            "message_id": 77,
            "text": "지지해 주셔서 감사합니다.",
            "parse_mode": "HTML",
            "reply_markup": {
                "inline_keyboard": [[{"text": "처음으로", "callback_data": "menu:main"}]]
            },
        }
    ]


def test_hostile_text_is_escaped_and_parses_to_itself() -> None:
    hostile = '<b>굵게</b> & <a href="http://evil">링크</a> *_[]()~`>#+-=|{}.! &amp; 😀'
    [call] = calls(Reply(text=hostile, heading="<i>제목</i>"))
    assert call["text"] == (
        "<b>&lt;i&gt;제목&lt;/i&gt;</b>\n"
        '&lt;b&gt;굵게&lt;/b&gt; &amp; &lt;a href="http://evil"&gt;링크&lt;/a&gt; '
        "*_[]()~`&gt;#+-=|{}.! &amp;amp; 😀"
    )
    plain, entities = parse_html(str(call["text"]))
    assert plain == "<i>제목</i>\n" + hostile
    assert entities == [{"type": "bold", "offset": 0, "length": len("<i>제목</i>")}]


def test_long_text_splits_at_lines_under_the_limit() -> None:
    line = "가나다라마바사 😀 " * 20  # 200 characters, 220 UTF-16 units
    text = "\n".join([line] * 60)  # 13,259 units: four messages
    out = calls(Reply(text=text, choices=(Choice("a", "A"),)))
    assert len(out) == 4
    plains = [parse_html(str(c["text"]))[0] for c in out]
    assert all(utf16_len(p) <= 4096 for p in plains)
    assert "\n".join(plains) == text  # nothing lost, cut at line ends
    assert [("reply_markup" in c) for c in out] == [False, False, False, True]


def test_split_without_line_breaks_never_cuts_a_character() -> None:
    text = "😀" * 5000  # 10,000 UTF-16 units
    pieces = split_text(text)
    assert [utf16_len(p) for p in pieces] == [4096, 4096, 1808]
    assert "".join(pieces) == text


def test_long_choice_ids_become_tokens() -> None:
    long_id = "sv:" + "x" * 80
    assert callback_data("p:P-2026-000001:support") == ("p:P-2026-000001:support", None)
    token, remembered = callback_data(long_id)
    assert token.startswith(TOKEN_PREFIX) and len(token.encode()) <= 64 and remembered == long_id
    rendered = render(
        Reply(text="고르세요", choices=(Choice(long_id, "하나"),)), chat_id=1, locale="ko"
    )
    assert rendered.tokens == {token: long_id}
    # a choice id that merely looks like a token is tokenised too, so it cannot be forged
    assert callback_data(TOKEN_PREFIX + "abc")[1] == TOKEN_PREFIX + "abc"


def test_photo_request_adds_a_hint_in_the_person_language() -> None:
    reply = Reply(
        text="Add a photo?", request=Request.PHOTO, choices=(Choice("photo:skip", "Skip"),)
    )
    [call] = calls(reply, locale="en")
    assert call["text"] == "Add a photo?\n\n📎 Tap the paperclip button to send a photo."


def test_location_request_uses_a_reply_keyboard() -> None:
    reply = Reply(
        text="위치를 알려 주세요.",
        request=Request.LOCATION,
        choices=(Choice("loc:skip", "건너뛰기"),),
        edit=True,
    )
    assert calls(reply, edit_ref="5") == [
        {
            "method": "sendMessage",  # reply keyboards cannot be edited in
            "chat_id": CHAT,
            "text": (
                "위치를 알려 주세요.\n\n아래 「현재 위치 보내기」 버튼을 누르면 위치를 보냅니다."
            ),
            "parse_mode": "HTML",
            "reply_markup": {
                "keyboard": [
                    [{"text": "📍 현재 위치 보내기", "request_location": True}],
                    [{"text": "건너뛰기"}],
                ],
                "resize_keyboard": True,
                "one_time_keyboard": True,
            },
        }
    ]


def test_png_goes_as_a_photo_with_caption() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    reply = Reply(text="투표 결과", image=Image(png=png, alt="막대 그래프"))
    assert calls(reply) == [
        {
            "method": "sendPhoto",
            "chat_id": CHAT,
            "photo": {"bytes": len(png), "sha256": hashlib.sha256(png).hexdigest()[:16]},
            "caption": "투표 결과",
            "parse_mode": "HTML",
        }
    ]


def test_long_caption_moves_the_text_to_messages() -> None:
    reply = Reply(
        text="가" * 2000,
        image=Image(ref="telegram:AgACabc", alt="사진"),
        choices=(Choice("a", "A"),),
    )
    out = calls(reply)
    assert [c["method"] for c in out] == ["sendPhoto", "sendMessage"]
    assert out[0]["photo"] == "AgACabc" and out[0]["caption"] == "사진"
    assert "reply_markup" in out[1]


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text_with_choices_still_says_something(text: str) -> None:
    [call] = calls(Reply(text=text, choices=(Choice("a", "A"),)))
    assert call["text"] == "아래에서 골라 주세요."
