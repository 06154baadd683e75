"""Typed domain errors. Each carries a catalog key so every channel can explain it politely."""

from __future__ import annotations

__all__ = [
    "AlreadyDone",
    "DomainError",
    "InvalidField",
    "InvalidTransition",
    "NotAllowed",
    "NotFound",
]


class DomainError(Exception):
    """Base class. ``key`` is an i18n catalog key; ``params`` fill its placeholders."""

    key = "error.generic"

    def __init__(self, message: str = "", **params: object) -> None:
        super().__init__(message or self.key)
        self.params = params

    def params_for(self, locale: str) -> dict[str, object]:
        """The placeholders of ``key`` in ``locale`` (most errors: ``params`` as they are)."""
        return dict(self.params)


class NotFound(DomainError):
    key = "error.not_found"


class InvalidField(DomainError):
    """A value breaks a rule: ``field`` names it, ``code`` says which rule (too_short, …)."""

    key = "error.invalid_field"

    def __init__(self, field: str, code: str, **params: object) -> None:
        super().__init__(f"{field}: {code}", field=field, code=code, **params)
        self.field = field
        self.code = code


class InvalidTransition(DomainError):
    key = "error.invalid_transition"


class AlreadyDone(DomainError):
    """An idempotent action that had already happened (supporting twice, …)."""

    key = "error.already_done"


class NotAllowed(DomainError):
    key = "error.not_allowed"
