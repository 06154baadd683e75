"""docs/forum-openapi.yaml is valid OpenAPI 3.1, and the wire parser accepts what it allows.

openapi-spec-validator checks the document against the OpenAPI 3.1 schema; jsonschema (its
dependency, Draft 2020-12 as OpenAPI 3.1 uses) checks each sample event against the contract's
``Event`` schema before the parser sees it, so the parser is held to the contract, not to itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

from core.adapters import forum_wire as wire
from core.adapters.forum_http import HttpForum
from tests.fakes.forum import FakeForum

SPEC_PATH = Path(__file__).parents[2] / "docs" / "forum-openapi.yaml"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    document, _ = read_from_filename(str(SPEC_PATH))
    return dict(document)


def event_validator(spec: dict[str, Any]) -> Draft202012Validator:
    schema = {"$ref": "#/components/schemas/Event", "components": spec["components"]}
    return Draft202012Validator(schema, format_checker=FormatChecker())


def test_the_contract_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)  # raises OpenAPIValidationError with the failing path
    # every description is text (an unquoted comma in a YAML flow mapping splits it into keys)
    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                assert value is not None, f"{path}/{key} is empty (an unquoted comma?)"
                if key == "description":
                    assert isinstance(value, str), f"{path}/{key}"
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")
    walk(spec, "")


def test_parser_caps_are_the_contracts(spec: dict[str, Any]) -> None:
    props = spec["components"]["schemas"]["Event"]["properties"]
    schemas = spec["components"]["schemas"]
    assert props["id"]["maxLength"] == wire.ID_MAX
    assert schemas["ForumId"]["maxLength"] == wire.FORUM_ID_MAX
    assert props["comment_id"]["maxLength"] == wire.FORUM_ID_MAX
    assert props["external_ref"]["maxLength"] == wire.EXTERNAL_REF_MAX
    assert schemas["AuthorRef"]["maxLength"] == wire.AUTHOR_REF_MAX
    assert set(props["type"]["enum"]) == set(wire.KINDS)
    assert set(schemas["Status"]["enum"]) == set(wire.STATUSES)


def _valid_events() -> list[dict[str, Any]]:
    longest = {
        "id": "e" * wire.ID_MAX, "type": "comment_added", "proposal_id": "F" * wire.FORUM_ID_MAX,
        "external_ref": "x" * wire.EXTERNAL_REF_MAX, "version": 2**53,
        "comment_id": "C" * wire.FORUM_ID_MAX, "body": "<&>" * 1666 + "가",
        "author_ref": "a" * wire.AUTHOR_REF_MAX, "occurred_at": "2026-11-26T03:00:00.123456789Z",
    }
    out = [longest]
    for stamp in ("2026-11-26t03:00:00z", "2026-11-26T12:00:00+09:00", "2026-11-26T03:00:00-00:00",
                  "2026-11-26T03:00:00.5+05:30"):
        out.append({"id": f"e-{stamp}", "type": "status_changed", "proposal_id": "7",
                    "version": 1, "status": "accepted", "occurred_at": stamp})
    out.append({"id": "e-min", "type": "answered", "proposal_id": "7", "version": 1, "body": "x"})
    out.append({"id": "e-date", "type": "status_changed", "proposal_id": "7", "version": 3,
                "status": "forwarded", "expected_date": "2027-01-15", "reason": "r" * 5000})
    return out


def test_parser_accepts_every_event_the_contract_allows(spec: dict[str, Any]) -> None:
    validator = event_validator(spec)
    for event in _valid_events():
        assert not list(validator.iter_errors(event)), event["id"][:20]  # the contract allows it
        change = wire.change_from_wire(event)
        assert change.event_id == event["id"] and change.version == event["version"]
    lower = wire.change_from_wire(_valid_events()[1])
    assert lower.at is not None and lower.at.utcoffset() is not None and lower.at.hour == 3


def test_parser_refuses_what_the_contract_refuses(spec: dict[str, Any]) -> None:
    validator = event_validator(spec)
    base = {"id": "e", "type": "status_changed", "proposal_id": "7", "version": 1,
            "status": "accepted"}
    bad = [
        {**base, "id": "e" * (wire.ID_MAX + 1)},
        {**base, "proposal_id": "F" * (wire.FORUM_ID_MAX + 1)},
        {**base, "external_ref": "x" * (wire.EXTERNAL_REF_MAX + 1)},
        {**base, "version": 0},
        {**base, "status": "teleported"},
        {**base, "reason": "r" * 5001},
        {**base, "author_ref": "a" * (wire.AUTHOR_REF_MAX + 1)},
    ]
    for event in bad:
        assert list(validator.iter_errors(event))
        with pytest.raises(ValueError):
            wire.change_from_wire(event)
    for stamp in ("yesterday", "2026-11-26", "2026-11-26T03:00Z"):
        with pytest.raises(ValueError):
            wire.change_from_wire({**base, "occurred_at": stamp})


@pytest.fixture
async def forum() -> AsyncIterator[FakeForum]:
    fake = FakeForum(token="t")
    await fake.start()
    yield fake
    await fake.stop()


async def test_one_bad_event_never_blocks_the_feed(forum: FakeForum) -> None:
    forum.events.extend([
        {"id": "ev-1", "type": "status_changed", "proposal_id": "7", "version": 1,
         "status": "accepted"},
        {"id": "ev-2", "type": "status_changed", "proposal_id": "7", "version": 2,
         "status": "moved-to-mars"},
        "not even an object",
        {"id": "ev-3", "type": "comment_added", "proposal_id": "7", "version": 3,
         "comment_id": "C-1", "body": "hi"},
    ])
    http = HttpForum(base_url=forum.url, token="t", timeout=2)
    try:
        changes, cursor = await http.changes_since(None)
        assert [c.event_id for c in changes] == ["ev-1", "ev-3"]
        assert cursor == "4"  # past the bad ones: the next read does not meet them again
        assert [(s.event_id, "status" in s.problem) for s in http.skipped] == [
            ("ev-2", True), ("?", False)
        ]
        again, same = await http.changes_since(cursor)
        assert list(again) == [] and same == "4"
    finally:
        await http.close()
