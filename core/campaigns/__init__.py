"""Polls, surveys, consent, topic subscriptions and campaign pushes; ``install(core)``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.domain.participation import Level

__all__ = ["install", "service_of"]

PLUGIN = "conversations.flows.survey:install"


def service_of(core: Any) -> Any:
    """The ``CampaignService`` installed on ``core``."""
    return core.extras["campaigns"]


def install(core: Any) -> None:
    """Handlers on the bus, the service in ``core.extras``, the schedule, the chat flows."""
    from core.campaigns import events as e
    from core.campaigns import handlers
    from core.campaigns.service import CampaignService

    service = CampaignService(core)
    core.extras["campaigns"] = service
    handlers.register(
        core.bus,
        quiet=service.quiet,
        unpushable=service.unpushable,
        participation=Level(core.settings.participation_level),
    )

    def kick() -> None:  # run the tick soon, on the scheduler (only once it is started)
        core.scheduler.at("campaigns:kick", service.tick, datetime.now(UTC))

    async def on_survey(event: e.SurveyCreated) -> None:
        survey = await service.survey(event.survey_id)
        service.at(f"campaigns:survey:{event.survey_id}", survey.definition.closes_at)

    async def on_push(event: e.PushChanged) -> None:
        if event.change == "scheduled":
            progress = await service.progress(event.push_id)
            if progress.scheduled_at is not None:
                service.at(f"campaigns:push:{event.push_id}", progress.scheduled_at)
        elif event.change in ("running", "resumed", "closed"):
            kick()

    async def on_wake(_event: Any) -> None:
        core.wake_workers()

    core.bus.after_commit(e.SurveyCreated, on_survey)
    core.bus.after_commit(e.PushChanged, on_push)
    core.bus.after_commit(e.SurveyResultsPublished, on_wake)
    core.on_start(service.schedule)
    # Workers hold push-kind rows during quiet hours (besides the tick's deferral).
    options = core.extras.setdefault("delivery_worker_options", {})
    options["push_gate"] = lambda _item, now: service.quiet.until(now)
    core.extras.setdefault("menu_items", []).append(("consent:main", "campaign.menu.subscriptions"))
    plugins = core.extras.setdefault("conversation_plugins", [])
    if PLUGIN not in plugins:
        plugins.append(PLUGIN)
