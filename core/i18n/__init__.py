"""Message catalogs: every user-facing text, Korean first, English complete.

Catalogs are YAML files under ``locales/<locale>/<area>.yaml``; nested keys are joined with
dots (``intake.ask_title``). Each feature owns its own file; a test checks that every locale
has the same keys and the same placeholders.
"""

from __future__ import annotations

import logging
import string
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from core.i18n.josa import PAIRS, particle

__all__ = ["LOCALES", "catalog", "normalise_locale", "t"]

LOCALES: tuple[str, ...] = ("ko", "en")
_ROOT = Path(__file__).with_name("locales")
log = logging.getLogger(__name__)


def _flatten(prefix: str, node: Any, out: dict[str, str], origin: Path) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), value, out, origin)
    else:
        if prefix in out:
            raise ValueError(f"duplicate catalog key {prefix!r} in {origin}")
        out[prefix] = str(node)


@cache
def catalog(locale: str) -> dict[str, str]:
    """All keys of one locale."""
    out: dict[str, str] = {}
    for path in sorted((_ROOT / locale).glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        _flatten("", data, out, path)
    return out


def normalise_locale(value: str | None, default: str = "ko") -> str:
    """Map a platform language code (``en-US``, ``ko``) to one of ours."""
    if not value:
        return default
    base = value.split("-")[0].split("_")[0].lower()
    return base if base in LOCALES else default


class _Formatter(string.Formatter):
    """``{name:이/가}`` writes the particle that agrees with ``name`` (core.i18n.josa)."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        if format_spec in PAIRS:
            return particle(value, format_spec)
        return super().format_field(value, format_spec)


_FORMATTER = _Formatter()


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def t(key: str, locale: str | None = "ko", /, **params: Any) -> str:
    """The text for ``key`` in ``locale`` (falling back to Korean), placeholders filled."""
    loc = locale if locale in LOCALES else "ko"
    text = catalog(loc).get(key)
    if text is None:
        text = catalog("ko").get(key)
        if text is None:
            log.warning("missing catalog key %s", key)
            return key
    if not params:
        return text
    return _FORMATTER.vformat(text, (), _Missing(params))


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}
