"""Parses ``/gongnon`` command text (pure): verbs and statuses in Korean or English."""

from __future__ import annotations

from dataclasses import dataclass

from core.domain.model import ProposalStatus, parse_tracking
from core.i18n import LOCALES, t

__all__ = ["SlashRequest", "parse_slash", "parse_status"]

VERBS: dict[str, str] = {
    "search": "search", "find": "search", "검색": "search", "찾기": "search",
    "show": "show", "view": "show", "보기": "show", "조회": "show",
    "stats": "stats", "통계": "stats", "현황": "stats",
    "status": "status", "상태": "status",
    "help": "help", "도움말": "help", "도움": "help",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SlashRequest:
    """What an official asked. ``problem`` is a catalog key when the text does not parse."""

    verb: str
    words: str = ""
    tracking: str | None = None
    status: ProposalStatus | None = None
    reason: str = ""
    problem: str | None = None
    problem_word: str = ""


def _norm(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def parse_status(text: str) -> ProposalStatus | None:
    """``under_review``, ``검토중``, ``검토 중``, ``Under review`` → ``UNDER_REVIEW``."""
    wanted = _norm(text)
    if not wanted:
        return None
    for status in ProposalStatus:
        names = {_norm(status.value)} | {_norm(t(f"status.{status.value}", loc)) for loc in LOCALES}
        if wanted in names:
            return status
    aliases = {"이송": ProposalStatus.FORWARDED, "검토": ProposalStatus.UNDER_REVIEW,
               "실행": ProposalStatus.IMPLEMENTED}
    return aliases.get(wanted)


def _status_request(rest: list[str]) -> SlashRequest:
    if len(rest) < 3 or parse_tracking(rest[0]) is None:
        return SlashRequest(verb="status", problem="slack.slash.usage_status")
    tracking = parse_tracking(rest[0])
    # a status label may be two words ("검토 중", "under review")
    for width in (2, 1):
        if len(rest) > width + 0 and (status := parse_status(" ".join(rest[1 : 1 + width]))):
            reason = " ".join(rest[1 + width :]).strip()
            if not reason:
                continue
            return SlashRequest(verb="status", tracking=tracking, status=status, reason=reason)
    if parse_status(rest[1]) is not None:  # a status but no reason
        return SlashRequest(verb="status", problem="slack.slash.usage_status")
    return SlashRequest(verb="status", problem="slack.slash.bad_status", problem_word=rest[1])


def parse_slash(text: str) -> SlashRequest:
    parts = text.split()
    if not parts:
        return SlashRequest(verb="help")
    verb = VERBS.get(parts[0].casefold())
    rest = parts[1:]
    if verb is None:
        if parse_tracking(parts[0]) is not None and len(parts) == 1:  # "/gongnon P-2026-1"
            return SlashRequest(verb="show", tracking=parse_tracking(parts[0]))
        return SlashRequest(verb="help", problem="slack.slash.unknown", problem_word=parts[0])
    if verb == "search":
        if not rest:
            return SlashRequest(verb=verb, problem="slack.slash.usage_search")
        return SlashRequest(verb=verb, words=" ".join(rest)[:200])
    if verb == "show":
        tracking = parse_tracking(rest[0]) if rest else None
        if tracking is None:
            return SlashRequest(verb=verb, problem="slack.slash.usage_show")
        return SlashRequest(verb=verb, tracking=tracking)
    if verb == "status":
        return _status_request(rest)
    return SlashRequest(verb=verb)
