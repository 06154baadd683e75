"""Survey YAML validation: every error with its line, and quiet hours arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from bots.cli import main
from core.campaigns.loader import SurveyErrors, parse_survey
from core.campaigns.model import quiet_until
from tests.campaign_support import EXAMPLES

SEOUL = ZoneInfo("Asia/Seoul")
BROKEN = """\
id: Not A Slug
kind: poll
title:
  en: English only
anonymous: maybe
allow_change: true
results: sometimes
opens_at: 2026-12-10 09:00
closes_at: 2026-12-01 09:00
questions:
  - kind: choice
    text: 하나만 고르세요
    options: [가]
    colour: red
  - kind: scale
    text: ""
    options: [a, b]
  - id: q1
    kind: multi
    text: 여러 개
    max_choices: 9
    options: [가, 나, 가]
"""


def errors(text: str) -> list[tuple[int, str]]:
    with pytest.raises(SurveyErrors) as err:
        parse_survey(text, tz=SEOUL)
    return [(e.line, e.code) for e in err.value.errors]


def test_every_error_has_its_line() -> None:
    assert errors(BROKEN) == [
        (1, "bad_id"),
        (4, "korean_required"),
        (5, "not_bool"),
        (6, "anonymous_change"),
        (7, "not_one_of"),
        (9, "closes_before_opens"),
        (11, "poll_shape"),
        (13, "option_count"),
        (14, "unknown_key"),
        (16, "empty"),
        (17, "options_not_allowed"),
        (18, "duplicate_question"),
        (21, "max_choices"),
        (22, "duplicate_option"),
    ]


def test_messages_are_in_both_languages() -> None:
    with pytest.raises(SurveyErrors) as err:
        parse_survey(BROKEN, tz=SEOUL)
    ko = err.value.lines("ko", filename="s.yaml")
    en = err.value.lines("en", filename="s.yaml")
    assert ko[0].startswith("s.yaml:1: id:") and "id로 쓸 수 없습니다" in ko[0]
    assert "cannot be an id" in en[0] and len(ko) == len(en) == 14


def test_syntax_errors_and_empty_files() -> None:
    assert errors("id: a\ntitle: [unclosed\nquestions: []\n") == [(3, "syntax")]
    assert errors("") == [(1, "empty_file")]
    assert errors("- just\n- a list\n") == [(1, "not_mapping")]
    assert errors("id: a\n") == [(1, "missing"), (1, "missing"), (1, "missing")]


def test_anonymous_surveys_cannot_allow_changes() -> None:
    text = (EXAMPLES / "transport-survey.yaml").read_text(encoding="utf-8")
    assert errors(text.replace("allow_change: false", "allow_change: true")) == [
        (16, "anonymous_change")
    ]


def test_examples_are_valid_and_times_are_seoul() -> None:
    survey = parse_survey((EXAMPLES / "transport-survey.yaml").read_text(encoding="utf-8"),
                          tz=SEOUL)
    assert survey.kind == "survey" and len(survey.questions) == 3
    assert survey.closes_at == datetime(2027, 12, 31, 9, 0, tzinfo=UTC)  # 18:00 KST
    assert [q.required for q in survey.questions] == [True, True, False]
    poll = parse_survey((EXAMPLES / "library-hours-poll.yaml").read_text(encoding="utf-8"),
                        tz=SEOUL)
    assert poll.kind == "poll" and poll.questions[0].max_choices == 2 and not poll.anonymous


def test_cli_validate(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GONGNON_DATA_DIR", str(tmp_path))
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN, encoding="utf-8")
    good = EXAMPLES / "transport-survey.yaml"
    assert main(["survey", "validate", str(good)]) == 0
    assert "문제없음 (survey, 질문 3개)" in capsys.readouterr().out
    assert main(["survey", "validate", str(good), str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{bad}: 오류 14건"
    assert err[1].startswith(f"{bad}:1: ") and err[-1].startswith(f"{bad}:22: ")


@pytest.mark.parametrize(
    ("local", "until"),
    [
        ("2026-11-26 20:59", None),
        ("2026-11-26 21:00", "2026-11-27 08:00"),
        ("2026-11-26 23:30", "2026-11-27 08:00"),
        ("2026-11-27 02:00", "2026-11-27 08:00"),
        ("2026-11-27 08:00", None),
    ],
)
def test_quiet_hours_wrap_midnight(local: str, until: str | None) -> None:
    now = datetime.fromisoformat(local).replace(tzinfo=SEOUL).astimezone(UTC)
    got = quiet_until(now, start=time(21), end=time(8), tz=SEOUL)
    expected = datetime.fromisoformat(until).replace(tzinfo=SEOUL) if until else None
    assert got == expected
    assert quiet_until(now, start=None, end=None, tz=SEOUL) is None


def test_quiet_hours_within_one_day() -> None:
    now = datetime(2026, 11, 26, 13, 30, tzinfo=SEOUL)
    assert quiet_until(now, start=time(12), end=time(14), tz=SEOUL) == datetime(
        2026, 11, 26, 14, 0, tzinfo=SEOUL)
