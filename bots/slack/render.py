"""Block Kit builders for officials (pure): triage cards, modals, thread replies, alerts,
digests and slash-command answers. Every piece of citizen text goes through ``esc``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.deliberation.model import DiscussionSummary, OpinionView, Stance, alias_label
from core.domain.model import (
    FeedbackKind,
    FeedbackView,
    ProposalStatus,
    ProposalSummary,
    ProposalView,
    allowed_next,
)
from core.i18n import t
from core.officials.model import Alert, Digest, DiscussionAlert, Outcome

__all__ = [
    "ACTION_ANSWER",
    "ACTION_ASSIGN",
    "ACTION_STATUS",
    "ACTION_THREAD",
    "MAX_BLOCKS",
    "SECTION_MAX",
    "VIEW_ANSWER",
    "VIEW_ASSIGN",
    "VIEW_STATUS",
    "alert_message",
    "answer_modal",
    "assign_modal",
    "clip",
    "detail_message",
    "digest_messages",
    "discussion_alert_message",
    "esc",
    "fit",
    "chart_texts",
    "help_message",
    "notice",
    "official_statuses",
    "outcome_message",
    "search_message",
    "stats_message",
    "status_modal",
    "thread_reply",
    "triage_message",
]

Message = dict[str, Any]
Block = dict[str, Any]

ACTION_STATUS = "gongnon_status"
ACTION_ASSIGN = "gongnon_assign"
ACTION_ANSWER = "gongnon_answer"
ACTION_THREAD = "gongnon_thread"
VIEW_STATUS = "gongnon_status_modal"
VIEW_ASSIGN = "gongnon_assign_modal"
VIEW_ANSWER = "gongnon_answer_modal"

MAX_BLOCKS = 40  # Slack allows 50 per message; keep room
SECTION_MAX = 2900  # Slack allows 3000 characters per section text
MESSAGE_CHARS = 10_000  # keep each message's blocks well under ~12k characters
HEADER_MAX = 150
FIELD_MAX = 2000  # a section field's or a context element's text
BODY_PREVIEW = 300


# --- text ----------------------------------------------------------------------------
def esc(text: object) -> str:
    """Escape Slack's control characters: no mention, link or broadcast can come through."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_ENTITY_TAIL = re.compile(r"&[a-z]{0,3}$")  # a cut "&amp;", "&lt;" or "&gt;"


def clip(text: str, limit: int) -> str:
    """Cut already escaped text to ``limit`` characters (an ellipsis marks the cut), never
    inside an entity: escape first, cut after, so escaping cannot grow a text past a limit."""
    text = " ".join(text.split()) if "\n" not in text else text.strip()
    if len(text) <= limit:
        return text
    cut = _ENTITY_TAIL.sub("", text[: limit - 1]).rstrip()
    return cut + "…"


def fit(text: object, limit: int) -> str:
    """Citizen or official text for a Block Kit field: escaped, then cut to ``limit``."""
    return clip(esc(text), limit)


def _plain(text: str, limit: int = HEADER_MAX) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or "-", "emoji": False}


def _md(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text or " "}


def _section(text: str) -> Block:
    """A section of escaped text, never past Slack's 3,000 characters."""
    return {"type": "section", "text": _md(clip(text, SECTION_MAX))}


def _context(*texts: str) -> Block:
    return {"type": "context", "elements": [_md(clip(x, FIELD_MAX)) for x in texts if x][:10]}


def _status(status: ProposalStatus | str, locale: str) -> str:
    return t(f"status.{ProposalStatus(status).value}", locale)


def _category(key: str, locale: str) -> str:
    return t(f"category.{key}", locale)


def _local(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")


# --- triage card ---------------------------------------------------------------------
def official_statuses(status: ProposalStatus) -> list[ProposalStatus]:
    """Where an official may move a proposal (withdrawing is the author's alone)."""
    order = list(ProposalStatus)
    return sorted(
        (s for s in allowed_next(status) if s is not ProposalStatus.WITHDRAWN), key=order.index
    )


def _card_fields(view: ProposalView, locale: str, tz: ZoneInfo) -> list[dict[str, Any]]:
    region = t(f"region.{view.region}", locale) if view.region else t("slack.card.nationwide",
                                                                        locale)
    assignee = esc(view.assigned_to) if view.assigned_to else t("slack.card.unassigned", locale)
    pairs = [
        ("status", _status(view.status, locale)),
        ("category", _category(view.category, locale)),
        ("region", region),
        ("supports", t("slack.card.counts", locale, supports=view.support_count,
                       followers=view.follower_count)),
        ("assignee", assignee),
        ("created", _local(view.created_at, tz)),
    ]
    return [_md(clip(f"*{t(f'slack.card.{key}', locale)}*\n{value}", FIELD_MAX))
            for key, value in pairs]


def _card_context(view: ProposalView, locale: str) -> Block | None:
    notes: list[str] = []
    last = view.history[-1] if view.history else None
    if last is not None and last.from_status is not None and last.reason:
        notes.append(t("slack.card.last_reason", locale, reason=fit(last.reason, 200)))
    if last is not None and last.expected_date:
        notes.append(t("slack.card.expected", locale, date=last.expected_date.isoformat()))
    comments = sum(1 for f in view.feedback if f.kind is FeedbackKind.COMMENT)
    if comments:
        notes.append(t("slack.card.feedback_count", locale, count=comments))
    if any(f.kind is FeedbackKind.OFFICIAL_ANSWER for f in view.feedback):
        notes.append(t("slack.card.answered", locale))
    return _context(" · ".join(notes)) if notes else None


def _card_actions(view: ProposalView, locale: str) -> Block:
    def button(action: str, key: str, style: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "button",
            "action_id": action,
            "text": _plain(t(f"slack.button.{key}", locale), 75),
            "value": view.tracking,
        }
        if style:
            out["style"] = style
        return out

    return {
        "type": "actions",
        "block_id": f"triage:{view.tracking}",
        "elements": [
            button(ACTION_STATUS, "status", "primary"),
            button(ACTION_ASSIGN, "assign"),
            button(ACTION_ANSWER, "answer"),
            button(ACTION_THREAD, "thread"),
        ],
    }


def triage_message(view: ProposalView, locale: str, tz: ZoneInfo) -> Message:
    """The card a new proposal gets in the triage channel (and keeps, edited, afterwards)."""
    blocks: list[Block] = [
        {"type": "header", "text": _plain(f"{view.tracking} {esc(view.title)}")},
        {"type": "section", "fields": _card_fields(view, locale, tz)},
        _section(fit(view.body, BODY_PREVIEW)),
    ]
    context = _card_context(view, locale)
    if context is not None:
        blocks.append(context)
    blocks.append(_card_actions(view, locale))
    text = t("slack.card.fallback", locale, tracking=view.tracking, title=esc(view.title),
             status=_status(view.status, locale))
    return {"text": text, "blocks": blocks}


def detail_message(view: ProposalView, locale: str, tz: ZoneInfo) -> Message:
    """``/gongnon show``: the card plus the status history."""
    message = triage_message(view, locale, tz)
    lines = [
        t("slack.show.history_line", locale, at=_local(h.at, tz),
          status=_status(h.to_status, locale), reason=fit(h.reason, 120) or "-")
        for h in view.history[-10:]
    ]
    blocks = message["blocks"][:-1]  # the buttons stay on the triage card
    blocks.append(_section(t("slack.show.history", locale) + "\n" + "\n".join(lines)))
    return {"text": message["text"], "blocks": blocks}


# --- modals --------------------------------------------------------------------------
def _modal(callback_id: str, title_key: str, locale: str, view: ProposalView,
           origin: dict[str, str], inputs: list[Block]) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": json.dumps({"tracking": view.tracking, **origin},
                                       separators=(",", ":")),
        "title": _plain(t(title_key, locale), 24),
        "submit": _plain(t("slack.modal.submit", locale), 24),
        "close": _plain(t("slack.modal.cancel", locale), 24),
        "blocks": [
            _context(f"*{view.tracking}* {fit(view.title, 100)} · "
                     f"{_status(view.status, locale)}"),
            *inputs,
        ],
    }


def _text_input(block_id: str, label: str, *, multiline: bool, max_length: int,
                optional: bool = False, placeholder: str | None = None,
                hint: str | None = None) -> Block:
    element: dict[str, Any] = {
        "type": "plain_text_input", "action_id": "value", "multiline": multiline,
        "max_length": max_length,
    }
    if placeholder:
        element["placeholder"] = _plain(placeholder, 150)
    block: Block = {"type": "input", "block_id": block_id, "label": _plain(label, 2000),
                    "element": element, "optional": optional}
    if hint:
        block["hint"] = _plain(hint, 2000)
    return block


def status_modal(view: ProposalView, locale: str, origin: dict[str, str]) -> dict[str, Any]:
    options = [
        {"text": _plain(_status(s, locale), 75), "value": s.value}
        for s in official_statuses(view.status)
    ]
    select: Block = {
        "type": "input",
        "block_id": "status",
        "label": _plain(t("slack.modal.status_label", locale)),
        "element": {"type": "static_select", "action_id": "value", "options": options,
                    "placeholder": _plain(t("slack.modal.status_placeholder", locale))},
    }
    date_picker: Block = {
        "type": "input",
        "block_id": "expected_date",
        "optional": True,
        "label": _plain(t("slack.modal.date_label", locale)),
        "element": {"type": "datepicker", "action_id": "value"},
    }
    reason = _text_input("reason", t("slack.modal.reason_label", locale), multiline=True,
                         max_length=1000, hint=t("slack.modal.reason_hint", locale))
    return _modal(VIEW_STATUS, "slack.modal.status_title", locale, view, origin,
                  [select, reason, date_picker])


def assign_modal(view: ProposalView, locale: str, origin: dict[str, str]) -> dict[str, Any]:
    field = _text_input("assignee", t("slack.modal.assignee_label", locale), multiline=False,
                        max_length=200, placeholder=t("slack.modal.assignee_placeholder", locale))
    if view.assigned_to:
        field["element"]["initial_value"] = view.assigned_to
    return _modal(VIEW_ASSIGN, "slack.modal.assign_title", locale, view, origin, [field])


def answer_modal(view: ProposalView, locale: str, origin: dict[str, str]) -> dict[str, Any]:
    field = _text_input("answer", t("slack.modal.answer_label", locale), multiline=True,
                        max_length=1000, hint=t("slack.modal.answer_hint", locale))
    return _modal(VIEW_ANSWER, "slack.modal.answer_title", locale, view, origin, [field])


# --- thread, alerts, notices ---------------------------------------------------------
def thread_reply(view: ProposalView, feedback: FeedbackView, locale: str,
                 tz: ZoneInfo) -> Message:
    if feedback.kind is FeedbackKind.OFFICIAL_ANSWER:
        label = t("slack.reply.answer", locale)
    elif feedback.by_author:
        label = t("slack.reply.author", locale)
    else:
        label = t("slack.reply.comment", locale)
    body = fit(feedback.body, SECTION_MAX - 200)
    return {
        "text": f"{label} {view.tracking}",
        "blocks": [_section(f"*{label}* · {_local(feedback.at, tz)}\n{body}")],
    }


def alert_message(alert: Alert, locale: str) -> Message:
    text = t("slack.alert.sync", locale, kind=fit(alert.kind, 40),
             tracking=fit(alert.tracking or "-", 40), attempts=alert.attempts,
             error=fit(alert.error, 500))
    return notice(text)


def notice(text: str) -> Message:
    """A short answer built from the catalog (its parameters already escaped)."""
    return {"text": clip(text, SECTION_MAX), "blocks": [_section(text)]}


def outcome_message(outcome: Outcome, locale: str) -> Message:
    params: dict[str, Any] = {k: fit(v, 500) for k, v in outcome.params.items()}
    for key in ("status", "current", "new"):
        if key in outcome.params:
            try:
                params[f"{key}_label"] = _status(str(outcome.params[key]), locale)
            except ValueError:
                params[f"{key}_label"] = esc(outcome.params[key])
    text = t(outcome.key, locale, **params)
    if text == outcome.key:  # no such catalog entry: say something useful, not a key
        text = t("slack.error.generic", locale)
    return notice(("✅ " if outcome.ok else "⚠️ ") + text)


# --- slash command answers -----------------------------------------------------------
def help_message(locale: str) -> Message:
    return notice(t("slack.slash.help", locale))


def _summary_line(p: ProposalSummary, locale: str) -> str:
    return t("slack.line.summary", locale, tracking=p.tracking, title=fit(p.title, 80),
             status=_status(p.status, locale), supports=p.support_count)


def _sections(lines: Iterable[str], head: str = "") -> list[Block]:
    """Lines packed into sections of at most ``SECTION_MAX`` characters."""
    blocks: list[Block] = []
    current = head
    for line in lines:
        line = clip(line, SECTION_MAX)
        if current and len(current) + 1 + len(line) > SECTION_MAX:
            blocks.append(_section(current))
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        blocks.append(_section(current))
    return blocks


def search_message(words: str, results: Sequence[ProposalSummary], locale: str) -> Message:
    if not results:
        return notice(t("slack.slash.search_none", locale, words=fit(words, 100)))
    head = t("slack.slash.search_head", locale, words=fit(words, 100), count=len(results))
    lines = [_summary_line(p, locale) for p in results]
    return {"text": head, "blocks": _sections(lines, head)}


def stats_message(stats: dict[str, Any], locale: str) -> Message:
    head = t("slack.slash.stats_head", locale, total=stats.get("total", 0),
             supports=stats.get("supports", 0))
    by_status: dict[str, int] = stats.get("by_status", {})
    lines = [
        t("slack.slash.stats_line", locale, status=_status(s, locale), count=by_status[s.value])
        for s in ProposalStatus
        if by_status.get(s.value)
    ]
    return {"text": head, "blocks": _sections(lines, head)}


# --- digests -------------------------------------------------------------------------
def _digest_title(digest: Digest, locale: str) -> str:
    last = digest.end - timedelta(days=1)
    title = t(f"slack.digest.title_{digest.period}", locale, start=digest.start.isoformat(),
              last=last.isoformat())
    if digest.category:
        title += " · " + _category(digest.category, locale)
    return title


def _more(shown: int, total: int, locale: str) -> list[str]:
    return [t("slack.digest.more", locale, count=total - shown)] if total > shown else []


def _digest_blocks(digest: Digest, locale: str) -> list[Block]:
    blocks: list[Block] = [
        {"type": "header", "text": _plain(_digest_title(digest, locale))},
        _context(t("slack.digest.totals", locale, new=digest.new_total, moved=digest.moved_total,
                   overdue=digest.overdue_total)),
    ]
    if digest.empty:
        blocks.append(_section(t("slack.digest.quiet", locale)))
        return blocks
    groups: list[tuple[str, list[str]]] = []
    if digest.new:
        groups.append((
            t("slack.digest.new", locale, count=digest.new_total),
            [t("slack.line.new", locale, tracking=p.tracking, title=fit(p.title, 80),
               category=_category(p.category, locale), supports=p.support_count)
             for p in digest.new] + _more(len(digest.new), digest.new_total, locale),
        ))
    if digest.supported:
        groups.append((
            t("slack.digest.supported", locale),
            [t("slack.line.supported", locale, tracking=e.proposal.tracking,
               title=fit(e.proposal.title, 80), gained=e.gained,
               supports=e.proposal.support_count) for e in digest.supported],
        ))
    if digest.moved:
        groups.append((
            t("slack.digest.moved", locale, count=digest.moved_total),
            [t("slack.line.moved", locale, tracking=m.tracking, title=fit(m.title, 80),
               old=_status(m.from_status, locale), new=_status(m.to_status, locale))
             for m in digest.moved] + _more(len(digest.moved), digest.moved_total, locale),
        ))
    if digest.overdue:
        groups.append((
            t("slack.digest.overdue", locale, count=digest.overdue_total,
              days=digest.overdue_days),
            [t("slack.line.overdue", locale, tracking=o.proposal.tracking,
               title=fit(o.proposal.title, 80), status=_status(o.proposal.status, locale),
               days=o.idle_days) for o in digest.overdue]
            + _more(len(digest.overdue), digest.overdue_total, locale),
        ))
    if digest.discussions:
        groups.append(_discussion_group(digest.discussions, locale))
    for heading, lines in groups:
        blocks.append({"type": "divider"})
        blocks.extend(_sections(lines, heading))
    return blocks


def _size(block: Block) -> int:
    return len(json.dumps(block, ensure_ascii=False))


def digest_messages(digest: Digest, locale: str) -> list[Message]:
    """The digest as messages under Slack's limits (≤ 40 blocks, ≤ ~10k characters each)."""
    blocks = _digest_blocks(digest, locale)
    parts: list[list[Block]] = [[]]
    for block in blocks:
        current = parts[-1]
        too_many = len(current) >= MAX_BLOCKS
        too_big = sum(_size(b) for b in current) + _size(block) > MESSAGE_CHARS
        if current and (too_many or too_big):
            parts.append([])
        parts[-1].append(block)
    title = _digest_title(digest, locale)
    total = len(parts)
    messages: list[Message] = []
    for index, part in enumerate(parts, start=1):
        text = title if total == 1 else f"{title} ({index}/{total})"
        if index > 1:
            part = [_context(t("slack.digest.continued", locale, n=index, total=total)), *part]
        messages.append({"text": text, "blocks": part})
    return messages


def chart_texts(digest: Digest, locale: str) -> tuple[str, str]:
    """(file title, alt text) of the digest's chart."""
    return (
        _digest_title(digest, locale),
        t("slack.digest.chart_alt", locale),
    )


# --- deliberation --------------------------------------------------------------------
OPINION_PREVIEW = 200


def _who(item: OpinionView, locale: str) -> str:
    """A pseudonym ("시민 4821"), never a name or a channel."""
    if item.alias is None:
        return t("disc.forum_citizen", locale)
    return t("disc.citizen", locale, number=alias_label(item.alias))


def _stance_counts(summary: DiscussionSummary, locale: str) -> str:
    by = summary.by_stance
    return t("disc.slack.counts", locale, opinions=summary.opinions, replies=summary.replies,
             **{"for": by.get(Stance.FOR.value, 0)}, against=by.get(Stance.AGAINST.value, 0),
             other=by.get(Stance.OTHER.value, 0))


def _opinion_lines(items: Sequence[OpinionView], locale: str) -> list[str]:
    if not items:
        return [t("disc.slack.none", locale)]
    return [t("disc.slack.opinion_line", locale, who=_who(o, locale), supports=o.support_count,
              body=esc(clip(o.body, OPINION_PREVIEW))) for o in items]


def discussion_alert_message(alert: DiscussionAlert, locale: str) -> Message:
    """A proposal reached the support threshold: counts by stance, the most supported opinions
    for and against (citizen text escaped, pseudonyms only)."""
    s = alert.summary
    title = esc(clip(s.title, 100))
    blocks: list[Block] = [
        {"type": "header", "text": _plain(t("disc.slack.threshold_title", locale,
                                            tracking=s.tracking))},
        _section(t("disc.slack.threshold", locale, tracking=s.tracking, title=title,
                   count=alert.support_count, threshold=alert.threshold,
                   status=_status(ProposalStatus.UNDER_REVIEW, locale))),
        _context(_stance_counts(s, locale)),
        *_sections(_opinion_lines(s.top_for, locale), t("disc.slack.top_for", locale)),
        *_sections(_opinion_lines(s.top_against, locale), t("disc.slack.top_against", locale)),
    ]
    return {"text": t("disc.slack.fallback", locale, tracking=s.tracking, title=title),
            "blocks": blocks}


def _discussion_group(
    discussions: Sequence[DiscussionSummary], locale: str
) -> tuple[str, list[str]]:
    lines: list[str] = []
    for s in discussions:
        by = s.by_stance
        lines.append(t("disc.slack.digest_line", locale, tracking=s.tracking,
                       title=esc(clip(s.title, 80)), opinions=s.opinions,
                       **{"for": by.get(Stance.FOR.value, 0)},
                       against=by.get(Stance.AGAINST.value, 0),
                       other=by.get(Stance.OTHER.value, 0)))
        for stance, best in ((Stance.FOR, s.top_for), (Stance.AGAINST, s.top_against)):
            for o in best[:1]:
                lines.append(t("disc.slack.digest_top", locale,
                               stance=t(f"disc.stance.{stance.value}", locale),
                               supports=o.support_count, body=esc(clip(o.body, 120))))
    return t("disc.slack.digest_head", locale, count=len(discussions)), lines
