"""Similar proposals: the labelled Korean pairs on SQLite (FTS5 trigram) and PostgreSQL (pg_trgm).

Prints precision@3 and recall@3 (run with ``-s`` to see them) and holds them to the issue's
aim (≥ 0.8 / ≥ 0.9). Also: the index follows edits and deletions, hostile text is harmless.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import delete, update

from core import commands as c
from core.adapters.orm import Proposal
from core.bootstrap import Core
from core.similarity import bigrams, normalise, query_trigrams

PAIRS = Path(__file__).with_name("similarity_pairs.yaml")


def load() -> dict[str, Any]:
    return yaml.safe_load(PAIRS.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


async def seed(core: Core, existing: dict[str, dict[str, str]]) -> dict[str, str]:
    pid = await core.execute(c.EnsureIdentity(channel="web", external_id="seed", address="a"))
    tracking_of: dict[str, str] = {}
    for key, p in existing.items():
        tracking_of[key] = await core.execute(
            c.SubmitProposal(person_id=pid, title=p["title"], body=p["body"], category="other")
        )
    return tracking_of


def test_the_set_is_big_and_varied() -> None:
    data = load()
    pairs = data["pairs"]
    assert len(pairs) >= 60
    kinds = {p["kind"] for p in pairs}
    assert kinds == {"paraphrase", "spacing", "unrelated"}
    assert all(p["existing"] in data["existing"] for p in pairs)


def test_normalising_ignores_spacing_and_middle_dots() -> None:
    assert normalise("횡단 보도 · 신호") == normalise("횡단보도신호")
    assert normalise("ＣＣＴＶ 설치!") == "cctv설치"
    assert "주세" not in bigrams("설치해 주세요")
    assert query_trigrams("복지") == []  # two syllables: no trigram (lookup falls back)


async def test_precision_and_recall_at_3(core: Core) -> None:
    data = load()
    tracking_of = await seed(core, data["existing"])
    key_of = {v: k for k, v in tracking_of.items()}
    queries: dict[tuple[str, str], set[str]] = {}
    for pair in data["pairs"]:
        same = queries.setdefault((pair["title"], pair["body"]), set())
        if pair["same"]:
            same.add(pair["existing"])
    shown = correct = relevant = found = 0
    misses: list[str] = []
    for (title, body), same in queries.items():
        matches = await core.similar.find(title, body, limit=3)
        keys = [key_of[m.summary.tracking] for m in matches]
        shown += len(keys)
        correct += sum(1 for k in keys if k in same)
        relevant += len(same)
        found += len(same & set(keys))
        if set(keys) != same:
            misses.append(f"{title}: expected {sorted(same)}, got {keys}")
    precision = correct / shown if shown else 1.0
    recall = found / relevant
    report = {
        "backend": core.db.dialect,
        "pairs": len(data["pairs"]),
        "queries": len(queries),
        "precision_at_3": round(precision, 3),
        "recall_at_3": round(recall, 3),
    }
    print("\nsimilarity", json.dumps(report), *misses, sep="\n  ")
    assert precision >= 0.8, report
    assert recall >= 0.9, report


async def test_the_index_follows_edits_and_deletions(core: Core) -> None:
    tracking = (
        await seed(
            core, {"a": {"title": "버스 정류장 의자 설치", "body": "정류장에 의자를 놓아 주세요."}}
        )
    )["a"]
    assert [m.summary.tracking for m in await core.similar.find("버스정류장 의자")] == [tracking]
    async with core.db.write() as s:
        await s.execute(
            update(Proposal)
            .where(Proposal.tracking == tracking)
            .values(title="공원 가로등 설치", body="산책로가 어둡습니다. 가로등을 달아 주세요.")
        )
    assert await core.similar.find("버스정류장 의자") == []
    assert [m.summary.tracking for m in await core.similar.find("공원 가로등")] == [tracking]
    async with core.db.write() as s:
        await s.execute(delete(Proposal).where(Proposal.tracking == tracking))
    assert await core.similar.find("공원 가로등") == []


async def test_hostile_queries_are_harmless(core: Core) -> None:
    await seed(
        core, {"a": {"title": "버스 정류장 의자 설치", "body": "정류장에 의자를 놓아 주세요."}}
    )
    for query in [
        '" OR 1=1 --',
        "'; DROP TABLE proposals; --",
        "NEAR(a b)",
        "*",
        "가" * 5000,
        "\x00\x01",
        '"""',
        "%_%",
    ]:
        assert isinstance(await core.similar.find(query, query), list)
        assert isinstance(await core.similar.search(query), list)
    assert len(await core.similar.find("버스 정류장 의자")) == 1


async def test_search_serves_lookup(core: Core) -> None:
    tracking = (
        await seed(core, {"a": {"title": "횡단보도 신호 시간 연장", "body": "초록불이 짧습니다."}})
    )["a"]
    assert [p.tracking for p in await core.similar.search("횡단 보도 신호")] == [tracking]
    assert await core.similar.search("어린이집 대기") == []
