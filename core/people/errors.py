"""Refusals of linking, each with its polite catalog text (``people.error.*``)."""

from __future__ import annotations

from core.domain.errors import DomainError

__all__ = ["CodeInvalid", "LastIdentity", "SamePerson", "TooManyGuesses"]


class CodeInvalid(DomainError):
    """Wrong, expired or already used: the person is not told which (that would help guess)."""

    key = "people.error.code_invalid"


class TooManyGuesses(DomainError):
    key = "people.error.too_many_guesses"


class SamePerson(DomainError):
    key = "people.error.same_person"


class LastIdentity(DomainError):
    key = "people.error.last_identity"
