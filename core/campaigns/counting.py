"""Counting ballots from the database into ``Results``, and the CSV export."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.orm_campaigns import Ballot, Survey
from core.campaigns.model import SCALE, Localized, QuestionKind, SurveyDef, definition_from_row
from core.campaigns.results import QuestionResult, Results

__all__ = ["count_results", "export_csv", "load_definition"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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
        audience=survey.audience,
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
            numbers = [int(v) for v in values if v is not None]
            average = sum(numbers) / len(numbers) if numbers else None
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
