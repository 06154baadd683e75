"""``gongnon survey …`` and ``gongnon push …``: campaign staff's command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from core.bootstrap import Core
from core.config import Settings
from core.i18n import t

__all__ = ["progress_line", "register"]

BAR = 30
Run = Callable[[Any, argparse.Namespace, Callable[[str], str]], Awaitable[int]]


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


def progress_line(progress: Any, tr: Callable[..., str]) -> str:
    """``[#####-----]  50%  500/1000  running``: one line, rewritten in place on a terminal."""
    filled = round(progress.share * BAR)
    bar = "#" * filled + "-" * (BAR - filled)
    return (f"[{bar}] {progress.share:4.0%} {progress.finished}/{progress.audience} "
            f"{progress.status}")


def _report(progress: Any, tr: Callable[..., str]) -> str:
    counts = {s: progress.counts.get(s, 0) for s in
              ("sent", "failed", "unreachable", "opted_out", "cancelled")}
    return tr("campaign.cli.report", **counts)


def _runner(run: Run) -> Callable[[Settings, argparse.Namespace], int]:
    """Bootstrap the core (no workers), run, translate domain errors into one polite line."""

    def handler(settings: Settings, args: argparse.Namespace) -> int:
        from core.bootstrap import bootstrap
        from core.campaigns.loader import SurveyErrors
        from core.domain.errors import DomainError, InvalidField

        locale = settings.default_locale
        for noisy in ("alembic", "apscheduler"):  # staff read results here, not migration chatter
            logging.getLogger(noisy).setLevel(logging.WARNING)

        def tr(key: str, **params: Any) -> str:
            return t(key, locale, **params)

        async def main() -> int:
            core = await bootstrap(settings)
            try:
                return await run(core, args, tr)
            except SurveyErrors as errors:
                for line in errors.lines(locale, filename=str(getattr(args, "file", ""))):
                    print(line, file=sys.stderr)
                return 1
            except InvalidField as err:
                print(tr("campaign.cli.domain_error", message=f"{err.field}: {err.code}"),
                      file=sys.stderr)
                return 1
            except DomainError as err:
                print(tr("campaign.cli.domain_error", message=t(err.key, locale, **err.params)),
                      file=sys.stderr)
                return 1
            finally:
                await core.stop()

        return asyncio.run(main())

    return handler


# --- survey ------------------------------------------------------------------------------


def _validate(settings: Settings, args: argparse.Namespace) -> int:
    """No database needed: parse each file and report every error with its line."""
    from core.campaigns.loader import SurveyErrors, parse_survey

    status = 0
    for name in args.files:
        try:
            text = Path(name).read_text(encoding="utf-8")
            survey = parse_survey(text, tz=settings.tz, now=datetime.now(UTC))
        except OSError as exc:
            print(f"{name}: {exc.strerror}", file=sys.stderr)
            status = 1
        except SurveyErrors as errors:
            print(t("campaign.cli.invalid", settings.default_locale, file=name,
                    count=len(errors.errors)), file=sys.stderr)
            for line in errors.lines(settings.default_locale, filename=name):
                print(line, file=sys.stderr)
            status = 1
        else:
            print(t("campaign.cli.valid", settings.default_locale, file=name, kind=survey.kind,
                    count=len(survey.questions)))
    return status


async def _create(core: Core, args: argparse.Namespace, tr: Callable[..., str]) -> int:
    text = await asyncio.to_thread(Path(args.file).read_text, encoding="utf-8")
    service = core.campaigns
    survey_id = await service.create_survey_from_yaml(text, actor=args.actor)
    info = await service.survey(survey_id)
    closes = info.definition.closes_at.astimezone(core.settings.tz).strftime("%Y-%m-%d %H:%M")
    print(tr("campaign.cli.created", id=survey_id, slug=info.definition.slug, closes=closes))
    return 0


async def _results(core: Core, args: argparse.Namespace, tr: Callable[..., str]) -> int:
    from core.campaigns.results import format_results

    service = core.campaigns
    results = await service.results(args.survey)
    locale = core.settings.default_locale
    print(format_results(results, locale, final=results.status != "open"))
    if args.chart:
        charts = await service.charts(results, locale)
        for index, png in enumerate(charts, start=1):
            path = Path(args.chart)
            if len(charts) > 1:
                path = path.with_name(f"{path.stem}-{index}{path.suffix or '.png'}")
            await asyncio.to_thread(path.write_bytes, png)
            print(path)
    return 0


async def _export(core: Core, args: argparse.Namespace, tr: Callable[..., str]) -> int:
    data = await core.campaigns.export_csv(args.survey)
    if args.output in (None, "-"):
        sys.stdout.write(data)
    else:
        # utf-8-sig: Excel then reads Korean correctly
        await asyncio.to_thread(Path(args.output).write_text, data, encoding="utf-8-sig")
        print(tr("campaign.cli.exported", count=data.count("\n") - 1, file=args.output))
    return 0


async def _close(core: Core, args: argparse.Namespace, tr: Callable[..., str]) -> int:
    from core.campaigns.commands import CloseSurvey

    info = await core.campaigns.survey(args.survey)
    await core.execute(CloseSurvey(survey_id=info.id, actor=args.actor))
    await core.campaigns.tick()  # results and chart go out now
    print(tr("campaign.cli.push_started", id=info.id, status="closed"))
    return 0


# --- push ----------------------------------------------------------------------------------


async def _push_create(core: Core, args: argparse.Namespace, tr: Callable[..., str]) -> int:
    from core.campaigns.commands import CreatePush
    from core.campaigns.model import Segment

    survey_id = None
    if args.survey:
        survey_id = (await core.campaigns.survey(args.survey)).id
    when = None
    if args.at:
        when = datetime.fromisoformat(args.at)
        if when.tzinfo is None:
            when = when.replace(tzinfo=core.settings.tz)
    message = {"ko": args.message or "", "en": args.message_en or ""}
    segment = Segment(topics=_csv(args.topics), regions=_csv(args.regions),
                      channels=_csv(args.channels), locales=_csv(args.locales))
    push_id = await core.execute(CreatePush(name=args.name, message=message, segment=segment,
                                            actor=args.actor, survey_id=survey_id,
                                            scheduled_at=when))
    print(tr("campaign.cli.push_created", id=push_id))
    return 0


async def _dry_run(core: Core, args: argparse.Namespace, tr: Callable[..., str]) -> int:
    from bots.worker_cli import register_senders

    await register_senders(core)  # which channels can push, and what a push costs there
    dry = await core.campaigns.dry_run(args.push)
    print(tr("campaign.cli.dry_run", count=dry.audience))
    detail = ", ".join(f"{k}={v}" for k, v in sorted(dry.by_channel.items())) or "-"
    print(tr("campaign.cli.by_channel", detail=detail))
    if dry.cost:
        detail = ", ".join(f"{k}={v:,.0f}" for k, v in sorted(dry.cost.items()))
        print(tr("channels.cost_estimate", total=f"{dry.total_cost:,.0f}",
                 currency=dry.currency, detail=detail))
    detail = ", ".join(f"{k}={v}" for k, v in sorted(dry.by_locale.items())) or "-"
    print(tr("campaign.cli.by_locale", detail=detail))
    if dry.quiet_until is not None:
        until = dry.quiet_until.astimezone(core.settings.tz).strftime("%Y-%m-%d %H:%M")
        print(tr("campaign.cli.quiet", until=until))
    for locale, reply in dry.previews.items():
        print()
        print(tr("campaign.cli.preview", locale=locale))
        if reply.heading:
            print(f"  ** {reply.heading} **")
        for line in reply.text.splitlines():
            print(f"  {line}")
        for number, choice in enumerate(reply.choices, start=1):
            print(f"  [{number}] {choice.label}")
    return 0


async def _test(core: Core, args: argparse.Namespace, tr: Callable[..., str]) -> int:
    from core.campaigns.commands import TestPush

    await core.execute(TestPush(push_id=args.push, channel=args.channel, address=args.address,
                                locale=args.locale, actor=args.actor))
    print(tr("campaign.cli.push_test", channel=args.channel, address=args.address))
    return 0


async def watch(
    core: Core, push_id: int, tr: Callable[..., str], *, out: TextIO, interval: float = 1.0,
    max_seconds: float | None = None,
) -> Any:
    """Show a progress bar until the push is done or cancelled (or ``max_seconds`` pass)."""
    service = core.campaigns
    tty = out.isatty()
    loop = asyncio.get_running_loop()
    started, last = loop.time(), ""
    while True:
        await service.tick()  # fan-out and finishing also happen here, idempotently
        progress = await service.progress(push_id)
        line = progress_line(progress, tr)
        if tty:
            out.write("\r" + line)
        elif line != last:
            out.write(line + "\n")
        out.flush()
        last = line
        if progress.done or progress.status in ("paused", "scheduled", "draft"):
            break
        if max_seconds is not None and loop.time() - started > max_seconds:
            break
        await asyncio.sleep(interval)
    if tty:
        out.write("\n")
    out.write(_report(progress, tr) + "\n")
    return progress


async def _start(core: Core, args: argparse.Namespace, tr: Callable[..., str]) -> int:
    from core.campaigns.commands import StartPush

    status = await core.execute(StartPush(push_id=args.push, actor=args.actor))
    print(tr("campaign.cli.push_started", id=args.push, status=status))
    if status == "running" and not args.no_wait:
        await watch(core, args.push, tr, out=sys.stdout, interval=args.interval)
    return 0


async def _state(core: Core, args: argparse.Namespace, tr: Callable[..., str]) -> int:
    from core.campaigns import commands as c

    if args.action == "pause":
        await core.execute(c.PausePush(push_id=args.push, actor=args.actor))
        print(tr("campaign.cli.push_paused", id=args.push))
    elif args.action == "resume":
        status = await core.execute(c.ResumePush(push_id=args.push, actor=args.actor))
        print(tr("campaign.cli.push_resumed", id=args.push, status=status))
    else:
        count = await core.execute(c.CancelPush(push_id=args.push, actor=args.actor))
        print(tr("campaign.cli.push_cancelled", id=args.push, count=count))
    return 0


async def _status(core: Core, args: argparse.Namespace, tr: Callable[..., str]) -> int:
    progress = await core.campaigns.progress(args.push)
    print(tr("campaign.cli.status", id=progress.push_id, name=progress.name,
             status=progress.status, audience=progress.audience, enqueued=progress.enqueued))
    if args.watch:
        await watch(core, args.push, tr, out=sys.stdout, interval=args.interval)
    else:
        print(progress_line(progress, tr))
        print(_report(progress, tr))
    return 0


# --- wiring ----------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    survey = subparsers.add_parser("survey", help="polls and surveys from YAML files")
    ss = survey.add_subparsers(dest="survey_command", required=True)
    p = ss.add_parser("validate", help="check files; every error with its line")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(handler=_validate)
    p = ss.add_parser("create", help="create a survey or poll from a YAML file")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(handler=_runner(_create))
    p = ss.add_parser("results", help="live or final results")
    p.add_argument("survey", metavar="ID|SLUG")
    p.add_argument("--chart", metavar="PNG", help="also write bar charts")
    p.set_defaults(handler=_runner(_results))
    p = ss.add_parser("export", help="CSV of every ballot (anonymous: no person columns)")
    p.add_argument("survey", metavar="ID|SLUG")
    p.add_argument("-o", "--output", metavar="FILE")
    p.set_defaults(handler=_runner(_export))
    p = ss.add_parser("close", help="close now and send the results")
    p.add_argument("survey", metavar="ID|SLUG")
    p.set_defaults(handler=_runner(_close))

    push = subparsers.add_parser("push", help="campaign pushes to a segment")
    ps = push.add_subparsers(dest="push_command", required=True)
    p = ps.add_parser("create", help="a message and/or a survey to a segment")
    p.add_argument("--name", required=True)
    p.add_argument("--message", help="Korean text")
    p.add_argument("--message-en", help="English text")
    p.add_argument("--survey", metavar="ID|SLUG")
    p.add_argument("--topics", help="categories, comma-separated")
    p.add_argument("--regions", help="regions, comma-separated")
    p.add_argument("--channels", help="web,telegram,…")
    p.add_argument("--locales", help="ko,en")
    p.add_argument("--at", help="start time, Asia/Seoul: 2026-12-01 09:00")
    p.set_defaults(handler=_runner(_push_create))
    p = ps.add_parser("dry-run", help="audience size and a preview; sends nothing")
    p.add_argument("push", type=int)
    p.set_defaults(handler=_runner(_dry_run))
    p = ps.add_parser("test", help="send the push to yourself only")
    p.add_argument("push", type=int)
    p.add_argument("--channel", required=True)
    p.add_argument("--address", required=True)
    p.add_argument("--locale", default="ko", choices=("ko", "en"))
    p.set_defaults(handler=_runner(_test))
    p = ps.add_parser("start", help="start now (or at its time) and show progress")
    p.add_argument("push", type=int)
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--interval", type=float, default=1.0)
    p.set_defaults(handler=_runner(_start))
    for action in ("pause", "resume", "cancel"):
        p = ps.add_parser(action, help=f"{action} a push")
        p.add_argument("push", type=int)
        p.set_defaults(handler=_runner(_state), action=action)
    p = ps.add_parser("status", help="progress and the delivery report")
    p.add_argument("push", type=int)
    p.add_argument("--watch", action="store_true")
    p.add_argument("--interval", type=float, default=1.0)
    p.set_defaults(handler=_runner(_status))
    for sub in (survey, push):
        sub.set_defaults(actor="cli")
    for group in (ss, ps):
        for child in group.choices.values():
            child.set_defaults(actor="cli")
