"""Sync pieces on their own: signatures, the wire format, backoff, author refs, local mode, CLI."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from sqlalchemy import func, select

from bots.server import create_app
from core import commands as c
from core.adapters.forum_wire import change_from_wire, change_to_wire
from core.adapters.orm_sync import SyncOutbox
from core.bootstrap import Core, bootstrap
from core.i18n import catalog, placeholders
from core.outbox import Backoff
from core.ports import ForumChange
from core.sync.inbound import sign, verify_signature
from core.sync.outbox import AuthorRefs
from tests.conftest import make_settings
from tests.support import ManualClock

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
TS = str(int(NOW.timestamp()))


def test_signature_accepts_only_fresh_authentic_requests() -> None:
    body = b'{"id":"evt_1"}'
    good = sign("s3cret", TS, body)
    ok = verify_signature(secret="s3cret", timestamp=TS, signature=good, body=body, now=NOW)
    assert ok is None
    assert verify_signature(
        secret="s3cret", timestamp=TS, signature=f"v1=deadbeef, {good}", body=body, now=NOW
    ) is None  # a rotation may send several
    cases = {
        "bad signature": dict(signature=sign("other", TS, body)),
        "unsigned": dict(signature=None),
        "bad timestamp": dict(timestamp="12ab"),
        "stale timestamp": dict(timestamp=str(int(NOW.timestamp()) - 301)),
    }
    for expected, change in cases.items():
        args = dict(secret="s3cret", timestamp=TS, signature=good, body=body, now=NOW)
        args.update(change)
        assert verify_signature(**args) == expected  # type: ignore[arg-type]
    tampered = body.replace(b"1", b"2")
    assert verify_signature(
        secret="s3cret", timestamp=TS, signature=good, body=tampered, now=NOW
    ) == "bad signature"
    future = NOW + timedelta(seconds=299)
    assert verify_signature(secret="s3cret", timestamp=TS, signature=good, body=body,
                            now=future) is None


def test_wire_round_trip_and_refusals() -> None:
    change = ForumChange(
        kind="status_changed", forum_id="F-1", tracking="P-2026-000001", version=3,
        status="accepted", reason="채택", event_id="evt_9", at=NOW,
    )
    assert change_from_wire(json.loads(json.dumps(change_to_wire(change)))) == change
    bad = [
        {},
        {"id": "e", "type": "nope", "proposal_id": "F", "version": 1},
        {"id": "e", "type": "status_changed", "proposal_id": "F", "version": 0, "status": "x"},
        {"id": "e", "type": "status_changed", "proposal_id": "F", "version": 2,
         "status": "teleported"},
        {"id": "e", "type": "comment_added", "proposal_id": "F", "version": 2, "body": "hi"},
        {"id": "e", "type": "answered", "proposal_id": "F", "version": True, "body": "x"},
    ]
    for obj in bad:
        with pytest.raises(ValueError):
            change_from_wire(obj)


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    backoff = Backoff(base=2.0, cap=60.0, rng=random.Random(7))
    delays = [backoff.delay(n).total_seconds() for n in range(1, 10)]
    for n, delay in enumerate(delays, start=1):
        raw = min(60.0, 2.0 * 2 ** (n - 1))
        assert raw / 2 <= delay < raw
    assert max(delays) < 60.0 and len(set(delays)) == len(delays)


def test_author_refs_are_stable_and_pseudonymous() -> None:
    refs = AuthorRefs("key-1")
    assert refs(42) == refs(42) != refs(43)
    assert refs(42).startswith("gongnon:") and len(refs(42)) == len("gongnon:") + 24
    assert AuthorRefs("key-2")(42) != refs(42)


def test_catalogs_have_the_same_keys_and_placeholders() -> None:
    ko = {k: v for k, v in catalog("ko").items() if k.startswith("sync.")}
    en = {k: v for k, v in catalog("en").items() if k.startswith("sync.")}
    assert ko.keys() == en.keys() and ko
    for key in ko:
        assert placeholders(ko[key]) == placeholders(en[key]), key


async def test_local_backend_writes_no_outbox_and_is_healthy(core: Core) -> None:
    pid = await core.execute(c.EnsureIdentity(channel="web", external_id="a", address="a"))
    tracking = await core.execute(c.SubmitProposal(
        person_id=pid, title="공원 벤치 교체", body="공원 벤치가 낡아서 앉기 어렵습니다.",
        category="environment",
    ))
    await core.execute(c.AddFeedback(person_id=pid, tracking=tracking, body="사진도 있어요"))
    async with core.db.read() as s:
        assert (await s.execute(select(func.count(SyncOutbox.id)))).scalar_one() == 0
    sync = core.sync
    assert not sync.enabled and await sync.relay.drain() == 0
    assert await core.health["sync"]() == {"status": "ok", "backend": "local"}


async def test_outbox_row_commits_with_the_action_or_not_at_all(
    database_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    core = await bootstrap(make_settings(
        tmp_path, database_url=database_url, forum_backend="http", forum_url="http://127.0.0.1:9",
    ), clock=clock)
    try:
        pid = await core.execute(c.EnsureIdentity(channel="web", external_id="a", address="a"))
        with pytest.raises(Exception):  # noqa: B017 - any validation error: nothing is written
            await core.execute(c.SubmitProposal(person_id=pid, title="짧", body="x" * 30,
                                                category="other"))
        tracking = await core.execute(c.SubmitProposal(
            person_id=pid, title="공원 벤치 교체", body="공원 벤치가 낡아서 앉기 어렵습니다.",
            category="environment",
        ))
        await core.execute(c.WithdrawProposal(person_id=pid, tracking=tracking))
        async with core.db.read() as s:
            rows = (await s.execute(select(SyncOutbox).order_by(SyncOutbox.id))).scalars().all()
        kinds = [(r.kind, r.tracking) for r in rows]
        assert kinds == [("create", tracking), ("withdraw", tracking)]
        assert rows[0].payload["author_ref"].startswith("gongnon:")
    finally:
        await core.stop()


def test_cli_status_and_retry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    from bots.cli import main

    monkeypatch.setenv("GONGNON_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GONGNON_FORUM_BACKEND", "http")
    monkeypatch.setenv("GONGNON_FORUM_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("GONGNON_DEFAULT_LOCALE", "en")
    monkeypatch.chdir(tmp_path)  # no stray .env
    assert main(["sync", "status"]) == 0
    out = capsys.readouterr().out
    assert "Outbox depth: 0" in out and "Dead letters: 0" in out and "Last cursor: none" in out
    assert main(["sync", "status", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backend"] == "http" and info["outbox_depth"] == 0
    assert main(["sync", "retry"]) == 0
    assert "No dead letters" in capsys.readouterr().out
    assert main(["sync", "run", "--once"]) == 0
    assert "Rows processed: 0" in capsys.readouterr().out


async def test_healthz_reports_a_degraded_sync(tmp_path: Path, clock: ManualClock) -> None:
    settings = make_settings(tmp_path, forum_backend="http", forum_url="http://127.0.0.1:9",
                             sync_degraded_after_seconds=60)
    core = await bootstrap(settings, clock=clock)
    pid = await core.execute(c.EnsureIdentity(channel="web", external_id="a", address="a"))
    await core.execute(c.SubmitProposal(
        person_id=pid, title="공원 벤치 교체", body="공원 벤치가 낡아서 앉기 어렵습니다.",
        category="environment",
    ))
    clock.advance(seconds=61)
    runner = web.AppRunner(create_app(settings, core=core), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/healthz"
        async with ClientSession() as session, session.get(url) as resp:
            body = await resp.json()
        assert resp.status == 200 and body["status"] == "degraded"
        assert body["checks"]["sync"]["status"] == "degraded"
        assert body["checks"]["sync"]["outbox_depth"] == 1
    finally:
        await runner.cleanup()


def test_openapi_contract_describes_every_operation_and_its_examples_parse() -> None:
    import yaml

    spec = yaml.safe_load((Path(__file__).parents[2] / "docs" / "forum-openapi.yaml").read_text())
    assert spec["openapi"].startswith("3.1")
    ops = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert ops == {"createProposal", "getProposal", "addFeedback", "addSupport",
                   "withdrawProposal", "changeProposalStatus", "anonymiseAuthor",
                   "listChanges"}
    for path in spec["paths"].values():
        for method, op in path.items():
            names = [p.get("$ref", "") for p in op.get("parameters", [])]
            if method == "post":
                assert "#/components/parameters/IdempotencyKey" in names
    hook = spec["webhooks"]["forumEvent"]["post"]
    headers = {p["name"] for p in hook["parameters"]}
    assert headers == {"X-Gongnon-Timestamp", "X-Gongnon-Signature"}
    examples = hook["requestBody"]["content"]["application/json"]["examples"]
    kinds = {change_from_wire(ex["value"]).kind for ex in examples.values()}
    assert kinds == {"status_changed", "answered", "comment_added"}
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
