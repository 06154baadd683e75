"""Campaign domain errors, each with a catalog key that explains it politely."""

from __future__ import annotations

from core.domain.errors import AlreadyDone, NotAllowed, NotFound

__all__ = ["AlreadyVoted", "NotInvited", "PushNotFound", "PushStateError", "SurveyClosed",
           "SurveyNotFound", "SurveyNotOpenYet"]


class SurveyNotFound(NotFound):
    key = "campaign.error.survey_not_found"


class SurveyClosed(NotAllowed):
    key = "campaign.error.closed"


class SurveyNotOpenYet(NotAllowed):
    key = "campaign.error.not_open_yet"


class NotInvited(NotAllowed):
    """A targeted survey answered by someone it was not sent to."""

    key = "campaign.error.not_invited"


class AlreadyVoted(AlreadyDone):
    key = "campaign.error.already_voted"


class PushNotFound(NotFound):
    key = "campaign.error.push_not_found"


class PushStateError(NotAllowed):
    """The push cannot do that in its current status (``status`` param)."""

    key = "campaign.error.push_state"
