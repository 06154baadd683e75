"""Poll and survey definitions, answer rules, segments and quiet hours: pure domain values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from core.domain.errors import InvalidField
from core.privacy.pii import mask

__all__ = [
    "ANSWER_TEXT_MAX",
    "SCALE",
    "SLUG_RE",
    "Localized",
    "Option",
    "Question",
    "QuestionKind",
    "Segment",
    "SurveyDef",
    "SurveyInfo",
    "check_answer",
    "definition_from_row",
    "quiet_until",
]

ANSWER_TEXT_MAX = 1000
SCALE = (1, 2, 3, 4, 5)
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class QuestionKind(StrEnum):
    CHOICE = "choice"  # one option
    MULTI = "multi"  # several options
    SCALE = "scale"  # 1–5
    TEXT = "text"  # free text


@dataclass(frozen=True, slots=True, kw_only=True)
class Localized:
    """A text in Korean (always) and English (falls back to Korean when not given)."""

    ko: str
    en: str | None = None

    def get(self, locale: str | None) -> str:
        if locale == "en" and self.en:
            return self.en
        return self.ko

    def to_json(self) -> dict[str, str]:
        return {"ko": self.ko, "en": self.en or self.ko}

    @classmethod
    def from_json(cls, data: Any) -> Localized:
        if isinstance(data, str):
            return cls(ko=data)
        return cls(ko=str(data["ko"]), en=data.get("en"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Option:
    id: str
    label: Localized


@dataclass(frozen=True, slots=True, kw_only=True)
class Question:
    id: str
    kind: QuestionKind
    text: Localized
    options: tuple[Option, ...] = ()
    required: bool = True
    max_choices: int | None = None  # multi only
    low: Localized | None = None  # scale: what 1 means
    high: Localized | None = None  # scale: what 5 means

    def option(self, option_id: str) -> Option | None:
        return next((o for o in self.options if o.id == option_id), None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind.value,
            "text": self.text.to_json(),
            "required": self.required,
        }
        if self.options:
            out["options"] = [{"id": o.id, "label": o.label.to_json()} for o in self.options]
        if self.max_choices is not None:
            out["max_choices"] = self.max_choices
        if self.low is not None:
            out["low"] = self.low.to_json()
        if self.high is not None:
            out["high"] = self.high.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Question:
        return cls(
            id=str(data["id"]),
            kind=QuestionKind(data["kind"]),
            text=Localized.from_json(data["text"]),
            options=tuple(
                Option(id=str(o["id"]), label=Localized.from_json(o["label"]))
                for o in data.get("options", ())
            ),
            required=bool(data.get("required", True)),
            max_choices=data.get("max_choices"),
            low=Localized.from_json(data["low"]) if data.get("low") else None,
            high=Localized.from_json(data["high"]) if data.get("high") else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SurveyDef:
    """What a YAML file (or the Slack modal) defines. Times are aware UTC."""

    slug: str
    kind: str  # "poll" | "survey"
    title: Localized
    questions: tuple[Question, ...]
    opens_at: datetime
    closes_at: datetime
    intro: Localized | None = None
    thanks: Localized | None = None
    anonymous: bool = True
    live_results: bool = False
    allow_change: bool = False
    audience: str = "open"  # open: anyone at the participation level | targeted: pushed only

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)

    def to_json(self) -> dict[str, Any]:
        """The ``definition`` column: texts and questions (settings live in columns)."""
        out: dict[str, Any] = {
            "title": self.title.to_json(),
            "questions": [q.to_json() for q in self.questions],
        }
        if self.intro is not None:
            out["intro"] = self.intro.to_json()
        if self.thanks is not None:
            out["thanks"] = self.thanks.to_json()
        return out


def definition_from_row(
    *,
    slug: str,
    kind: str,
    definition: dict[str, Any],
    opens_at: datetime,
    closes_at: datetime,
    anonymous: bool,
    live_results: bool,
    allow_change: bool,
    audience: str = "open",
) -> SurveyDef:
    return SurveyDef(
        slug=slug,
        kind=kind,
        title=Localized.from_json(definition["title"]),
        questions=tuple(Question.from_json(q) for q in definition["questions"]),
        intro=Localized.from_json(definition["intro"]) if definition.get("intro") else None,
        thanks=Localized.from_json(definition["thanks"]) if definition.get("thanks") else None,
        opens_at=opens_at,
        closes_at=closes_at,
        anonymous=anonymous,
        live_results=live_results,
        allow_change=allow_change,
        audience=audience,
    )


def check_answer(question: Question, value: Any) -> Any:
    """The canonical stored form of one answer, or ``InvalidField`` naming the rule broken.

    ``None`` means skipped (allowed only for optional questions).
    """
    if value is None or value == "" or value == []:
        if question.required:
            raise InvalidField("answer", "required", question=question.id)
        return None
    if question.kind is QuestionKind.CHOICE:
        if not isinstance(value, str) or question.option(value) is None:
            raise InvalidField("answer", "unknown_option", question=question.id)
        return value
    if question.kind is QuestionKind.MULTI:
        picked = [value] if isinstance(value, str) else list(value)
        if any(not isinstance(v, str) or question.option(v) is None for v in picked):
            raise InvalidField("answer", "unknown_option", question=question.id)
        unique = [o.id for o in question.options if o.id in set(picked)]  # option order
        limit = question.max_choices or len(question.options)
        if len(unique) > limit:
            raise InvalidField("answer", "too_many", question=question.id, max=limit)
        return unique
    if question.kind is QuestionKind.SCALE:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise InvalidField("answer", "scale", question=question.id)
        try:
            number = int(value)
        except ValueError:
            raise InvalidField("answer", "scale", question=question.id) from None
        if number not in SCALE:
            raise InvalidField("answer", "scale", question=question.id)
        return number
    text = "".join(ch for ch in str(value) if ch in "\n\t" or ch.isprintable()).strip()
    if not text:
        if question.required:
            raise InvalidField("answer", "required", question=question.id)
        return None
    if len(text) > ANSWER_TEXT_MAX:
        raise InvalidField("answer", "too_long", question=question.id, max=ANSWER_TEXT_MAX)
    return mask(text).text  # free text is kept (and counted in results) only masked


@dataclass(frozen=True, slots=True, kw_only=True)
class Segment:
    """Who a push goes to. Empty tuples mean "anyone" for that dimension.

    A person matches when they consented, are reachable, and match every non-empty dimension
    (topics: subscribed to any of them; regions: subscribed to any of them).
    """

    topics: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    locales: tuple[str, ...] = ()

    def to_json(self) -> dict[str, list[str]]:
        return {
            "topics": list(self.topics),
            "regions": list(self.regions),
            "channels": list(self.channels),
            "locales": list(self.locales),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Segment:
        return cls(**{k: tuple(data.get(k) or ()) for k in ("topics", "regions", "channels",
                                                             "locales")})

    def describe(self) -> str:
        parts = [f"{k}={','.join(v)}" for k, v in self.to_json().items() if v]
        return " ".join(parts) or "all"


def quiet_until(
    now: datetime, *, start: time | None, end: time | None, tz: ZoneInfo
) -> datetime | None:
    """If ``now`` falls in quiet hours, the aware UTC moment they end; else None.

    Quiet hours may wrap midnight (21:00–08:00). ``None`` or ``start == end`` means off.
    """
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= clock < end
        end_day = local.date()
    else:
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    until = datetime.combine(end_day, end, tzinfo=tz)
    return until.astimezone(now.tzinfo or tz)


@dataclass(frozen=True, slots=True, kw_only=True)
class SurveyInfo:
    id: int
    status: str  # open | closing | closed
    definition: SurveyDef
    ballots: int

    def is_open(self, now: datetime) -> bool:
        d = self.definition
        return self.status == "open" and d.opens_at <= now < d.closes_at
