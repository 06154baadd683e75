"""Settings from the environment (prefix ``GONGNON_``) and an optional ``.env`` file."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "SettingsError", "load_settings"]


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _split_routes(value: object) -> object:
    """``"welfare=C123,education=C456"`` → ``{"welfare": "C123", "education": "C456"}``."""
    if isinstance(value, str):
        routes: dict[str, str] = {}
        for part in value.split(","):
            if not part.strip():
                continue
            key, sep, channel = part.partition("=")
            if not sep or not key.strip() or not channel.strip():
                raise ValueError("expected category=CHANNEL_ID pairs separated by commas")
            routes[key.strip()] = channel.strip()
        return routes
    return value


CsvList = Annotated[list[str], NoDecode]
RouteMap = Annotated[dict[str, str], NoDecode]


class Settings(BaseSettings):
    """Every knob Gongnon has. Defaults run the embedded mode: SQLite, in-process state."""

    model_config = SettingsConfigDict(
        env_prefix="GONGNON_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- the process ---------------------------------------------------------------
    data_dir: Path = Path("./var")
    database_url: str | None = None
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None
    timezone: str = "Asia/Seoul"
    default_locale: Literal["ko", "en"] = "ko"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    conversation_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    conversation_resume_after_seconds: int = Field(default=30 * 60, ge=10)
    run_workers: bool = True  # run delivery workers, relay and scheduler inside `serve`
    # false where a one-shot `gongnon migrate` runs first (compose): start-up only checks the schema
    migrate_on_start: bool = True

    # --- privacy notice: a new version is shown (and agreed to) again before proposing ------
    privacy_notice_version: str = Field(default="2026-12-01", min_length=1, max_length=32)
    privacy_notice_enabled: bool = True  # off only in tests that are about something else

    # --- retention (privacy): finished rows are purged daily after this many days ------
    retention_delivery_days: int = Field(default=30, ge=1)  # sent/failed/cancelled deliveries
    retention_outbox_days: int = Field(default=90, ge=1)  # forum rows sent, Slack rows done
    retention_audit_days: int = Field(default=3 * 365, ge=30)  # officials' audited actions
    retention_journal_days: int = Field(default=14, ge=1)  # the durable inbound journal
    retention_purge_hour: int = Field(default=4, ge=0, le=23)  # local time of the daily purge

    # --- web chat ------------------------------------------------------------------
    web_enabled: bool = True  # serve the chat page at / and the /webchat API
    web_session_idle_days: int = Field(default=180, ge=1)  # a session unused this long expires
    web_inbox_retention_days: int = Field(default=30, ge=1)  # pushed messages kept for replay
    web_sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    web_sse_poll_seconds: float = Field(default=5.0, gt=0)  # also see other processes' pushes
    web_upload_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)

    # --- limits against abuse (see core/limits.py and bots/web/guard.py) ---------------
    trusted_proxies: CsvList = Field(default_factory=list)  # X-Forwarded-For only from these
    web_streams_per_session: int = Field(default=3, ge=1)  # open event streams of one session
    web_streams_per_address: int = Field(default=12, ge=1)  # …from one client address
    web_streams_max: int = Field(default=400, ge=1)  # …in all (also sized under `ulimit -n`)
    web_connections_per_address: int = Field(default=64, ge=1)  # direct (not via a proxy)
    web_fd_reserve: int = Field(default=160, ge=16)  # descriptors kept for everything else
    web_header_timeout_seconds: float = Field(default=10.0, gt=0)  # slow headers are dropped
    web_body_timeout_seconds: float = Field(default=30.0, gt=0)  # slow bodies are dropped
    web_sessions_per_address_per_minute: int = Field(default=10, ge=1)
    web_sessions_per_address_per_hour: int = Field(default=60, ge=1)
    # new web sessions from all addresses together per minute: a flood from many addresses
    # reaches this, not the per-address limits; conversations already open are not affected
    web_sessions_per_minute: int = Field(default=120, ge=1)
    web_upload_max_pixels: int = Field(default=40_000_000, ge=10_000)  # width × height
    web_upload_quota_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)  # per person
    web_upload_quota_files: int = Field(default=20, ge=1)  # per person
    web_draft_upload_retention_days: int = Field(default=7, ge=1)  # photos never submitted
    proposals_per_day: int = Field(default=5, ge=1)  # per person
    comments_per_minute: int = Field(default=5, ge=1)  # feedback per person

    # --- Telegram ------------------------------------------------------------------
    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None

    # --- Slack ---------------------------------------------------------------------
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_triage_channel: str | None = None
    slack_digest_channel: str | None = None
    slack_digest_routes: RouteMap = Field(default_factory=dict)
    slack_officials: CsvList = Field(default_factory=list)
    slack_campaigners: CsvList = Field(default_factory=list)
    overdue_days: int = Field(default=14, ge=1)

    # --- campaigns and delivery -----------------------------------------------------
    quiet_hours_start: time | None = time(21, 0)
    quiet_hours_end: time | None = time(8, 0)
    telegram_rate_per_second: float = Field(default=30.0, gt=0)
    telegram_chat_rate_per_second: float = Field(default=1.0, gt=0)
    telegram_group_rate_per_minute: float = Field(default=20.0, gt=0)
    slack_channel_rate_per_second: float = Field(default=1.0, gt=0)
    delivery_max_attempts: int = Field(default=8, ge=1)
    delivery_concurrency: int = Field(default=32, ge=1, le=1000)  # sends in flight per worker
    delivery_lease_seconds: float = Field(default=30.0, ge=0.5)  # a dead worker's rows return
    delivery_rate_headroom: float = Field(default=0.0, ge=0.0, lt=0.5)  # lengthen each window
    delivery_redis_prefix: str = "gongnon:delivery"  # streams and rate limits on Redis
    delivery_stream_block_ms: int = Field(default=1000, ge=10, le=60_000)

    # --- participation ---------------------------------------------------------------
    # who may support and vote: guest (any web session), messenger (an account on a
    # phone-tied messenger, the default) or verified (confirmed by a verification adapter)
    participation_level: Literal["guest", "messenger", "verified"] = "messenger"

    # --- deliberation ----------------------------------------------------------------
    # Consul's rule: this many supports within the period send a proposal to review (0: off)
    support_threshold: int = Field(default=0, ge=0)
    support_threshold_days: int = Field(default=365, ge=1)
    discussion_summary_hour: int = Field(default=18, ge=0, le=23)  # daily summary, local time

    # --- forum sync ----------------------------------------------------------------
    forum_backend: Literal["local", "http", "decidim"] = "local"
    forum_url: str | None = None
    forum_token: SecretStr | None = None
    forum_webhook_secret: SecretStr | None = None
    forum_decidim_component_id: str | None = None
    # Decidim's machine sign-in (POST /api/sign_in): the API user's key and secret; the JWT it
    # answers is renewed before it expires. Without them GONGNON_FORUM_TOKEN is sent as is.
    forum_decidim_api_key: SecretStr | None = None
    forum_decidim_api_secret: SecretStr | None = None
    forum_timeout_seconds: float = Field(default=10.0, gt=0)
    sync_max_attempts: int = Field(default=10, ge=1)
    sync_reconcile_minutes: int = Field(default=5, ge=1)
    sync_backoff_base_seconds: float = Field(default=2.0, gt=0)
    sync_backoff_max_seconds: float = Field(default=600.0, gt=0)
    sync_lease_seconds: int = Field(default=60, ge=1)
    # /healthz says "degraded" once the oldest pending row is older than this
    sync_degraded_after_seconds: int = Field(default=900, ge=1)

    _split_lists = field_validator(
        "slack_officials", "slack_campaigners", "trusted_proxies", mode="before"
    )(_split_csv)
    _split_map = field_validator("slack_digest_routes", mode="before")(_split_routes)

    @field_validator("quiet_hours_start", "quiet_hours_end", mode="before")
    @classmethod
    def _empty_means_off(cls, value: object) -> object:
        """``GONGNON_QUIET_HOURS_START=`` (empty) turns quiet hours off, as documented."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"not an address or network: {item!r}") from exc
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _telegram_secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        raw = value.get_secret_value()
        ok = 1 <= len(raw) <= 256 and all(c.isalnum() or c in "_-" for c in raw) and raw.isascii()
        if not ok:
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @model_validator(mode="after")
    def _backend_needs_url(self) -> Settings:
        if self.forum_backend != "local" and not self.forum_url:
            raise ValueError(
                "GONGNON_FORUM_URL is required when GONGNON_FORUM_BACKEND is not local"
            )
        return self

    # --- derived -------------------------------------------------------------------
    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'gongnon.db').resolve()}"

    @property
    def telegram_enabled(self) -> bool:
        return self.telegram_token is not None

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None and self.slack_signing_secret is not None


class SettingsError(Exception):
    """A setting is wrong; ``str(err)`` is one line naming the variable."""


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning pydantic's report into one line that names the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(part) for part in first.get("loc", ()) if part != "__root__"]
        name = "GONGNON_" + loc[0].upper() if loc else "GONGNON settings"
        msg = first.get("msg", "invalid value").removeprefix("Value error, ")
        raise SettingsError(f"{name}: {msg}") from None
