"""Per-person action limits (proposals a day, comments a minute) and per-address session limits.

Through the real engine on SQLite and PostgreSQL; the limiter itself on memory and on Redis
shared by two "processes" (two ``Limits`` on one prefix).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from bots.server import conversation_engine
from core import commands as c
from core.adapters.orm import Feedback, Proposal
from core.bootstrap import Core
from core.limits import Limits, Rule, wait_text
from core.ratelimit import MemoryRateLimiter, RedisRateLimiter
from tests.support_chat import Chat

TITLE = "버스 정류장에 그늘막을 설치해 주세요"
BODY = "여름마다 버스를 기다리는 시민들이 햇볕에 너무 오래 노출됩니다. 그늘막이 필요합니다."


class Tick:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _limits(core: Core, tick: Tick, **settings: int) -> Limits:
    for name, value in settings.items():
        setattr(core.settings, name, value)
    limits = Limits(MemoryRateLimiter(now=tick), settings=core.settings)
    core.limits = limits
    return limits


async def _draft(chat: Chat, title: str) -> None:
    await chat.command("new")
    if "draft:new" in chat.choice_ids:  # a kept draft: start a new one
        await chat.pick("draft:new")
    await chat.send(title)
    await chat.send(BODY)
    if "sim:new" in chat.choice_ids:  # an earlier draft of this test reads alike
        await chat.pick("sim:new")
    await chat.pick("cat:transport")
    await chat.send("서울")
    await chat.pick("ext:done")
    assert "rev:confirm" in chat.choice_ids


async def _count(core: Core, table: type) -> int:
    async with core.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(table))).scalar_one())


async def test_proposals_per_day_refused_politely_and_the_draft_kept(core: Core) -> None:
    tick = Tick()
    _limits(core, tick, proposals_per_day=2)
    chat = Chat(conversation_engine(core))
    await chat.command("start")
    for n in range(2):
        await _draft(chat, f"{TITLE} {n}")
        await chat.pick("rev:confirm")
        assert "제출했습니다" in chat.text
    await _draft(chat, f"{TITLE} 셋째")
    await chat.pick("rev:confirm")
    assert "제안은 하루에 2건까지 보낼 수 있습니다" in chat.text
    assert "약 24시간 뒤에 다시 보내 주세요" in chat.text
    assert "rev:confirm" in chat.choice_ids  # still at the review, the draft intact
    assert await _count(core, Proposal) == 2
    # A day later the same draft goes through with one press.
    tick.now += 86400.5
    await chat.pick("rev:confirm")
    assert "제출했습니다" in chat.text
    assert await _count(core, Proposal) == 3


async def test_the_refusal_is_in_the_persons_language(core: Core) -> None:
    tick = Tick()
    _limits(core, tick, proposals_per_day=1)
    chat = Chat(conversation_engine(core), locale="en")
    await chat.command("start")
    await chat.pick("lang:en")
    await _draft(chat, TITLE)
    await chat.pick("rev:confirm")
    await _draft(chat, TITLE + " again")
    await chat.pick("rev:confirm")
    assert "You have reached the limit of proposals (1 a day)" in chat.text
    assert "in about 24 hours" in chat.text


async def test_comments_per_minute(core: Core) -> None:
    tick = Tick()
    _limits(core, tick, comments_per_minute=2)
    author = await core.execute(c.EnsureIdentity(channel="web", external_id="a", address="a"))
    tracking = await core.execute(
        c.SubmitProposal(person_id=author, title=TITLE, body=BODY, category="transport")
    )
    chat = Chat(conversation_engine(core))
    await chat.send(tracking)
    for n in range(2):
        await chat.pick(f"p:{tracking}:feedback")
        await chat.send(f"좋은 제안입니다 {n}")
        assert "의견을 남겼습니다" in chat.text
    await chat.pick(f"p:{tracking}:feedback")
    await chat.send("세 번째 의견입니다")
    assert "의견은 1분에 2건까지 남길 수 있습니다. 1분 뒤에 다시 보내 주세요." in chat.text
    assert await _count(core, Feedback) == 2
    tick.now += 61
    await chat.send("세 번째 의견입니다")
    assert "의견을 남겼습니다" in chat.text
    assert await _count(core, Feedback) == 3


async def test_limits_are_per_person(core: Core) -> None:
    tick = Tick()
    _limits(core, tick, proposals_per_day=1)
    first, second = Chat(conversation_engine(core), user_id="u1"), Chat(
        conversation_engine(core), user_id="u2"
    )
    for chat in (first, second):
        await chat.command("start")
        await _draft(chat, TITLE)
        await chat.pick("rev:confirm")
        assert "제출했습니다" in chat.text


def test_wait_texts() -> None:
    assert wait_text(0.2, "ko") == "1초"
    assert wait_text(1, "en") == "1 second"
    assert wait_text(59.5, "en") == "60 seconds"
    assert wait_text(61, "en") == "2 minutes"
    assert wait_text(3600, "en") == "about 1 hour"
    assert wait_text(86400, "ko") == "약 24시간"


@pytest.fixture(params=["memory", "redis"])
async def shared(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Limits, Limits]]:
    """Two limiters that share their windows (one process; or two on one Redis prefix)."""
    from core.config import Settings

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, web_sessions_per_address_per_minute=3, web_sessions_per_minute=8
    )
    if request.param == "memory":
        one = Limits(MemoryRateLimiter(), settings=settings)
        yield one, one
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"t:{uuid.uuid4().hex}"
    a = Limits(RedisRateLimiter.from_url(url, prefix=prefix), settings=settings)
    b = Limits(RedisRateLimiter.from_url(url, prefix=prefix), settings=settings)
    try:
        yield a, b
    finally:
        redis = a.limiter.redis  # type: ignore[attr-defined]
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await a.close()
        await b.close()


async def test_new_sessions_per_address_are_shared(shared: tuple[Limits, Limits]) -> None:
    a, b = shared
    assert [(await a.new_session("203.0.113.7")).allowed for _ in range(2)] == [True, True]
    assert (await b.new_session("203.0.113.7")).allowed
    room = await b.new_session("203.0.113.7")
    assert 50 < room.wait <= 60  # the fourth within a minute waits for the first to leave
    assert not room.everyone
    assert not (await a.new_session("203.0.113.7")).allowed
    assert (await a.new_session("198.51.100.1")).allowed  # another address has its own room


async def test_new_sessions_from_all_addresses_have_one_cap(
    shared: tuple[Limits, Limits],
) -> None:
    a, b = shared
    for n in range(4):  # 8 in all per minute: 2 from each of four addresses, in two processes
        assert (await a.new_session(f"198.18.0.{n}")).allowed
        assert (await b.new_session(f"198.18.0.{n}")).allowed
    room = await b.new_session("198.18.0.99")  # a fresh address: its own room, but no one's
    assert room.everyone
    assert 50 < room.wait <= 60
    assert (await a.new_session("198.18.0.99")).everyone
    # The refused address got its places back: once the cap has room it has all 3 of its own.
    b.sessions_all = Rule("sessions:all", 100, 60.0)
    a.sessions_all = b.sessions_all
    assert [(await a.new_session("198.18.0.99")).allowed for _ in range(3)] == [True] * 3
    room = await a.new_session("198.18.0.99")
    assert not room.allowed
    assert not room.everyone  # now it is the address's own limit


async def test_a_limiter_that_fails_lets_people_through(core: Core) -> None:
    class Broken(MemoryRateLimiter):
        async def try_take(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
            raise ConnectionError("redis is down")

    limits = Limits(Broken(), settings=core.settings)
    assert (await limits.new_session("203.0.113.7")).allowed


async def test_statements_share_the_comment_limit(core: Core) -> None:
    from core.deliberation.commands import AddStatement
    from core.limits import Limited

    limits = _limits(core, Tick(), comments_per_minute=2)
    await limits.check(AddFeedback_(person_id=7))
    await limits.check(AddStatement(tracking="P-2026-000001", text="의견", person_id=7))
    with pytest.raises(Limited) as refused:
        await limits.check(AddStatement(tracking="P-2026-000001", text="또", person_id=7))
    assert refused.value.key == "limits.comments_per_minute"
    await limits.check(AddStatement(tracking="P-2026-000001", text="관리자", actor="slack:U1"))


def AddFeedback_(*, person_id: int) -> c.AddFeedback:  # noqa: N802 - a small builder
    return c.AddFeedback(tracking="P-2026-000001", body="좋습니다", person_id=person_id)
