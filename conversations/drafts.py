"""Drafts: what a person was writing survives leaving the flow, and deleting it asks first.

A flow with ``draft_keys`` (intake) keeps its ``data`` in ``state["drafts"][flow]`` when the
person goes elsewhere (menu, help, a deep link, a pushed survey's button); the flow offers
it back when it starts again. "취소" in such a flow asks "지울까요?" first; only "네" deletes.
"""

from __future__ import annotations

from typing import Any

from conversations.flow import Flow
from conversations.matching import is_word

__all__ = ["CONFIRM_KEY", "DELETE_NO", "DELETE_YES", "answer", "has_content", "keep"]

CONFIRM_KEY = "confirm_delete"
DELETE_YES, DELETE_NO = "delete:yes", "delete:no"


def has_content(flow: Flow | None, data: dict[str, Any] | None) -> bool:
    return bool(flow and flow.draft_keys and data and any(data.get(k) for k in flow.draft_keys))


def keep(state: dict[str, Any], flow: Flow | None) -> None:
    """Called before a flow's data is replaced: keep it if it holds anything typed."""
    data = state.get("data")
    if flow is not None and has_content(flow, data):
        assert data is not None
        state.setdefault("drafts", {})[flow.name] = {
            k: v for k, v in data.items() if k in flow.draft_keys and v
        }


def answer(payload_id: str | None, typed: str | None) -> bool | None:
    """The answer to "delete?": True, False, or None (something else: handle it as usual)."""
    if payload_id == DELETE_YES or (typed and is_word(typed, "conv.words.agree")):
        return True
    if payload_id == DELETE_NO or (typed and is_word(typed, "conv.words.decline")):
        return False
    return None
