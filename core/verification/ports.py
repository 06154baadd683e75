"""The verification ports and their plain values (no database: the conversations import this).
Rules and the SMS verifier: ``core.verification`` and ``core.verification.sms``."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Protocol

__all__ = [
    "CODE_TTL",
    "MAX_ATTEMPTS",
    "MAX_SENDS",
    "RESEND_AFTER",
    "Outcome",
    "SmsFailed",
    "SmsGateway",
    "Verifier",
    "normalise_phone",
]

CODE_TTL = timedelta(minutes=5)
RESEND_AFTER = timedelta(seconds=60)
MAX_ATTEMPTS = 5
MAX_SENDS = 5  # per hour per person
HOUR = timedelta(hours=1)


class SmsFailed(Exception):
    """The gateway did not take the message (its answer, never the number, in the text)."""


class SmsGateway(Protocol):
    async def send_sms(self, to: str, text: str) -> None:
        """Send ``text`` to ``to`` (E.164, "+821012345678"); raise ``SmsFailed``."""
        ...


class Outcome(StrEnum):
    SENT = "sent"
    VERIFIED = "verified"
    BAD_NUMBER = "bad_number"
    TOO_SOON = "too_soon"  # a resend before RESEND_AFTER
    TOO_MANY_SENDS = "too_many_sends"
    PHONE_TAKEN = "phone_taken"  # this number verified another person
    SEND_FAILED = "send_failed"
    WRONG = "wrong"
    EXPIRED = "expired"  # or none was sent, or too many wrong answers
    TOO_MANY_ATTEMPTS = "too_many_attempts"


class Verifier(Protocol):
    """A way to verify a person (SMS code; an identity service would be another)."""

    method: str

    async def start(self, person_id: int, target: str, *, locale: str) -> Outcome: ...

    async def confirm(self, person_id: int, answer: str) -> Outcome: ...


_PHONE = re.compile(r"^(?:\+?82|0)(1[016789])(\d{7,8})$")


def normalise_phone(text: str) -> str | None:
    """A Korean mobile number as E.164 ("010-1234-5678" → "+821012345678"), else None."""
    if len(text) > 30:
        return None
    digits = "".join(ch for ch in text if ch.isdigit() or ch == "+")
    found = _PHONE.match(digits.replace("+82", "82") if digits.startswith("+") else digits)
    if found is None:
        return None
    return f"+82{found.group(1)}{found.group(2)}"
