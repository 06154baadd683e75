"""Wiring the campaigns feature: handlers on the bus, the schedule, the after-commit hooks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.campaigns import events as e
from core.campaigns import handlers
from core.campaigns.handlers import QuietHours
from core.campaigns.service import CampaignService
from core.domain.participation import Level
from core.kernel import Kernel

__all__ = ["install"]


def install(core: Kernel, *, quiet: QuietHours) -> CampaignService:
    """Register the campaign handlers and jobs on ``core``; the service is kept as
    ``core.campaigns``. ``quiet`` is the same rule the delivery workers hold pushes by."""
    service = CampaignService(core, quiet=quiet)
    handlers.register(
        core.bus,
        quiet=quiet,
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
    return service
