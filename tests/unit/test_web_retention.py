"""The web chat's retention job: idle sessions (with inbox, photos, state), old inbox items,
photos of drafts never submitted, and an erased person's photos at once. SQLite and PostgreSQL."""

from __future__ import annotations

from io import BytesIO

from PIL import Image
from sqlalchemy import func, select

from core import commands as c
from core.adapters.orm_web import WebInboxItem, WebSessionRow, WebUpload
from core.bootstrap import Core
from core.domain.model import AttachmentView
from core.messages import Reply
from core.ports import StateKey
from core.web_retention import erase_person_uploads, install, purge
from core.webchat import WebChat
from tests.support import ManualClock


def _png() -> bytes:
    out = BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(out, format="PNG")
    return out.getvalue()


async def _count(core: Core, table: type) -> int:
    async with core.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(table))).scalar_one())


async def _person(core: Core, session_id: str) -> int:
    return await core.execute(  # type: ignore[no-any-return]
        c.EnsureIdentity(channel="web", external_id=session_id, address=session_id)
    )


def _files(chat: WebChat) -> set[str]:
    folder = chat.upload_dir
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


async def test_idle_sessions_go_with_their_inbox_photos_and_state(
    core: Core, clock: ManualClock
) -> None:
    chat = core.webchat
    _, old = await chat.open_session()
    await chat.put(old.address, Reply(text="알림"))
    old_photo = await chat.save_upload(old, _png())
    key = StateKey("web", old.id)
    await core.state.set(key, {"flow": "intake"}, ttl=10**8)
    clock.advance(days=core.settings.web_session_idle_days - 1)
    _, live = await chat.open_session()
    live_photo = await chat.save_upload(live, _png())
    await core.execute(  # the live one's photo is in a submitted proposal: it stays
        c.SubmitProposal(
            person_id=await _person(core, live.id), title="정류장 그늘막 설치 제안",
            body="여름마다 버스를 기다리는 시민들이 햇볕에 너무 오래 노출됩니다.",
            category="transport", attachments=(AttachmentView(kind="photo", ref=live_photo),),
        )
    )
    clock.advance(days=2)
    counts = await purge(chat, state=core.state)
    assert counts == {"sessions": 1, "inbox": 1, "uploads": 1}
    async with core.db.read() as s:
        assert list((await s.execute(select(WebSessionRow.id))).scalars()) == [live.id]
        assert list((await s.execute(select(WebUpload.session_id))).scalars()) == [live.id]
    assert await _count(core, WebInboxItem) == 0
    assert await core.state.get(key) is None
    assert _files(chat) == {f"{live_photo.partition(':')[2]}.png"}
    assert old_photo.partition(":")[2] not in str(_files(chat))
    assert await chat.find_session("anything") is None
    assert await purge(chat, state=core.state) == {"sessions": 0, "inbox": 0, "uploads": 0}


async def test_photos_of_drafts_never_submitted_go_after_the_retention(
    core: Core, clock: ManualClock
) -> None:
    chat = core.webchat
    _, web_session = await chat.open_session()
    draft = await chat.save_upload(web_session, _png())
    clock.advance(days=core.settings.web_draft_upload_retention_days - 1)
    fresh = await chat.save_upload(web_session, _png())
    assert (await purge(chat, state=core.state))["uploads"] == 0
    clock.advance(days=1, seconds=1)
    assert (await purge(chat, state=core.state))["uploads"] == 1
    assert _files(chat) == {f"{fresh.partition(':')[2]}.png"}
    assert await chat.upload(draft) is None and await chat.upload(fresh) is not None


async def test_an_erased_persons_photos_go_at_once(core: Core) -> None:
    chat = core.webchat
    _, mine = await chat.open_session()
    _, theirs = await chat.open_session()
    person = await _person(core, mine.id)
    await _person(core, theirs.id)
    for _ in range(2):
        await chat.save_upload(mine, _png())
    kept = await chat.save_upload(theirs, _png())
    assert await erase_person_uploads(chat, person) == 2
    assert _files(chat) == {f"{kept.partition(':')[2]}.png"}
    assert await _count(core, WebUpload) == 1


async def test_the_job_runs_once_a_day_across_processes(core: Core, clock: ManualClock) -> None:
    chat = core.webchat
    _, web_session = await chat.open_session()
    await chat.save_upload(web_session, _png())
    clock.advance(days=core.settings.web_draft_upload_retention_days + 1)
    assert "webchat-purge" in core.scheduler.jobs()
    jobs: list[object] = []

    class Recorder:
        def cron(self, name: str, job: object, **fields: object) -> None:
            jobs.append(job)

    class Other:  # a second process sharing the database
        def __init__(self) -> None:
            self.settings, self.clock, self.state, self.scheduler = (
                core.settings, core.clock, core.state, Recorder(),
            )
            self.once = core.once

    install(Other(), chat)  # type: ignore[arg-type]
    install(Other(), chat)  # type: ignore[arg-type]
    for job in jobs:
        await job()  # type: ignore[operator]
    assert await _count(core, WebUpload) == 0  # the first did the work, the second nothing
    assert not await core.once(f"webchat:purge:{clock.now():%Y-%m-%d}")
