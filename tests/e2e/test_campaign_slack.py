"""The campaigner's Slack modal through the real route and Bolt: authorization, YAML errors
back in the modal with their lines, a survey created and pushed with its progress message
updated in place, and the final results with the chart posted at close."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bots.slack.campaigns import COMMAND, VIEW, CampaignDesk
from core.campaigns import commands as c
from tests.campaign_support import SURVEY_YAML, RecordingSender, citizen, drain
from tests.channels.slack_harness import DIGEST, Harness, harness, slack_core, slack_settings
from tests.fakes.slack_api import FakeSlack, slash_command, view_submission
from tests.support import ManualClock, eventually

CAMPAIGNER = "UCAMPAIGN1"
STRANGER = "USTRANGER9"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def h(database_url: str, tmp_path: Path, clock: ManualClock,
            slack: FakeSlack) -> AsyncIterator[Harness]:
    settings = slack_settings(tmp_path, database_url, slack, slack_campaigners=CAMPAIGNER)
    async with slack_core(settings, clock) as core, harness(core, slack) as hh:
        yield hh


async def open_modal(h: Harness, user: str) -> Any:
    body, kind = slash_command(text="", user=user, response_url=h.slack.response_url())
    body = body.replace("command=%2Fgongnon&", f"command={COMMAND.replace('/', '%2F')}&")
    return await h.post(body, kind)


async def submit(h: Harness, user: str, yaml_text: str, topics: str = "") -> Any:
    view = h.slack.views[next(iter(h.slack.views))]
    values = {"yaml": {"value": {"type": "plain_text_input", "value": yaml_text}},
              "topics": {"value": {"type": "plain_text_input", "value": topics or None}},
              "channels": {"value": {"type": "plain_text_input", "value": None}}}
    body, kind = view_submission(view=view, user=user, values=values)
    return await h.post(body, kind)


async def test_only_campaigners_open_the_modal(h: Harness) -> None:
    resp = await open_modal(h, STRANGER)
    assert resp.status == 200 and "캠페인 담당자만" in await resp.text()
    assert h.slack.calls_of("views.open") == []
    resp = await open_modal(h, CAMPAIGNER)
    assert resp.status == 200
    opened = h.slack.calls_of("views.open")
    assert len(opened) == 1 and _view(opened[0])["callback_id"] == VIEW


async def test_yaml_errors_go_back_into_the_modal_with_lines(h: Harness) -> None:
    await open_modal(h, CAMPAIGNER)
    broken = SURVEY_YAML.replace("kind: scale", "kind: stars").replace("anonymous: true",
                                                                       "anonymous: maybe")
    resp = await submit(h, CAMPAIGNER, broken)
    answer = json.loads(await resp.text())
    assert answer["response_action"] == "errors"
    lines = answer["errors"]["yaml"].splitlines()
    assert any(line.startswith("14:") and "anonymous" in line for line in lines)
    assert any(line.startswith("31:") and "stars" in line for line in lines)
    resp = await submit(h, CAMPAIGNER, SURVEY_YAML, topics="trains")
    assert "transport" in json.loads(await resp.text())["errors"]["topics"]


async def test_create_push_progress_and_results(h: Harness, clock: ManualClock) -> None:
    core = h.core
    sender = RecordingSender("web")
    core.register_sender(sender)
    for name in ("a", "b", "c"):
        await citizen(core, name, topics=("transport",))
    CampaignDesk.progress_every = 0.05
    await open_modal(h, CAMPAIGNER)
    soon = SURVEY_YAML.replace("closes_at: 2027-12-31 18:00", "closes_at: 2026-11-26 18:00")
    resp = await submit(h, CAMPAIGNER, soon, topics="transport")
    assert resp.status == 200 and await resp.text() == ""
    await h.settle()
    created = await h.slack.wait_for("chat.postMessage", 2)
    assert "bus-stops-2027" in created[0]["text"] and created[0]["channel"] == CAMPAIGNER
    assert "0/3" in created[1]["text"]
    service = core.campaigns
    await service.tick()
    await drain(core)
    assert len(sender.sent) == 3
    await service.tick()

    def reported() -> bool:  # the same message, edited in place, reaches 3/3 and the report
        updates = h.slack.calls_of("chat.update")
        return bool(updates) and "결과 보고" in updates[-1]["text"]

    await eventually(reported, within=5, every=0.05)
    updates = h.slack.calls_of("chat.update")
    assert "3/3" in updates[-1]["text"] and "발송 3" in updates[-1]["text"]
    assert len({(u["channel"], u["ts"]) for u in updates}) == 1  # one message, edited

    survey_id = (await service.survey("bus-stops-2027")).id
    pid = await citizen(core, "a")
    await core.execute(c.CastBallot(survey_id=survey_id, person_id=pid, channel="web",
                                    answers={"mode": "1", "satisfaction": 5}))
    clock.advance(hours=7)  # past 18:00 in Seoul
    await service.tick()
    await core.bus.drain()
    completed = await h.slack.wait_for("files.completeUploadExternal")
    assert completed[0]["channel_id"] == DIGEST
    assert "최종 결과" in completed[0]["initial_comment"]
    assert h.slack.uploads and all(d[:8] == b"\x89PNG\r\n\x1a\n" for d in h.slack.uploads.values())
    await service.tick()  # once only, however often the tick runs
    await core.bus.drain()
    assert len(h.slack.calls_of("files.completeUploadExternal")) == 1


def _view(call: dict[str, Any]) -> dict[str, Any]:
    view = call["view"]
    return json.loads(view) if isinstance(view, str) else view  # type: ignore[no-any-return]
