"""Block Kit checked by slack_sdk's own models (``slack_sdk.models.blocks``): every block parses
to its typed model, passes the model's length and shape checks, and loses nothing on the way
(an unknown or misspelt field would be dropped by the model and differ here)."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View


def assert_blocks(blocks: list[dict[str, Any]]) -> None:
    assert 0 < len(blocks) <= 50, f"{len(blocks)} blocks"
    for raw in blocks:
        model = Block.parse(raw)
        assert model is not None and model.type == raw["type"], raw
        model.validate_json()
        assert model.to_dict() == raw, (model.to_dict(), raw)


def assert_message(message: dict[str, Any]) -> None:
    assert message.get("text"), "a message needs fallback text"
    assert_blocks(message["blocks"])


def assert_modal(view: dict[str, Any]) -> None:
    model = View(**view)
    model.validate_json()
    assert_blocks(view["blocks"])
