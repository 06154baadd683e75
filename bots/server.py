"""The composition root: one aiohttp server for the web chat and every webhook.

``create_app(settings)`` bootstraps the core, builds the conversation engine, mounts each enabled
channel and ties their lifetimes to the server's (``cleanup_ctx``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web

from bots import kakao, sms, trial
from bots.appkeys import CORE, ENGINE, GUARD, Mount
from bots.forum.routes import ForumMount
from bots.guard import ConnectionGuard, GuardedSite, descriptor_budget, networks
from bots.web.routes import WebMount
from conversations import Engine, FlowPack, build_engine
from conversations.flows import privacy, survey, verify
from core.bootstrap import Core, bootstrap
from core.config import Settings

__all__ = ["CORE", "ENGINE", "GUARD", "conversation_engine", "create_app", "flow_packs", "serve"]

log = logging.getLogger(__name__)


def flow_packs(core: Core) -> list[FlowPack]:
    """The flows the core's features add to the conversations: the campaigns (always
    installed) bring polls and surveys, consent and topics; privacy brings the personal-data
    notice (a gate before a first write) and "내 정보"; a configured verifier brings
    "휴대폰 문자로 본인 확인". A new feature's flows go here."""
    packs = [survey.pack(), privacy.pack()]
    if core.verifier is not None:
        packs.append(verify.pack())
    return packs


def conversation_engine(core: Core, *, extra: Sequence[FlowPack] = ()) -> Engine:
    """The engine every channel of this server talks to (``extra``: more flows after the
    features', e.g. a test's)."""
    return build_engine(core, packs=[*flow_packs(core), *extra])


async def healthz(request: web.Request) -> web.Response:
    core = request.app[CORE]
    checks: dict[str, Any] = {"database": "ok"}
    status = "ok"
    versions: dict[str, Any] = {"app": _app_version(), "schema": None}
    try:
        versions["schema"] = await core.views.schema_version()
    except Exception as exc:  # noqa: BLE001 - reported, not swallowed
        checks["database"] = f"error: {type(exc).__name__}"
        status = "down"
    for name, probe in core.health.items():
        try:
            result = await probe()
        except Exception as exc:  # noqa: BLE001
            result = {"status": "down", "error": type(exc).__name__}
        checks[name] = result
        if isinstance(result, dict) and result.get("status") == "degraded" and status == "ok":
            status = "degraded"
        if isinstance(result, dict) and result.get("status") == "down":
            status = "down"
    guard = request.app.get(GUARD)
    if guard is not None:
        checks["connections"] = guard.stats()
    code = 503 if status == "down" else 200
    return web.json_response(
        {"status": status, "versions": versions, "checks": checks}, status=code
    )


def _app_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gongnon")
    except PackageNotFoundError:
        return "unknown"


def create_app(
    settings: Settings,
    *,
    core: Core | None = None,
    packs: Sequence[FlowPack] = (),
    **overrides: Any,
) -> web.Application:
    """The whole server. ``core`` may be given by tests; otherwise it is bootstrapped.
    ``packs``: flows besides the features' (``flow_packs``)."""
    app = web.Application(client_max_size=12 * 1024 * 1024)
    mounts = _mounts(settings)  # one instance per mount: the routes and the lifetime share it

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        instance = core or await bootstrap(settings, **overrides)
        sms.install_verifier(instance)  # GONGNON_SMS_API_URL set: verification by SMS code
        app[CORE] = instance
        app[ENGINE] = conversation_engine(instance, extra=packs)
        for mount in mounts:
            await mount.start(app, instance, app[ENGINE])
        await instance.start()
        log.info("gongnon serving on %s:%s", settings.host, settings.port)
        notice = trial.notice(
            settings,
            messenger=settings.telegram_enabled or kakao.enabled(),
            verifier=instance.verifier is not None,
        )
        if notice:
            log.warning("%s", notice)
        yield
        for mount in reversed(mounts):
            try:
                await mount.stop(app)
            except Exception:
                log.exception("stopping %s failed", mount)
        await instance.stop()

    app.cleanup_ctx.append(lifetime)
    app.router.add_get("/healthz", healthz)
    for mount in mounts:
        mount.routes(app)
    return app


def _mounts(settings: Settings) -> list[Mount]:
    """Each channel's mount: ``routes(app)`` at build time, ``start``/``stop`` with the server.

    Telegram and Slack are imported only when enabled: a server without them never loads
    their SDKs.
    """
    mounts: list[Mount] = [WebMount(settings)] if settings.web_enabled else []
    if settings.forum_backend != "local":
        mounts.append(ForumMount(settings))
    if settings.telegram_enabled:
        from bots.telegram.routes import TelegramMount

        mounts.append(TelegramMount(settings))
    if settings.slack_enabled:
        from bots.slack.routes import SlackMount

        mounts.append(SlackMount(settings))
    mounts += kakao.mounts(settings)
    return mounts


def serve(settings: Settings) -> None:
    """Run the server until SIGINT/SIGTERM, behind the connection guard (``bots.guard``)."""
    asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    budget = descriptor_budget(
        reserve=settings.web_fd_reserve, streams_max=settings.web_streams_max
    )
    guard = ConnectionGuard(
        max_connections=budget.connections,
        per_address=settings.web_connections_per_address,
        trusted=networks(settings.trusted_proxies),
    )
    log.info(
        "descriptors: ulimit -n %d; connections at most %d, event streams at most %d",
        budget.nofile, budget.connections, budget.streams,
    )
    app = create_app(settings)
    app[GUARD] = guard
    runner = web.AppRunner(
        app,
        access_log=None,
        # Runs from the moment a connection opens until its request's headers are complete,
        # and between requests: slow or idle clients let go of their descriptor.
        keepalive_timeout=settings.web_header_timeout_seconds,
        shutdown_timeout=15.0,
        handle_signals=False,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signame in ("SIGINT", "SIGTERM"):
        loop.add_signal_handler(getattr(signal, signame), stop.set)
    try:
        await GuardedSite(runner, settings.host, settings.port, guard=guard).start()
        await stop.wait()
    finally:
        await runner.cleanup()
