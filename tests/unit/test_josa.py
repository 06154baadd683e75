"""Korean particles agree with the word before them; empty quiet hours turn them off; a survey
that has already closed is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.campaigns.loader import SurveyErrors, parse_survey
from core.config import load_settings
from core.i18n import t
from core.i18n.josa import particle


@pytest.mark.parametrize(("word", "pair", "expected"), [
    ("q1", "이/가", "이"),  # 일
    ("q2", "이/가", "가"),  # 이
    ("선택지", "이/가", "가"),
    ("질문", "이/가", "이"),
    ("서울", "으로/로", "로"),  # ㄹ받침
    ("부산", "으로/로", "으로"),
    ("바다", "으로/로", "로"),
    ("mode", "을/를", "를"),
    ("item", "을/를", "을"),  # 아이템
    ("title", "이/가", "이"),  # 타이틀
    ("closes_at", "이/가", "이"),  # 앳
    ("email", "으로/로", "로"),  # 이메일
    ("key", "이/가", "가"),
    ("id", "이/가", "가"),
    ("m", "이/가", "이"),  # 엠
    ("'교통'", "은/는", "은"),  # quotes are skipped
    ("survey-10", "은/는", "은"),  # 영
    ("🙂", "이/가", "이(가)"),
    ("", "을/를", "을(를)"),
])
def test_particles(word: str, pair: str, expected: str) -> None:
    assert particle(word, pair) == expected


def test_catalog_writes_the_right_particle() -> None:
    assert t("campaign.yaml.duplicate_key", "ko", key="q1") == "키 'q1'이 두 번 나옵니다."
    assert t("campaign.yaml.duplicate_key", "ko", key="mode") == "키 'mode'가 두 번 나옵니다."
    assert t("campaign.yaml.missing", "ko", key="title") == "'title'이 없습니다."
    assert "'closes_at'이 없습니다." == t("campaign.yaml.missing", "ko", key="closes_at")


def test_empty_quiet_hours_turn_them_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GONGNON_QUIET_HOURS_START", "")
    monkeypatch.setenv("GONGNON_QUIET_HOURS_END", "")
    settings = load_settings(_env_file=None, data_dir=tmp_path)
    assert settings.quiet_hours_start is None and settings.quiet_hours_end is None


SURVEY = """\
id: past
title:
  ko: 지난 설문
closes_at: 2020-01-01 09:00
questions:
  - id: q1
    kind: choice
    text:
      ko: 좋습니까?
    options:
      - ko: 네
      - ko: 아니요
"""


def test_a_survey_that_already_closed_is_refused() -> None:
    seoul = ZoneInfo("Asia/Seoul")
    parse_survey(SURVEY, tz=seoul)  # read back without a clock: fine
    with pytest.raises(SurveyErrors) as caught:
        parse_survey(SURVEY, tz=seoul, now=datetime(2026, 12, 1, tzinfo=UTC))
    [line] = caught.value.lines("ko")
    assert line.startswith("4: closes_at(2020-01-01 09:00)이 이미 지났습니다")
