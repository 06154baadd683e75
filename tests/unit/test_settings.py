"""Settings: defaults for the embedded mode, and one clear line naming a bad variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.config import SettingsError, load_settings


def test_embedded_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(_env_file=None)
    assert settings.host == "127.0.0.1" and settings.port == 8080
    assert settings.timezone == "Asia/Seoul" and settings.default_locale == "ko"
    assert settings.redis_url is None
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.effective_database_url.endswith("var/gongnon.db")
    assert not settings.telegram_enabled and not settings.slack_enabled


def test_lists_and_routes_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GONGNON_SLACK_OFFICIALS", "U1, U2,,U3")
    monkeypatch.setenv("GONGNON_SLACK_DIGEST_ROUTES", "welfare=C1,education=C2")
    settings = load_settings(_env_file=None)
    assert settings.slack_officials == ["U1", "U2", "U3"]
    assert settings.slack_digest_routes == {"welfare": "C1", "education": "C2"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GONGNON_PORT", "eighty"),
        ("GONGNON_TIMEZONE", "Mars/Olympus"),
        ("GONGNON_DEFAULT_LOCALE", "fr"),
        ("GONGNON_TELEGRAM_WEBHOOK_SECRET", "has spaces!"),
        ("GONGNON_SLACK_DIGEST_ROUTES", "welfare"),
    ],
)
def test_bad_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings(_env_file=None)
    message = str(err.value)
    assert message.startswith(name + ":")
    assert "\n" not in message


def test_cli_stops_with_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "GONGNON_PORT": "-5", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "bots.cli", "migrate"],
        env=env, cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gongnon: GONGNON_PORT:")
