"""Survey results as values: the results text and the chart data (no database here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.campaigns.model import Localized, QuestionKind
from core.i18n import t

__all__ = ["QuestionResult", "Results", "chart_series", "format_results"]

BAR_WIDTH = 10


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


