"""Survey YAML: parse and validate, reporting every error with its line number."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from core.campaigns.model import (
    SLUG_RE,
    Localized,
    Option,
    Question,
    QuestionKind,
    SurveyDef,
)
from core.i18n import t

__all__ = ["SurveyError", "SurveyErrors", "parse_survey"]

TITLE_MAX, INTRO_MAX, QUESTION_MAX, OPTION_MAX = 200, 1000, 300, 30
MAX_QUESTIONS, MIN_OPTIONS, MAX_OPTIONS = 20, 2, 10
TOP_KEYS = {
    "id", "kind", "title", "intro", "thanks", "anonymous", "results", "allow_change",
    "audience", "opens_at", "closes_at", "questions",
}
QUESTION_KEYS = {"id", "kind", "text", "options", "optional", "max_choices", "low", "high"}
QID_MAX = 32


@dataclass(frozen=True, slots=True)
class SurveyError:
    """One problem: a 1-based line, an error code (catalog key) and its parameters."""

    line: int
    code: str
    params: dict[str, Any] = field(default_factory=dict)

    def message(self, locale: str) -> str:
        return t(f"campaign.yaml.{self.code}", locale, **self.params)


class SurveyErrors(Exception):
    """Every problem found in one file, in line order."""

    def __init__(self, errors: list[SurveyError]) -> None:
        super().__init__(f"{len(errors)} error(s)")
        self.errors = sorted(errors, key=lambda e: e.line)

    def lines(self, locale: str, *, filename: str = "") -> list[str]:
        prefix = f"{filename}:" if filename else ""
        return [f"{prefix}{e.line}: {e.message(locale)}" for e in self.errors]


def _line(node: Node) -> int:
    return node.start_mark.line + 1


class _Checker:
    """Walks the composed node tree, collecting errors instead of stopping at the first."""

    def __init__(self, tz: ZoneInfo, now: datetime | None = None) -> None:
        self.tz = tz
        self.now = now
        self.errors: list[SurveyError] = []

    def err(self, node: Node, code: str, **params: Any) -> None:
        self.errors.append(SurveyError(_line(node), code, params))

    # --- scalars -------------------------------------------------------------------
    def mapping(self, node: Node, where: str, allowed: set[str]) -> dict[str, tuple[Node, Node]]:
        if not isinstance(node, MappingNode):
            self.err(node, "not_mapping", where=where)
            return {}
        out: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, ScalarNode) else "?"
            if key not in allowed:
                self.err(key_node, "unknown_key", key=key, where=where,
                         allowed=", ".join(sorted(allowed)))
            elif key in out:
                self.err(key_node, "duplicate_key", key=key)
            else:
                out[key] = (key_node, value_node)
        return out

    def string(self, node: Node, key: str, limit: int) -> str | None:
        if not isinstance(node, ScalarNode) or node.tag.endswith(":null"):
            self.err(node, "not_text", key=key)
            return None
        text = " ".join(str(node.value).split())
        if not text:
            self.err(node, "empty", key=key)
            return None
        if len(text) > limit:
            self.err(node, "too_long", key=key, max=limit, length=len(text))
            return None
        return text

    def localized(self, node: Node, key: str, limit: int) -> Localized | None:
        if isinstance(node, ScalarNode):
            text = self.string(node, key, limit)
            return Localized(ko=text) if text else None
        entries = self.mapping(node, key, {"ko", "en"})
        if not entries:
            return None
        if "ko" not in entries:
            self.err(node, "korean_required", key=key)
            return None
        ko = self.string(entries["ko"][1], f"{key}.ko", limit)
        en = self.string(entries["en"][1], f"{key}.en", limit) if "en" in entries else None
        return Localized(ko=ko, en=en) if ko else None

    def boolean(self, node: Node, key: str) -> bool | None:
        if isinstance(node, ScalarNode) and node.tag.endswith(":bool"):
            return str(node.value).lower() in ("true", "yes", "on", "y")
        self.err(node, "not_bool", key=key)
        return None

    def integer(self, node: Node, key: str) -> int | None:
        if isinstance(node, ScalarNode) and node.tag.endswith(":int"):
            return int(str(node.value))
        self.err(node, "not_int", key=key)
        return None

    def when(self, node: Node, key: str) -> datetime | None:
        raw = str(node.value).strip() if isinstance(node, ScalarNode) else ""
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            self.err(node, "bad_time", key=key, value=raw[:40])
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.tz)
        return value.astimezone(ZoneInfo("UTC"))

    def choice(self, node: Node, key: str, allowed: tuple[str, ...]) -> str | None:
        value = str(node.value) if isinstance(node, ScalarNode) else ""
        if value not in allowed:
            self.err(node, "not_one_of", key=key, value=value[:40], allowed=", ".join(allowed))
            return None
        return value

    # --- structure -----------------------------------------------------------------
    def options(self, node: Node, where: str) -> tuple[Option, ...]:
        if not isinstance(node, SequenceNode):
            self.err(node, "not_list", key=f"{where}.options")
            return ()
        if not MIN_OPTIONS <= len(node.value) <= MAX_OPTIONS:
            self.err(node, "option_count", key=where, min=MIN_OPTIONS, max=MAX_OPTIONS,
                     count=len(node.value))
        out: list[Option] = []
        seen: set[str] = set()
        for index, item in enumerate(node.value, start=1):
            label = self.localized(item, f"{where}.options[{index}]", OPTION_MAX)
            if label is None:
                continue
            if label.ko in seen:
                self.err(item, "duplicate_option", label=label.ko)
            seen.add(label.ko)
            out.append(Option(id=str(index), label=label))
        return tuple(out)

    def question(self, node: Node, index: int, seen_ids: set[str]) -> Question | None:
        where = f"questions[{index}]"
        fields = self.mapping(node, where, QUESTION_KEYS)
        if not fields and not isinstance(node, MappingNode):
            return None
        qid = f"q{index}"
        if "id" in fields:
            raw = str(fields["id"][1].value) if isinstance(fields["id"][1], ScalarNode) else ""
            if not SLUG_RE.match(raw) or len(raw) > QID_MAX:
                self.err(fields["id"][1], "bad_id", key=f"{where}.id", value=raw[:40])
            else:
                qid = raw
        if qid in seen_ids:
            self.err(fields["id"][1] if "id" in fields else node, "duplicate_question", id=qid)
        seen_ids.add(qid)
        kind_raw = None
        if "kind" not in fields:
            self.err(node, "missing", key=f"{where}.kind")
        else:
            kind_raw = self.choice(fields["kind"][1], f"{where}.kind",
                                   tuple(k.value for k in QuestionKind))
        text = None
        if "text" not in fields:
            self.err(node, "missing", key=f"{where}.text")
        else:
            text = self.localized(fields["text"][1], f"{where}.text", QUESTION_MAX)
        kind = QuestionKind(kind_raw) if kind_raw else None
        options: tuple[Option, ...] = ()
        if kind in (QuestionKind.CHOICE, QuestionKind.MULTI):
            if "options" not in fields:
                self.err(node, "missing", key=f"{where}.options")
            else:
                options = self.options(fields["options"][1], where)
        elif "options" in fields and kind is not None:
            self.err(fields["options"][0], "options_not_allowed", kind=kind.value)
        required = True
        if "optional" in fields:
            optional = self.boolean(fields["optional"][1], f"{where}.optional")
            required = not optional if optional is not None else True
        max_choices = None
        if "max_choices" in fields:
            key_node, value_node = fields["max_choices"]
            if kind is not QuestionKind.MULTI:
                self.err(key_node, "only_for", key="max_choices", kind="multi")
            else:
                max_choices = self.integer(value_node, f"{where}.max_choices")
                if max_choices is not None and not 1 <= max_choices <= max(len(options), 1):
                    self.err(value_node, "max_choices", max=len(options))
                    max_choices = None
        ends: dict[str, Localized | None] = {"low": None, "high": None}
        for end in ends:
            if end in fields:
                if kind is not QuestionKind.SCALE:
                    self.err(fields[end][0], "only_for", key=end, kind="scale")
                else:
                    ends[end] = self.localized(fields[end][1], f"{where}.{end}", OPTION_MAX)
        if kind is None or text is None:
            return None
        return Question(id=qid, kind=kind, text=text, options=options, required=required,
                        max_choices=max_choices, low=ends["low"], high=ends["high"])

    def questions(self, node: Node) -> list[Question]:
        if not isinstance(node, SequenceNode):
            self.err(node, "not_list", key="questions")
            return []
        if not 1 <= len(node.value) <= MAX_QUESTIONS:
            self.err(node, "question_count", max=MAX_QUESTIONS, count=len(node.value))
        seen: set[str] = set()
        out = [self.question(item, i, seen) for i, item in enumerate(node.value, start=1)]
        return [q for q in out if q is not None]

    def survey(self, root: Node) -> SurveyDef | None:
        fields = self.mapping(root, "survey", TOP_KEYS)
        if not fields:
            return None
        for required in ("id", "title", "closes_at", "questions"):
            if required not in fields:
                self.err(root, "missing", key=required)
        slug = None
        if "id" in fields:
            node = fields["id"][1]
            raw = str(node.value) if isinstance(node, ScalarNode) else ""
            if SLUG_RE.match(raw):
                slug = raw
            else:
                self.err(node, "bad_id", key="id", value=raw[:40])
        get = fields.get
        title = self.localized(fields["title"][1], "title", TITLE_MAX) if get("title") else None
        intro = self.localized(fields["intro"][1], "intro", INTRO_MAX) if get("intro") else None
        thanks = (
            self.localized(fields["thanks"][1], "thanks", INTRO_MAX) if get("thanks") else None
        )
        flags = {"anonymous": True, "allow_change": False}
        for name in flags:
            if name in fields:
                value = self.boolean(fields[name][1], name)
                flags[name] = flags[name] if value is None else value
        results = "after_close"
        if "results" in fields:
            picked = self.choice(fields["results"][1], "results", ("live", "after_close"))
            results = picked or results
        audience = "open"
        if "audience" in fields:
            audience = self.choice(fields["audience"][1], "audience",
                                   ("open", "targeted")) or audience
        opens = self.when(fields["opens_at"][1], "opens_at") if get("opens_at") else None
        closes = self.when(fields["closes_at"][1], "closes_at") if get("closes_at") else None
        if opens and closes and closes <= opens:
            self.err(fields["closes_at"][1], "closes_before_opens")
        elif closes and self.now is not None and closes <= self.now:
            local = closes.astimezone(self.tz).strftime("%Y-%m-%d %H:%M")
            self.err(fields["closes_at"][1], "closes_in_past", value=local)
        questions = self.questions(fields["questions"][1]) if get("questions") else []
        kind = "survey"
        if "kind" in fields:
            kind = self.choice(fields["kind"][1], "kind", ("poll", "survey")) or kind
            if kind == "poll" and "questions" in fields:
                qnode = fields["questions"][1]
                count = len(qnode.value) if isinstance(qnode, SequenceNode) else 0
                if count != 1 or any(q.kind not in (QuestionKind.CHOICE, QuestionKind.MULTI)
                                     for q in questions):
                    self.err(qnode, "poll_shape")
        if flags["anonymous"] and flags["allow_change"] and "allow_change" in fields:
            self.err(fields["allow_change"][1], "anonymous_change")
        if self.errors or slug is None or title is None or closes is None:
            return None
        return SurveyDef(
            slug=slug, kind=kind, title=title, intro=intro, thanks=thanks,
            questions=tuple(questions),
            opens_at=opens or datetime.min.replace(tzinfo=closes.tzinfo),
            closes_at=closes, anonymous=flags["anonymous"], live_results=results == "live",
            allow_change=flags["allow_change"], audience=audience,
        )


def parse_survey(text: str, *, tz: ZoneInfo, now: datetime | None = None) -> SurveyDef:
    """A valid definition, or ``SurveyErrors`` listing every problem with its line.

    With ``now``, a ``closes_at`` that has already passed is an error (creating and
    validating pass it; reading a stored definition back does not).

    Without ``opens_at`` the survey opens when it is created (``opens_at`` is then
    ``datetime.min``; the create handler replaces it with the creation time).
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = (exc.problem or "syntax error").strip()
        raise SurveyErrors([SurveyError(line, "syntax", {"problem": problem})]) from None
    if root is None:
        raise SurveyErrors([SurveyError(1, "empty_file")])
    checker = _Checker(tz, now)
    survey = checker.survey(root)
    if checker.errors or survey is None:
        raise SurveyErrors(checker.errors or [SurveyError(1, "empty_file")])
    return survey
