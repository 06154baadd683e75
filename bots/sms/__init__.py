"""An ``SmsGateway`` for a generic HTTP SMS API (``GONGNON_SMS_*``).

POST ``{api_url}`` with ``Authorization: Bearer {api_token}`` and a JSON body
``{"from": sender, "to": "+8210…", "text": …}``; any 2xx is accepted, anything else (or a
timeout) raises ``SmsFailed`` with the status only (never the number or the text). Most Korean
SMS providers (and Twilio-like APIs) take this shape or need only a thin mapping here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.verification import SmsFailed

if TYPE_CHECKING:
    from core.bootstrap import Core

__all__ = ["HttpSmsGateway", "SmsSettings", "install_verifier"]


class SmsSettings(BaseSettings):
    """Setting ``GONGNON_SMS_API_URL`` turns SMS verification on."""

    model_config = SettingsConfigDict(
        env_prefix="GONGNON_SMS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    api_url: str | None = None
    api_token: SecretStr | None = None
    sender: str = ""  # the registered sending number (발신번호)
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @property
    def enabled(self) -> bool:
        return bool(self.api_url)


class HttpSmsGateway:
    def __init__(self, settings: SmsSettings, session: aiohttp.ClientSession | None = None) -> None:
        if not settings.api_url:
            raise ValueError("GONGNON_SMS_API_URL is not set")
        self.settings = settings
        self._session = session
        self._own = session is None

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def send_sms(self, to: str, text: str) -> None:
        s = self.settings
        headers = {"Content-Type": "application/json"}
        if s.api_token is not None:
            headers["Authorization"] = f"Bearer {s.api_token.get_secret_value()}"
        client = await self._client()
        try:
            async with client.post(
                str(s.api_url), json={"from": s.sender, "to": to, "text": text},
                headers=headers, timeout=aiohttp.ClientTimeout(total=s.timeout_seconds),
            ) as response:
                if not 200 <= response.status < 300:
                    raise SmsFailed(f"SMS API answered {response.status}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise SmsFailed(f"SMS API unreachable ({type(exc).__name__})") from exc

    async def close(self) -> None:
        if self._own and self._session is not None:
            await self._session.close()
            self._session = None


def install_verifier(core: Core, settings: SmsSettings | None = None) -> bool:
    """Give ``core`` the SMS verifier when ``GONGNON_SMS_API_URL`` is set (and it has none
    yet); the gateway's HTTP session closes with the core. True when installed."""
    settings = settings or SmsSettings()
    if not settings.enabled or core.verifier is not None:
        return False
    from core.verification.sms import SmsVerifier

    gateway = HttpSmsGateway(settings)
    core.verifier = SmsVerifier(core, gateway)
    core.on_stop(gateway.close)
    return True
