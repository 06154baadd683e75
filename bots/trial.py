"""The operator's notice at start when supports and ballots cannot count on this server.

At the default level (``GONGNON_PARTICIPATION_LEVEL=messenger``) a server with only the web chat
(no Telegram, no KakaoTalk) and no verifier is a trial: every web chat session is a guest, and a
guest's supports and ballots do not count. ``make run`` on a fresh clone is exactly that; the
notice says so plainly, and how to change it.
"""

from __future__ import annotations

from core.config import Settings

__all__ = ["notice"]


def notice(settings: Settings, *, messenger: bool, verifier: bool) -> str | None:
    """The notice to log at start, or None when people's supports can count here."""
    level = settings.participation_level
    if level == "guest":
        return None
    if level == "messenger" and (messenger or verifier):
        return None
    if level == "verified" and verifier:
        return None
    if level == "verified":
        reach = (
            "No verifier is configured (GONGNON_SMS_API_URL), so nobody can reach level "
            "'verified'."
        )
    else:
        reach = (
            "Only the web chat is on (no Telegram, no KakaoTalk, no verifier), and web chat "
            "sessions are guests."
        )
    return (
        f"TRIAL MODE: supports (공감) and ballots do not count on this server. {reach} "
        f"GONGNON_PARTICIPATION_LEVEL={level} counts them only for people at that level; "
        "citizens are told so, politely, when they try. To let them count: set up a messenger "
        "(GONGNON_TELEGRAM_TOKEN, or GONGNON_KAKAO_SKILL_SECRET) or SMS verification "
        "(GONGNON_SMS_API_URL). For a demo only, GONGNON_PARTICIPATION_LEVEL=guest counts every "
        "web session (anyone can then support as often as they open a new session: never for "
        "a real consultation)."
    )
