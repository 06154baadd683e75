"""Verification: raising a person to the ``verified`` participation level.

The ``Verifier`` port is what a verification method offers the conversation: ``start`` (send
a challenge to what the person typed: a phone number) and ``confirm`` (check the answer).
``SmsVerifier`` is the one shipped: a 6-digit code sent through the ``SmsGateway`` port
(``bots/sms``: an HTTP adapter for a generic SMS API); Korean identity services (PASS,
간편인증) return a CI/DI instead and are outlined in ``docs/verification.md``.

Rules of the SMS code: valid ``CODE_TTL`` (5 minutes), at most ``MAX_ATTEMPTS`` wrong answers
per code, a resend only after ``RESEND_AFTER`` and at most ``MAX_SENDS`` per hour (each SMS
costs money and a code flood is abuse); a resend replaces the code. One phone verifies one
person: a number that already verified someone else is refused, with the advice to link the
two instead (``/link``). Only digests of codes and numbers are stored; no number is logged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.verification.ports import (
    CODE_TTL,
    HOUR,
    MAX_ATTEMPTS,
    MAX_SENDS,
    RESEND_AFTER,
    Outcome,
    SmsFailed,
    SmsGateway,
    Verifier,
    normalise_phone,
)

if TYPE_CHECKING:
    from core.kernel import Kernel

__all__ = [
    "CODE_TTL",
    "HOUR",
    "MAX_ATTEMPTS",
    "MAX_SENDS",
    "RESEND_AFTER",
    "Outcome",
    "SmsFailed",
    "SmsGateway",
    "Verifier",
    "install",
    "normalise_phone",
]


def install(core: Kernel) -> None:
    """Register the SMS code handlers (``core.verification.sms``); the ``SmsVerifier`` itself
    is built by the composition root when an SMS gateway is configured."""
    from core.verification import sms

    sms.register(core.bus)
