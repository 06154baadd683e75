"""Personal-data detection and masking for Korean citizen text (pure functions, no I/O).

``mask(text)`` returns the text with every detected item's letters and digits replaced by ``*``
(separators kept, so the citizen sees where something was hidden) and a count per kind. Masking a
masked text finds nothing: the result is stable.

What is detected (kinds), and the rules that keep dates, amounts, years and tracking numbers out:

- ``phone``: mobile ``01[016789]`` and landline (``02``, ``0[3-6][1-5]``, ``070``, ``050x``) with
  dashes, dots, spaces or none, ``+82``/``82-`` prefixes and ``(02)``-style parentheses. Business
  numbers such as ``1588-xxxx`` and short codes (``112``, ``119``) are not personal data and are
  left alone; so are local numbers written without an area code (``123-4567``).
- ``rrn`` (주민등록번호) and ``frn`` (외국인등록번호): ``YYMMDD-GNNNNNN``. The birth date must
  be a real date in the century the gender digit gives (1,2,5,6 → 1900s; 3,4,7,8 → 2000s); 1–4
  is a resident, 5–8 a foreigner. Numbers issued since October 2020 have a random tail, so the
  check digit cannot be required: written with the dash (or a space) the date + gender-digit rule
  is enough; written as 13 digits in a row the check digit must hold (``(11 − Σ mod 11) mod 10``
  for residents, ``(13 − Σ mod 11) mod 10`` for pre-2020 foreigners) or a keyword (주민, 외국인,
  등록번호) must be near. A post-2020 number typed without its dash and without a keyword is
  therefore missed (1 in 10 passes the check digit by chance): the price of not masking 13-digit
  parcel numbers. 법인/사업자 just before the number means a corporate number: skipped.
  ``YYMMDD-G******`` (already half hidden) counts too: birth date and sex are personal data.
- ``passport``: new format ``M123A4567``; old ``M12345678``/``S12345678``; other letters only
  after the word 여권.
- ``driver_licence``: ``11-12-123456-12`` (region code 11–26, 28) or ``서울 12-123456-12``; twelve
  digits in a row only after 면허.
- ``card``: 13–19 digits (groups of 4 with dashes/spaces, or in a row) passing Luhn with a card
  network prefix (2, 3, 4, 5, 6 or 9).
- ``bank_account``: 10–14 digits in 2–5 groups (or in a row) within a few characters of a bank name,
  은행, 계좌, 예금주, 입금, 송금 or 이체 — but not beside 택배/송장/운송장 (parcel numbers).
- ``email``.

Full-width digits and dash look-alikes (``０１０－``, ``–``, ``−``) are read as ASCII (1:1, so the
positions stay right).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

__all__ = [
    "KINDS",
    "Finding",
    "Masked",
    "find",
    "luhn_ok",
    "mask",
    "rrn_checksum_ok",
]

KINDS: tuple[str, ...] = (
    "phone",
    "rrn",
    "frn",
    "passport",
    "driver_licence",
    "card",
    "bank_account",
    "email",
)


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    start: int
    end: int


class Masked(NamedTuple):
    """``(text, findings)``: the masked text and how many items of each kind were hidden."""

    text: str
    findings: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.findings.values())


# --- normalisation (1:1 so that offsets in the normalised text are offsets in the original) ----

_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_TABLE = {ord(ch): "-" for ch in _DASHES}
_TABLE.update({0xFF10 + i: str(i) for i in range(10)})  # full-width digits
_TABLE.update({0xFF0B: "+", 0xFF08: "(", 0xFF09: ")", 0xFF0E: ".", 0xFF20: "@", 0x3000: " "})
_TABLE.update({0xFF21 + i: chr(ord("A") + i) for i in range(26)})
_TABLE.update({0xFF41 + i: chr(ord("a") + i) for i in range(26)})


def _normalise(text: str) -> str:
    return text.translate(_TABLE)


# No number detector may take a slice of a longer number ("P-2026-000001", "1,234,567").
_NB = r"(?<![0-9])(?<![0-9][-.,])"  # not after a digit (or a digit and a separator)
_NA = r"(?![0-9])(?![-.,][0-9])"  # not before one

_SEP = r"[-. ]?"

_MOBILE = re.compile(
    _NB
    + r"(?:(?:\+82|(?<![0-9+])82(?=[-. ]))[-. ]?(?:\(0\))?|(?<![0-9+])0)"
    + r"1[016789]"
    + r"(?:[-. ]?[0-9]{3,4}[-. ]?[0-9]{4}|\)[0-9]{3,4}-[0-9]{4})"
    + _NA
)
_AREA = r"(?:2|[3-6][1-5]|70|50[2-8])"
_LANDLINE = re.compile(
    _NB
    + r"(?:(?:\+82[-. ]?|(?<![0-9+])82-)(?:\(0\))?" + _AREA
    + r"|(?<![0-9+])\(0" + _AREA + r"\)\s?"
    + r"|(?<![0-9+])0" + _AREA + r"\)?)"
    + r"(?:[-. ]?)[1-9][0-9]{2,3}[-. ][0-9]{4}"
    + _NA
)
_LANDLINE_TIGHT = re.compile(_NB + r"0" + _AREA + r"[1-9][0-9]{6,7}" + _NA)

_RRN = re.compile(
    _NB + r"([0-9]{6})([- ]?)([1-8])([0-9]{6}|[*xX●○]{6})" + _NA.replace("[0-9]", "[0-9*]")
)
_RRN_KEYWORD = re.compile(r"주민|외국인|등록\s*번호|생년월일")
_NOT_RRN_KEYWORD = re.compile(r"법인|사업자")  # 법인등록번호 has the same 6-7 shape

_PASSPORT_NEW = re.compile(r"(?<![A-Za-z0-9])[MSRODG][0-9]{3}[A-Z][0-9]{4}(?![A-Za-z0-9])")
_PASSPORT_OLD = re.compile(r"(?<![A-Za-z0-9])([A-Z])[0-9]{8}(?![A-Za-z0-9])")
_PASSPORT_KEYWORD = re.compile(r"여권|passport", re.IGNORECASE)

_REGION_NAMES = "서울|부산|경기|강원|충북|충남|전북|전남|경북|경남|제주|대구|인천|광주|대전|울산"
_LICENCE = re.compile(
    _NB
    + r"(?:(?:1[1-9]|2[0-6]|28)-[0-9]{2}-[0-9]{6}-[0-9]{2}"
    + r"|(?:" + _REGION_NAMES + r")\s?[0-9]{2}-?[0-9]{6}-?[0-9]{2})"
    + _NA
)
_LICENCE_TIGHT = re.compile(_NB + r"(?:1[1-9]|2[0-6]|28)[0-9]{10}" + _NA)
_LICENCE_KEYWORD = re.compile(r"면허")

_CARD = re.compile(
    _NB
    + r"(?:[0-9]{4}[- ][0-9]{4}[- ][0-9]{4}[- ][0-9]{4}(?:[- ]?[0-9]{1,3})?"  # 16–19
    + r"|3[0-9]{3}[- ][0-9]{6}[- ][0-9]{4,5}"  # Amex 4-6-5, Diners 4-6-4
    + r"|[0-9]{13,19})"
    + _NA
)

_BANK_NUMBER = re.compile(
    r"(?<![Pp])(?<![Pp]-)" + _NB + r"(?:[0-9]{2,6}(?:-[0-9]{1,8}){1,4}|[0-9]{10,14})" + _NA
)
_BANK_KEYWORD = re.compile(
    r"은행|계좌|예금주|입금|송금|이체|농협|신한|국민은행|KB|NH|IBK|SC제일|씨티|카카오뱅크|카뱅"
    r"|토스뱅크|케이뱅크|새마을금고|신협|수협|우리은행|하나은행|기업은행|저축은행|뱅크",
    re.IGNORECASE,
)
_PARCEL_KEYWORD = re.compile(r"택배|송장|운송장|등기|우편물")

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)


def _digits(s: str) -> str:
    return "".join(ch for ch in s if "0" <= ch <= "9")


def luhn_ok(number: str) -> bool:
    """The Luhn check of a digit string (card numbers)."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)


def rrn_checksum_ok(number: str) -> bool:
    """The check digit of a 13-digit resident (or pre-2020 foreigner) registration number."""
    if len(number) != 13 or not number.isdigit():
        return False
    total = sum(int(a) * w for a, w in zip(number[:12], _RRN_WEIGHTS, strict=True))
    resident = (11 - total % 11) % 10
    foreigner = (13 - total % 11) % 10
    check = int(number[12])
    return check == (foreigner if number[6] in "5678" else resident)


def _birth_date_ok(yymmdd: str, gender: str) -> bool:
    century = 1900 if gender in "1256" else 2000
    try:
        date(century + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6]))
    except ValueError:
        return False
    return True


def _near(
    pattern: re.Pattern[str], text: str, start: int, end: int, before: int, after: int
) -> bool:
    return bool(pattern.search(text, max(0, start - before), min(len(text), end + after)))


def _rrns(text: str) -> list[Finding]:
    out = []
    for m in _RRN.finditer(text):
        birth, sep, gender, tail = m.group(1), m.group(2), m.group(3), m.group(4)
        if not _birth_date_ok(birth, gender):
            continue
        if _near(_NOT_RRN_KEYWORD, text, m.start(), m.end(), 12, 0):
            continue
        starred = not tail.isdigit()
        if not sep and not starred:
            # 13 digits in a row: too much like other long numbers without more evidence.
            if not (
                rrn_checksum_ok(birth + gender + tail)
                or _near(_RRN_KEYWORD, text, m.start(), m.end(), 20, 5)
            ):
                continue
        out.append(Finding("frn" if gender in "5678" else "rrn", m.start(), m.end()))
    return out


def _phones(text: str) -> list[Finding]:
    out = [Finding("phone", m.start(), m.end()) for m in _MOBILE.finditer(text)]
    out += [Finding("phone", m.start(), m.end()) for m in _LANDLINE.finditer(text)]
    out += [Finding("phone", m.start(), m.end()) for m in _LANDLINE_TIGHT.finditer(text)]
    return out


def _passports(text: str) -> list[Finding]:
    out = [Finding("passport", m.start(), m.end()) for m in _PASSPORT_NEW.finditer(text)]
    for m in _PASSPORT_OLD.finditer(text):
        if m.group(1) in "MS" or _near(_PASSPORT_KEYWORD, text, m.start(), m.end(), 15, 0):
            out.append(Finding("passport", m.start(), m.end()))
    return out


def _licences(text: str) -> list[Finding]:
    out = [Finding("driver_licence", m.start(), m.end()) for m in _LICENCE.finditer(text)]
    for m in _LICENCE_TIGHT.finditer(text):
        if _near(_LICENCE_KEYWORD, text, m.start(), m.end(), 20, 0):
            out.append(Finding("driver_licence", m.start(), m.end()))
    return out


def _cards(text: str) -> list[Finding]:
    out = []
    for m in _CARD.finditer(text):
        digits = _digits(m.group())
        if 13 <= len(digits) <= 19 and digits[0] in "234569" and luhn_ok(digits):
            out.append(Finding("card", m.start(), m.end()))
    return out


def _bank_accounts(text: str) -> list[Finding]:
    out = []
    for m in _BANK_NUMBER.finditer(text):
        if not 10 <= len(_digits(m.group())) <= 14:
            continue
        if not _near(_BANK_KEYWORD, text, m.start(), m.end(), 25, 12):
            continue
        if _near(_PARCEL_KEYWORD, text, m.start(), m.end(), 25, 12):
            continue
        out.append(Finding("bank_account", m.start(), m.end()))
    return out


def _emails(text: str) -> list[Finding]:
    return [Finding("email", m.start(), m.end()) for m in _EMAIL.finditer(text)]


# Earlier detectors win an overlap: the stricter evidence first.
_DETECTORS = (_emails, _rrns, _cards, _phones, _licences, _passports, _bank_accounts)


def find(text: str) -> list[Finding]:
    """Personal data in ``text``, in order, without overlaps."""
    norm = _normalise(text)
    taken: list[Finding] = []
    for detector in _DETECTORS:
        for f in detector(norm):
            if all(f.end <= t.start or f.start >= t.end for t in taken):
                taken.append(f)
    return sorted(taken, key=lambda f: f.start)


def mask(text: str) -> Masked:
    """``(masked_text, {kind: count})``; letters and digits of each finding become ``*``."""
    findings = find(text)
    if not findings:
        return Masked(text, {})
    parts: list[str] = []
    pos = 0
    for f in findings:
        parts.append(text[pos : f.start])
        parts.append("".join("*" if ch.isalnum() else ch for ch in text[f.start : f.end]))
        pos = f.end
    parts.append(text[pos:])
    return Masked("".join(parts), dict(Counter(f.kind for f in findings)))
