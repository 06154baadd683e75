"""Masking personal data as the citizen types it, and the note that tells them what was hidden.

Flows call ``mask_field`` on every free text *before* keeping it in the conversation state, so the
original never reaches a store; the core masks again in its handlers (defence in depth).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from core.i18n import t
from core.privacy.pii import KINDS, mask

if TYPE_CHECKING:
    from conversations.flow import Ctx

__all__ = ["mask_field", "masked_note", "masked_summary"]

_KEY = "masked"  # ctx.data[_KEY] = {field: {kind: count}}


def masked_note(findings: Mapping[str, int], locale: str) -> str:
    """"개인정보로 보이는 부분을 가렸습니다: 전화번호 1건", or "" when nothing was hidden."""
    items = [
        t(f"privacy.masked.kind.{kind}.{'one' if findings[kind] == 1 else 'other'}", locale,
          count=findings[kind])
        for kind in KINDS
        if findings.get(kind)
    ]
    if not items:
        return ""
    return t("privacy.masked.note", locale, items=t("privacy.masked.sep", locale).join(items))


def mask_field(ctx: Ctx, field: str, text: str) -> str:
    """The masked ``text``; what was hidden in ``field`` is remembered for the review screen."""
    masked, findings = mask(text)
    notes = ctx.data.setdefault(_KEY, {})
    if findings:
        notes[field] = findings
    else:
        notes.pop(field, None)
    return masked


def masked_summary(ctx: Ctx) -> str:
    """The note for every field of the draft together (empty when nothing was hidden)."""
    total: dict[str, int] = {}
    for findings in (ctx.data.get(_KEY) or {}).values():
        for kind, count in findings.items():
            total[kind] = total.get(kind, 0) + int(count)
    return masked_note(total, ctx.locale)
