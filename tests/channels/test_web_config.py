"""The README's configuration table names every setting, and the web chat's settings work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.config import Settings, SettingsError, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_documents_every_setting() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1]
    documented = set(re.findall(r"^\| `(GONGNON_[A-Z0-9_]+)` \|", section, re.MULTILINE))
    expected = {f"GONGNON_{name.upper()}" for name in Settings.model_fields}
    assert expected - documented == set(), "add these to README's Configuration table"
    assert documented - expected == set(), "README documents settings that do not exist"


def test_web_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GONGNON_WEB_SESSION_IDLE_DAYS", "30")
    monkeypatch.setenv("GONGNON_WEB_ENABLED", "false")
    settings = load_settings(_env_file=None)
    assert settings.web_session_idle_days == 30 and settings.web_enabled is False
    monkeypatch.setenv("GONGNON_WEB_UPLOAD_MAX_BYTES", "12")
    with pytest.raises(SettingsError) as err:
        load_settings(_env_file=None)
    assert str(err.value).startswith("GONGNON_WEB_UPLOAD_MAX_BYTES:")
