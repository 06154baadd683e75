"""Catalogs: every file has the same keys and placeholders in Korean and English."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.i18n import LOCALES, catalog, placeholders, t

ROOT = Path(__file__).resolve().parents[2] / "core" / "i18n" / "locales"
FILES = sorted(p.name for p in (ROOT / "ko").glob("*.yaml"))


def _flat(node: object, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    else:
        out[prefix] = str(node)
    return out


def _load(locale: str, name: str) -> dict[str, str]:
    path = ROOT / locale / name
    assert path.exists(), f"{locale}/{name} is missing"
    return _flat(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


def test_every_locale_has_the_same_files() -> None:
    for locale in LOCALES:
        assert sorted(p.name for p in (ROOT / locale).glob("*.yaml")) == FILES


@pytest.mark.parametrize("name", FILES)
def test_same_keys_and_placeholders(name: str) -> None:
    ko = _load("ko", name)
    for locale in LOCALES[1:]:
        other = _load(locale, name)
        assert sorted(set(ko) ^ set(other)) == [], f"{name}: keys differ between ko and {locale}"
        for key, text in ko.items():
            assert placeholders(text) == placeholders(other[key]), f"{name}: {key}"
            assert text.strip() and other[key].strip(), f"{name}: {key} is empty"


def test_conversation_texts_cover_every_vocabulary_and_rule() -> None:
    from core.domain.model import CATEGORIES, REGIONS, ProposalStatus

    for locale in LOCALES:
        keys = catalog(locale)
        for key in CATEGORIES:
            assert f"category.{key}" in keys
        for key in REGIONS:
            assert f"region.{key}" in keys
        for status in ProposalStatus:
            assert f"status.{status.value}" in keys
        for field in ("title", "body", "feedback"):
            for code in ("too_short", "too_long"):
                assert f"conv.invalid.{field}.{code}" in keys


def test_button_labels_fit() -> None:
    from conversations.flow import LABEL_MAX

    label_keys = [
        k for k in catalog("ko")
        if k.startswith(("conv.nav.", "conv.menu.", "conv.resume.", "category.", "region."))
        and not k.endswith(("greeting", "prompt", "help_text", ".ask"))
    ]
    label_keys += [
        f"conv.intake.{k}"
        for k in ("keep", "confirm", "remove_photo", "remove_address", "similar_new",
                  "similar_drop", "draft_resume", "draft_new", "extras_none", "extras_done",
                  "pick_region_button", "no_region", "edit_extras", "view_it", "view_mine",
                  "show_all", "delete")
    ]
    label_keys += ["conv.delete.agree", "conv.delete.decline"]
    assert all(k in catalog("ko") for k in label_keys)
    for locale in LOCALES:
        for key in label_keys:
            assert len(t(key, locale)) <= LABEL_MAX, (locale, key)


def test_t_fills_placeholders_and_falls_back() -> None:
    assert t("conv.intake.submitted", "ko", tracking="P-2026-000001").startswith(
        "제출했습니다. 접수번호는 P-2026-000001입니다."
    )
    assert t("conv.intake.submitted", "fr", tracking="X") == t("conv.intake.submitted", "ko",
                                                                tracking="X")
    assert t("conv.invalid.title.too_short", "en", min=4, max=100) == (
        "Please write a title of 4 to 100 characters."
    )
