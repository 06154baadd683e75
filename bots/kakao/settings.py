"""KakaoTalk's settings, beside the channel: the same ``GONGNON_`` variables and ``.env`` file
as ``core.config.Settings`` (``GONGNON_KAKAO_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["KakaoSettings"]


class KakaoSettings(BaseSettings):
    """Setting ``GONGNON_KAKAO_SKILL_SECRET`` turns the channel on."""

    model_config = SettingsConfigDict(
        env_prefix="GONGNON_KAKAO_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # The skill URL is POST /kakao/skill/{skill_secret}: Open Builder signs nothing.
    skill_secret: SecretStr | None = None
    bot_id: str | None = None  # when set, a payload for another bot is refused (403)
    # Quick replies as ``action: "block"`` to this block (the choice id travels in ``extra``);
    # without it they are ``action: "message"`` and the label comes back as the utterance.
    block_id: str | None = None
    # Answer in this many seconds, else ``useCallback`` (Kakao waits 5 s for a skill).
    reply_budget_seconds: float = Field(default=3.5, gt=0, lt=5)
    callback_window_seconds: float = Field(default=55.0, gt=0, le=60)  # a callback lives 1 min
    # The Event API (bot-initiated messages, paid per message): pushes only when the key is set.
    event_api_key: SecretStr | None = None
    event_api_url: str = "https://bot-api.kakao.com"
    event_name: str = "gongnon_news"
    event_cost_krw: float = Field(default=15.0, ge=0)
    event_rate_per_second: float = Field(default=10.0, gt=0)
    # Photos from the image plugin: fetched from these hosts only, with limits.
    image_hosts: str = "kakao.com,kakaocdn.net"
    image_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    image_timeout_seconds: float = Field(default=5.0, gt=0)
    request_max_bytes: int = Field(default=64 * 1024, ge=1024)

    @field_validator("skill_secret")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        raw = value.get_secret_value()
        shape = raw.isascii() and all(c.isalnum() or c in "_-" for c in raw)
        if not (16 <= len(raw) <= 128 and shape):
            raise ValueError("must be 16-128 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @property
    def enabled(self) -> bool:
        return self.skill_secret is not None

    @property
    def can_push(self) -> bool:
        return self.event_api_key is not None and bool(self.bot_id)

    def image_host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for allowed in (h.strip().lower() for h in self.image_hosts.split(",")):
            if allowed and (host == allowed or host.endswith("." + allowed)):
                return True
        return False
