"""Issue 5's first "Done when", on the real server: a campaigner defines a 3-question survey in
YAML and pushes it to a segment with quiet hours on; citizens on the web chat answer it through
the engine; results and the chart reach them after close; opted-out citizens receive nothing.
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bots.server import create_app
from core.adapters.orm_delivery import Delivery
from core.bootstrap import bootstrap
from core.campaigns import commands as c
from core.campaigns.model import Segment
from tests.campaign_support import SURVEY_YAML, drain
from tests.conftest import make_settings
from tests.e2e.test_web_api import Citizen, next_event
from tests.support import ManualClock

# The clock starts at 12:00 in Seoul on 2026-11-26; the survey closes the next evening.
YAML = SURVEY_YAML.replace("closes_at: 2027-12-31 18:00", "closes_at: 2026-11-27 18:00")


async def inbox(client: TestClient, citizen: Citizen, wanted: str) -> dict[str, Any]:
    """The first message pushed to a citizen's page containing ``wanted`` (read over the SSE
    stream from the start, as a page that comes back does)."""
    stream = await client.get("/webchat/events", params={"session": citizen.token, "after": "0"})
    assert stream.status == 200
    try:
        while True:
            event = await next_event(stream, wait=5.0)
            for reply in event["replies"]:
                if wanted in reply["text"]:
                    return reply  # type: ignore[no-any-return]
    finally:
        stream.close()


async def subscribe(citizen: Citizen, topic: str) -> None:
    await citizen.say("수신동의")
    assert "정부 소식을 받기로 하셨습니다" in citizen.text
    await citizen.pick("consent:topics")
    await citizen.pick(f"sub:category:{topic}")
    await citizen.pick("sub:done")


async def sent_to(core: Any) -> dict[str, str]:
    async with core.db.read() as s:
        rows = await s.execute(select(Delivery.address, Delivery.status)
                               .where(Delivery.push_id.is_not(None)))
        return dict(rows.all())


async def test_campaign_survey_end_to_end(tmp_path: Path, database_url: str) -> None:
    clock = ManualClock()
    settings = make_settings(tmp_path, database_url=database_url,
                             quiet_hours_start=time(21, 0), quiet_hours_end=time(8, 0))
    core = await bootstrap(settings, clock=clock)
    service = core.campaigns
    async with TestClient(TestServer(create_app(settings, core=core))) as client:
        riders = [await Citizen(client).open() for _ in range(2)]
        for rider in riders:
            await subscribe(rider, "transport")
        quitter = await Citizen(client).open()
        await subscribe(quitter, "transport")
        await quitter.pick("menu:main")
        await quitter.pick("menu:submit")  # in the middle of something else …
        await quitter.say("STOP")  # … and out, at once
        assert "정부 소식을 더 보내 드리지 않겠습니다" in quitter.text
        farmer = await Citizen(client).open()
        await subscribe(farmer, "economy")  # another topic: not in the segment
        silent = await Citizen(client).open()  # never consented

        # The campaigner: a YAML survey, a push to the transport segment, at 22:00 (quiet).
        survey_id = await service.create_survey_from_yaml(YAML, actor="cli")
        push_id = await core.execute(c.CreatePush(
            name="정류장 설문", message={"ko": "정류장 설문에 참여해 주세요.",
                                    "en": "Please take our bus stop survey."},
            survey_id=survey_id, segment=Segment(topics=("transport",), channels=("web",)),
            actor="cli"))
        clock.current = clock.current.replace(hour=13)  # 22:00 in Seoul
        dry = await service.dry_run(push_id)
        assert dry.audience == 2 and dry.quiet_until is not None
        assert await core.execute(c.StartPush(push_id=push_id, actor="cli")) == "running"
        await service.tick()
        await drain(core)
        assert set((await sent_to(core)).values()) == {"pending"}  # held until 08:00
        assert len(await sent_to(core)) == 2  # the riders only

        clock.advance(hours=10, minutes=1)  # 08:01 the next morning
        await drain(core)
        await service.tick()
        assert set((await sent_to(core)).values()) == {"sent"}
        assert (await service.progress(push_id)).status == "done"

        answers = (("버스", "5", "그늘막"), ("지하철", "2", None))
        for rider, (mode, score, comment) in zip(riders, answers, strict=True):
            pushed = await inbox(client, rider, "정류장 설문에 참여해 주세요.")
            assert pushed["kind"] == "push"
            rider.replies = [pushed]
            await rider.pick(f"sv:{survey_id}:start")
            assert "질문 1/3" in rider.text
            await rider.say(mode)
            await rider.say(score)
            assert "질문 3/3" in rider.text
            await rider.say(comment or "건너뛰기")
            assert "소중한 의견 감사합니다" in rider.text

        for outsider in (quitter, farmer, silent):  # nothing was ever queued for them
            await outsider.say("도움말")
        assert len(await sent_to(core)) == 2

        clock.current = datetime(2026, 11, 27, 9, 5, tzinfo=UTC)  # 18:05 in Seoul: closed
        await service.tick()
        results = await service.results(survey_id)
        assert results.status == "closed" and results.ballots == 2
        assert results.questions[0].counts == (1, 1, 0, 0)
        await drain(core)
        for rider in riders:
            final = await inbox(client, rider, "최종 결과")
            assert "(참여 2명)" in final["text"] and "버스" in final["text"]
        async with core.db.read() as s:
            payloads = (await s.execute(select(Delivery.payload, Delivery.address)
                                        .where(Delivery.push_id.is_(None),
                                               Delivery.kind == "push"))).all()
        assert len(payloads) == 2
        assert all(p.payload["image"]["png"] for p in payloads)  # the bar chart
        csv_text = await service.export_csv(survey_id)
        assert "person_id" not in csv_text and "그늘막" in csv_text
