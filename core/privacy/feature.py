"""Wiring the privacy feature: erasure and consent handlers, after-erasure cleanup, the daily
retention purge. ``install(core, webchat=…)`` returns the service kept as ``core.privacy``."""

from __future__ import annotations

import logging

from core.kernel import Kernel
from core.ports import StateKey
from core.privacy import retention
from core.privacy.commands import ErasePerson, RecordPrivacyConsent
from core.privacy.consent import record_privacy_consent
from core.privacy.erasure import erase_person
from core.privacy.events import PersonErased
from core.privacy.service import PrivacyService
from core.webchat import WebChat

__all__ = ["install"]

log = logging.getLogger(__name__)


def install(core: Kernel, *, webchat: WebChat | None = None) -> PrivacyService:
    """Register the privacy handlers and the purge job on ``core``. ``webchat``: its upload
    files of an erased person are deleted after commit (the rows go with the sessions)."""
    service = PrivacyService(
        db=core.db,
        notice_version=core.settings.privacy_notice_version,
        retention=retention.install(core),
    )
    core.bus.register(ErasePerson, erase_person)
    core.bus.register(RecordPrivacyConsent, record_privacy_consent)

    async def after_erased(event: PersonErased) -> None:
        for channel, external_id in event.conversations:
            try:
                await core.state.delete(StateKey(channel, external_id))
            except Exception:
                log.warning("erasure: dropping a conversation state failed (it expires anyway)")
        for hook in service.erasure_hooks:
            try:
                await hook(event)
            except Exception:
                log.warning("erasure hook %s failed", getattr(hook, "__name__", hook))

    core.bus.after_commit(PersonErased, after_erased)

    if webchat is not None:
        chat = webchat

        async def delete_web_uploads(event: PersonErased) -> None:
            await chat.delete_uploads(list(event.web_uploads))

        service.after_erasure(delete_web_uploads)
    return service
