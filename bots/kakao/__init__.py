"""KakaoTalk through Kakao i Open Builder: a skill server on the one aiohttp server, pushes
through the Event API when configured. ``mounts(settings)`` is all the composition root needs;
the channel's own settings (``GONGNON_KAKAO_*``) live in ``bots.kakao.settings``."""

from __future__ import annotations

from typing import Any

from core.config import Settings

__all__ = ["enabled", "mounts", "sender"]


def enabled() -> bool:
    """Whether the Kakao channel is on (``GONGNON_KAKAO_SKILL_SECRET`` set)."""
    from bots.kakao.settings import KakaoSettings

    return KakaoSettings().enabled


def mounts(settings: Settings) -> list[Any]:
    """The Kakao mount when ``GONGNON_KAKAO_SKILL_SECRET`` is set, else nothing."""
    from bots.kakao.settings import KakaoSettings

    kakao = KakaoSettings()
    if not kakao.enabled:
        return []
    from bots.kakao.routes import KakaoMount

    return [KakaoMount(settings, kakao)]


def sender() -> Any | None:
    """Kakao's Sender for a process without the server (``gongnon worker``, campaign dry
    runs), when the channel is on."""
    from bots.kakao.settings import KakaoSettings

    kakao = KakaoSettings()
    if not kakao.enabled:
        return None
    from bots.kakao.sender import KakaoSender

    return KakaoSender(settings=kakao)
