"""Counting ballots, the results text, the chart data and the CSV export."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.orm_campaigns import Ballot, Survey
from core.campaigns.model import SCALE, Localized, QuestionKind, SurveyDef, definition_from_row
from core.i18n import t

__all__ = [
    "QuestionResult",
    "Results",
    "chart_series",
    "count_results",
    "export_csv",
    "format_results",
    "load_definition",
]

BAR_WIDTH = 10
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True, kw_only=True)
class QuestionResult:
    id: str
    kind: QuestionKind
    text: Localized
    labels: tuple[Localized, ...]  # options, or "1".."5" for a scale
    counts: tuple[int, ...]
    answered: int
    average: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Results:
    survey_id: int
    slug: str
    kind: str
    title: Localized
    status: str
    ballots: int
    closes_at: datetime
    questions: tuple[QuestionResult, ...]


def load_definition(survey: Survey) -> SurveyDef:
    return definition_from_row(
        slug=survey.slug,
        kind=survey.kind,
        definition=survey.definition,
        opens_at=survey.opens_at,
        closes_at=survey.closes_at,
        anonymous=survey.anonymous,
        live_results=survey.live_results,
        allow_change=survey.allow_change,
    )


async def _answers(session: AsyncSession, survey_id: int) -> list[dict[str, Any]]:
    rows = await session.execute(select(Ballot.answers).where(Ballot.survey_id == survey_id))
    return [dict(r) for r in rows.scalars()]


async def count_results(session: AsyncSession, survey: Survey) -> Results:
    definition = load_definition(survey)
    ballots = await _answers(session, survey.id)
    questions: list[QuestionResult] = []
    for q in definition.questions:
        values = [b.get(q.id) for b in ballots if b.get(q.id) is not None]
        tally: Counter[str] = Counter()
        for value in values:
            for item in value if isinstance(value, list) else [value]:
                tally[str(item)] += 1
        if q.kind in (QuestionKind.CHOICE, QuestionKind.MULTI):
            labels = tuple(o.label for o in q.options)
            counts = tuple(tally[o.id] for o in q.options)
            average = None
        elif q.kind is QuestionKind.SCALE:
            labels = tuple(Localized(ko=str(n)) for n in SCALE)
            counts = tuple(tally[str(n)] for n in SCALE)
            average = sum(int(v) for v in values) / len(values) if values else None
        else:
            labels, counts, average = (), (), None
        questions.append(
            QuestionResult(
                id=q.id, kind=q.kind, text=q.text, labels=labels, counts=counts,
                answered=len(values), average=average,
            )
        )
    return Results(
        survey_id=survey.id, slug=survey.slug, kind=survey.kind, title=definition.title,
        status=survey.status, ballots=len(ballots), closes_at=survey.closes_at,
        questions=tuple(questions),
    )


def _bar(share: float) -> str:
    filled = round(share * BAR_WIDTH)
    return "█" * filled + "░" * (BAR_WIDTH - filled)


def format_results(results: Results, locale: str, *, final: bool) -> str:
    """Plain text for any channel: counts, shares, averages (free text: only how many)."""
    head = "campaign.results.final" if final else "campaign.results.live"
    lines = [t(head, locale, title=results.title.get(locale), count=results.ballots)]
    for number, q in enumerate(results.questions, start=1):
        lines.append("")
        lines.append(f"{number}. {q.text.get(locale)}")
        if q.kind is QuestionKind.TEXT:
            lines.append(t("campaign.results.text_answers", locale, count=q.answered))
            continue
        total = sum(q.counts) or 1
        for label, count in zip(q.labels, q.counts, strict=True):
            share = count / total if q.answered else 0.0
            lines.append(f"{label.get(locale)}  {_bar(share)} {count} ({share:.0%})")
        if q.average is not None:
            lines.append(t("campaign.results.average", locale, average=f"{q.average:.1f}"))
    return "\n".join(lines)


def chart_series(results: Results, locale: str) -> list[tuple[str, list[str], list[int]]]:
    """(title, labels, values) for every question a bar chart can show."""
    return [
        (q.text.get(locale), [lbl.get(locale) for lbl in q.labels], list(q.counts))
        for q in results.questions
        if q.kind is not QuestionKind.TEXT
    ]


def _cell(value: str) -> str:
    """Neutralise spreadsheet formulas in citizen text (CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


async def export_csv(session: AsyncSession, survey: Survey, *, tz: ZoneInfo) -> str:
    """One row per ballot. Anonymous surveys: no person, channel or time column, rows shuffled
    (ballot order could otherwise be matched against other records)."""
    definition = load_definition(survey)
    rows = (
        await session.execute(
            select(Ballot).where(Ballot.survey_id == survey.id).order_by(Ballot.id)
        )
    ).scalars().all()
    out = io.StringIO()
    writer = csv.writer(out)
    header = ["ballot"]
    if not survey.anonymous:
        header += ["person_id", "channel", "cast_at"]
    header += [_cell(f"{q.id}: {q.text.ko}") for q in definition.questions]
    writer.writerow(header)
    ballots = list(rows)
    if survey.anonymous:
        random.SystemRandom().shuffle(ballots)
    for number, ballot in enumerate(ballots, start=1):
        line: list[str] = [str(number)]
        if not survey.anonymous:
            at = ""
            if ballot.cast_at:
                at = ballot.cast_at.astimezone(tz).isoformat(timespec="seconds")
            line += [str(ballot.person_id or ""), ballot.channel or "", at]
        for q in definition.questions:
            line.append(_cell(_answer_text(q, ballot.answers.get(q.id))))
        writer.writerow(line)
    return out.getvalue()


def _answer_text(question: Any, value: Any) -> str:
    if value is None:
        return ""
    if question.kind in (QuestionKind.CHOICE, QuestionKind.MULTI):
        ids = value if isinstance(value, list) else [value]
        labels = [o.label.ko for i in ids if (o := question.option(str(i))) is not None]
        return " | ".join(labels)
    return str(value)
