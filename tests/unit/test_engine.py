"""The engine's own rules: identity, deep links, locking, interceptors, routes, errors."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from bots.server import conversation_engine, flow_packs
from conversations import Engine, build_engine
from conversations.flow import Ctx, Flow, FlowPack, Interceptor, Step
from conversations.incoming import Incoming, Text
from core import commands as c
from core.bootstrap import Core
from core.messages import Choice, Reply
from core.ports import StateKey
from tests.support_chat import Chat

TITLE = "버스 정류장에 그늘막을 설치해 주세요"
BODY = "여름마다 버스를 기다리는 시민들이 햇볕에 너무 오래 노출됩니다. 그늘막이 필요합니다."


def _count_commands(core: Core, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    seen: Counter[str] = Counter()
    real = core.execute

    async def counting(command: c.Command) -> Any:
        seen[type(command).__name__] += 1
        return await real(command)

    monkeypatch.setattr(core, "execute", counting)
    return seen


async def _submit(core: Core, title: str = TITLE) -> str:
    author = await core.execute(
        c.EnsureIdentity(channel="web", external_id="author", address="a-author")
    )
    return await core.execute(  # type: ignore[no-any-return]
        c.SubmitProposal(person_id=author, title=title, body=BODY, category="transport")
    )



def with_interceptor(core: Core, fn: Interceptor) -> Engine:
    """The served engine with one more interceptor, after the features' own."""
    return build_engine(core, packs=[*flow_packs(core), FlowPack(interceptors=(fn,))])

async def test_first_contact_greets_and_identity_is_resolved_once(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _count_commands(core, monkeypatch)
    chat = Chat(conversation_engine(core), user_id="42")
    await chat.send("안녕하세요")
    assert "안녕하세요. 공론입니다." in chat.text and "무엇을 도와드릴까요?" in chat.text
    assert chat.choice_ids[:4] == ["menu:submit", "menu:mine", "menu:following", "menu:lookup"]
    for word in ("1", TITLE, BODY):
        await chat.send(word)
    assert seen["EnsureIdentity"] == 1
    state = await core.state.get(StateKey("web", "42"))
    assert state is not None and state["person_id"] > 0 and state["locale"] == "ko"
    other = Chat(conversation_engine(core), user_id="43")
    await other.command("start")
    assert seen["EnsureIdentity"] == 2


async def test_platform_language_hint_and_stored_choice(core: Core) -> None:
    engine = conversation_engine(core)
    chat = Chat(engine, channel="telegram", user_id="7", locale="en-US")
    await chat.command("start")
    assert "Hello, this is Gongnon." in chat.text
    await chat.press("Language")
    await chat.press("한국어")
    assert "한국어로 안내해 드리겠습니다." in chat.text
    await core.state.delete(StateKey("telegram", "7"))  # the conversation expired
    await chat.command("start")
    assert "안녕하세요" in chat.text  # the stored choice beats the platform's hint


async def test_start_deep_link_opens_the_proposal(core: Core) -> None:
    tracking = await _submit(core)
    chat = Chat(conversation_engine(core), channel="telegram", user_id="9")
    await chat.command("start", f"p_{tracking}")
    assert tracking in chat.text and TITLE in chat.text and "상태: 접수" in chat.text
    assert f"p:{tracking}:support" in chat.choice_ids
    await chat.command("start", "p_P-2026-999999")
    assert "찾으시는 제안이 없습니다" in chat.text


async def test_start_with_a_source_tag_keeps_it(core: Core) -> None:
    seen: list[str | None] = []

    async def spy(ctx: Ctx, incoming: Incoming) -> list[Reply] | None:
        seen.append(ctx.source)
        return None

    chat = Chat(with_interceptor(core, spy))
    await chat.command("start", "campaign_2026-spring")
    assert "무엇을 도와드릴까요?" in chat.text
    await chat.send("1")
    assert seen[-1] == "campaign_2026-spring"
    await chat.command("start", "<script>")  # not a tag: ignored, the old one stays
    await chat.send("메뉴")
    assert seen[-1] == "campaign_2026-spring"


async def test_two_fast_messages_are_serialised(core: Core) -> None:
    engine = conversation_engine(core)
    chat = Chat(engine)
    await chat.command("new")
    first, second = await asyncio.gather(
        engine.handle(chat.inbound(Text(TITLE))), engine.handle(chat.inbound(Text(BODY)))
    )
    state = await core.state.get(StateKey("web", "u1"))
    assert state is not None
    # One became the title and the other the body (either order is valid); nothing was lost.
    assert state["step"] == "category"
    assert {state["data"]["title"], state["data"]["body"]} == {TITLE, BODY}
    assert first and second


async def test_many_concurrent_turns_keep_every_update(core: Core) -> None:
    counts: Counter[str] = Counter()

    async def count(ctx: Ctx, incoming: Incoming) -> list[Reply] | None:
        if isinstance(incoming, Text) and incoming.text == "+1":
            n = int(ctx.state.get("n", 0))
            await asyncio.sleep(0)  # yield mid read-modify-write
            ctx.state["n"] = n + 1
            counts["seen"] += 1
            return [Reply(text=str(n + 1))]
        return None

    engine = with_interceptor(core, count)
    chat = Chat(engine)
    await chat.command("start")
    await asyncio.gather(*(engine.handle(chat.inbound(Text("+1"))) for _ in range(25)))
    state = await core.state.get(StateKey("web", "u1"))
    assert state is not None and state["n"] == 25 and counts["seen"] == 25


async def test_interceptor_runs_before_any_flow(core: Core) -> None:
    async def stop(ctx: Ctx, incoming: Incoming) -> list[Reply] | None:
        if isinstance(incoming, Text) and incoming.text.strip() == "#ping":
            return [Reply(text=ctx.t("conv.cancelled") + f" #{ctx.person_id}")]
        return None

    chat = Chat(with_interceptor(core, stop))
    await chat.command("new")
    await chat.send("#ping")
    assert chat.text.startswith("취소했습니다")
    await chat.send(TITLE)  # the flow was left where it was
    assert "어떻게 바뀌면 좋을지" in chat.text


async def test_a_pack_s_flow_and_route_work_from_any_state(core: Core) -> None:
    async def ask(ctx: Ctx) -> Reply:
        return Reply(
            text=f"Q{ctx.data['q']}",
            choices=(Choice(id="sv:1:a", label="예"), Choice(id="sv:1:b", label="아니요")),
        )

    async def answer(ctx: Ctx, choice_id: str) -> None:
        if not choice_id.startswith("sv:1:"):
            return
        ctx.data.setdefault("answers", []).append(choice_id[-1])
        ctx.data["q"] += 1
        if ctx.data["q"] > 2:
            ctx.say(f"고맙습니다 {''.join(ctx.data['answers'])}")
            ctx.menu()
        else:
            ctx.goto("ask", remember=False)

    async def route(ctx: Ctx, choice_id: str) -> None:
        ctx.start("quiz", q=1)

    pack = FlowPack(
        flows=(Flow(name="quiz", start="ask", on_route=route,
                    steps={"ask": Step(render=ask, on_pick=answer)}),),
        routes=(("sv:", "quiz"),),
    )
    chat = Chat(build_engine(core, packs=[pack]))
    await chat.command("new")
    await chat.send(TITLE)
    await chat.pick("sv:1:start")  # a pushed survey's button, in the middle of an intake
    assert chat.text == "Q1" and chat.choice_ids[:2] == ["sv:1:a", "sv:1:b"]
    await chat.send("2")  # typed number
    assert chat.text == "Q2"
    await chat.send("예")  # typed label
    assert "고맙습니다 ba" in chat.text and "무엇을 도와드릴까요?" in chat.text


async def test_packs_add_flows_routes_and_menu_entries(core: Core) -> None:
    built_in = build_engine(core)
    assert "survey" not in built_in.flows and "subscriptions" not in built_in.flows
    served = conversation_engine(core)  # the composition root's packs: campaigns' flows
    assert {"survey", "subscriptions"} <= set(served.flows)
    chat = Chat(served)
    await chat.command("start")
    assert "consent:main" in chat.choice_ids
    chat = Chat(built_in, user_id="u2")
    await chat.command("start")
    assert "consent:main" not in chat.choice_ids


async def test_a_route_to_an_unknown_flow_is_refused(core: Core) -> None:
    with pytest.raises(ValueError, match="unknown flow"):
        build_engine(core, packs=[FlowPack(routes=(("zz:", "nowhere"),))])


async def test_unexpected_failures_answer_politely_and_keep_state(core: Core) -> None:
    async def broken(ctx: Ctx, incoming: Incoming) -> list[Reply] | None:
        if isinstance(incoming, Text) and incoming.text == "boom":
            ctx.state["step"] = "nowhere"
            raise RuntimeError("a bug")
        return None

    chat = Chat(with_interceptor(core, broken))
    await chat.command("new")
    await chat.send(TITLE)
    await chat.send("boom")
    assert chat.text == "죄송합니다. 잠시 문제가 생겼습니다. 조금 뒤에 다시 시도해 주세요."
    assert chat.choice_ids == ["nav:back", "nav:cancel"]
    await chat.send(BODY)  # nothing entered was lost
    assert "분야" in chat.text


async def test_unknown_command_and_gibberish_at_the_menu(core: Core) -> None:
    chat = Chat(conversation_engine(core))
    await chat.command("start")
    await chat.command("frobnicate")
    assert "알 수 없는 말입니다" in chat.text and "menu:submit" in chat.choice_ids
    await chat.send("ㅁㄴㅇㄹ")
    assert "잘 알아듣지 못했습니다" in chat.text and "menu:submit" in chat.choice_ids
    await chat.send("")
    assert "잘 알아듣지 못했습니다" in chat.text
    await chat.send("99")
    assert "잘 알아듣지 못했습니다" in chat.text
    await chat.pick("zz:unknown")
    assert "쓸 수 없습니다" in chat.text
    await chat.send("도움말")
    assert "제안하기: 바라는 점을 적어 보냅니다." in chat.text


async def test_every_reply_respects_label_and_id_limits(core: Core) -> None:
    await _submit(core, title="가" * 100)
    chat = Chat(conversation_engine(core))
    script: list[tuple[str, str]] = [
        ("command", "start"), ("pick", "menu:lookup"), ("send", "가가"), ("pick", "menu:language"),
        ("pick", "lang:en"), ("pick", "menu:submit"), ("send", TITLE), ("send", BODY),
        ("pick", "cat:other"), ("pick", "reg:jeju"), ("pick", "rev:confirm"),
        ("pick", "menu:mine"), ("pick", "p:P-2026-000002:show"),
        ("pick", "p:P-2026-000002:history"),
        ("pick", "p:P-2026-000002:feedback"),
    ]
    for kind, arg in script:
        await getattr(chat, kind)(arg)
        for reply in chat.last:
            assert reply.text.strip()
            for choice in reply.choices:
                assert len(choice.label) <= 30, choice
                assert choice.id.isascii() and len(choice.id.encode()) <= 48, choice


async def test_a_broken_state_store_gets_a_polite_answer(core: Core) -> None:
    class Broken:
        def lock(self, key: StateKey) -> Any:
            raise ConnectionError("redis is down")

    engine = conversation_engine(core)
    engine.core = type("C", (), {"state": Broken(), "settings": core.settings})()
    replies = await engine.handle(Chat(engine, locale="en").inbound(Text("hi")))
    assert [r.text for r in replies] == [
        "Sorry, something went wrong. Please try again in a moment."
    ]


async def test_two_engines_share_conversations_through_redis(core: Core, redis_url: str) -> None:
    """Two processes' engines on one Redis: state is shared and turns never interleave."""
    import uuid

    from core.adapters.state_redis import RedisStateStore

    prefix = f"gongnon-test:{uuid.uuid4().hex}:"
    stores = [RedisStateStore.from_url(redis_url, prefix=prefix) for _ in range(2)]
    engines = []
    for store in stores:
        engine = conversation_engine(core)
        engine.core = _CoreWithState(core, store)
        engines.append(engine)
    try:
        chat_a, chat_b = Chat(engines[0]), Chat(engines[1])
        await chat_a.command("new")
        await chat_b.send(TITLE)  # the other process continues the same conversation
        assert "어떻게 바뀌면 좋을지" in chat_b.text
        await asyncio.gather(
            engines[0].handle(chat_a.inbound(Text(BODY))),
            engines[1].handle(chat_b.inbound(Text("아무 분야"))),
        )
        state = await stores[0].get(StateKey("web", "u1"))
        assert state is not None and state["data"]["body"] == BODY
        assert state["step"] == "category"
        await chat_a.pick("cat:education")
        await chat_b.pick("ext:done")
        await chat_a.pick("rev:confirm")
        assert "P-2026-000001" in chat_a.text
    finally:
        redis = stores[0]._redis
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        for store in stores:
            await store.close()


class _CoreWithState:
    """The same core seen through another process's state store."""

    def __init__(self, core: Core, state: Any) -> None:
        self._core = core
        self.state = state

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)
