"""Understanding what people type for a list of options: "복지" → 복지·보건, "전국" → no region.

Typed text and option names are compared after ``core.similarity.normalise`` (case, spaces,
"·" and punctuation ignored): an exact name wins; else every option whose name contains the
text (or is contained in it); else the two or three closest by shared syllable pairs, for the
person to choose from. Words come from the catalogs (``conv.words.*``) in every locale.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from core.i18n import LOCALES, catalog
from core.similarity import normalise

__all__ = ["Match", "closest", "is_word", "words"]

# Official and everyday names of the regions (facts, not translations).
REGION_NAMES: dict[str, tuple[str, ...]] = {
    "seoul": ("서울특별시", "서울시"),
    "busan": ("부산광역시", "부산시"),
    "daegu": ("대구광역시", "대구시"),
    "incheon": ("인천광역시", "인천시"),
    "gwangju": ("광주광역시", "광주시"),
    "daejeon": ("대전광역시", "대전시"),
    "ulsan": ("울산광역시", "울산시"),
    "sejong": ("세종특별자치시", "세종시"),
    "gyeonggi": ("경기도",),
    "gangwon": ("강원특별자치도", "강원도"),
    "chungbuk": ("충청북도",),
    "chungnam": ("충청남도",),
    "jeonbuk": ("전북특별자치도", "전라북도"),
    "jeonnam": ("전라남도",),
    "gyeongbuk": ("경상북도",),
    "gyeongnam": ("경상남도",),
    "jeju": ("제주특별자치도", "제주도"),
}


def words(key: str) -> frozenset[str]:
    """The normalised words of catalog entry ``key`` ("a|b|c") in every locale."""
    out: set[str] = set()
    for locale in LOCALES:
        out.update(normalise(w) for w in catalog(locale).get(key, "").split("|"))
    out.discard("")
    return frozenset(out)


def is_word(text: str, key: str) -> bool:
    """Is ``text`` one of the words of ``key`` (spacing, case and punctuation ignored)?"""
    norm = normalise(text)
    return bool(norm) and norm in words(key)


class Match:
    """The outcome: ``exact`` (one id) or ``options`` (ids to offer), or neither."""

    __slots__ = ("exact", "options")

    def __init__(self, exact: str | None = None, options: Sequence[str] = ()) -> None:
        self.exact = exact
        self.options = tuple(options)


def _pairs(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} or {text}


def closest(typed: str, options: Iterable[tuple[str, Sequence[str]]], *, offer: int = 3) -> Match:
    """Match ``typed`` against ``(id, names)`` options."""
    norm = normalise(typed)
    if not norm:
        return Match()
    table = [(oid, [n for n in map(normalise, names) if n]) for oid, names in options]
    exact = [oid for oid, names in table if norm in names]
    if len(exact) == 1:
        return Match(exact=exact[0])
    # Parts of a name ("복지" of "복지·보건"), a name within the text ("서울특별시 종로구").
    partial = [
        oid for oid, names in table if any(norm in n or (len(n) >= 2 and n in norm) for n in names)
    ]
    partial = list(dict.fromkeys(exact + partial))
    if len(partial) == 1:
        return Match(exact=partial[0])
    if partial:
        return Match(options=partial[:offer])
    grams = _pairs(norm)
    scored = []
    for oid, names in table:
        best = max((len(grams & _pairs(n)) / len(grams | _pairs(n)) for n in names), default=0.0)
        if best > 0:
            scored.append((best, oid))
    scored.sort(key=lambda s: -s[0])
    return Match(options=[oid for _, oid in scored[:offer]])
