"""Why a worker serves no champion: the refusals of a champion that cannot be served
(:class:`Unservable`), of a catalog that does not load (:class:`CatalogUnreadable`) and of
model files missing or damaged (:class:`ChampionUnloadable`), and the readiness reason /readyz
gives for each failed load (:func:`_no_model_reason`).
"""

from __future__ import annotations

from recommender.errors import InputError, ModelFilesMissing, ModelUnreadable
from recommender.service._readiness import Reason

__all__ = ["CatalogUnreadable", "ChampionUnloadable", "Unservable"]


class Unservable(InputError):
    """A champion was loaded but cannot be served (e.g. an extra feature named like a field)."""


class CatalogUnreadable(Unservable):
    """No champion is served because the intervention catalog does not load."""


class ChampionUnloadable(Unservable):
    """The champion's files are missing or damaged (a :class:`ModelFilesMissing` or
    :class:`ModelUnreadable`, its message kept): nothing but a person's action mends it."""

    def __init__(self, error: Exception, *, reason: Reason):
        # The refusal's one problem, in the API's shape: the version (when the loader knew
        # it) and the file found missing, or that the files are there but cannot be loaded.
        missing = getattr(error, "missing", None)
        problem = {
            "field": "champion",
            "value": getattr(error, "version", None),
            "accepted": "a registered version whose files are all in the artifact store and "
            "load in this release",
            "message": f"missing: {missing}" if missing else str(error),
        }
        super().__init__(str(error), [problem])
        self.reason = reason


def _no_model_reason(error: Exception) -> Reason:
    """The readiness reason of a failed load of the champion."""
    if isinstance(error, CatalogUnreadable):
        return Reason.CATALOG_UNREADABLE
    if isinstance(error, ChampionUnloadable):
        return error.reason
    if isinstance(error, ModelFilesMissing):
        return Reason.MODEL_FILES_MISSING
    if isinstance(error, (Unservable, ModelUnreadable)):
        return Reason.MODEL_UNSERVABLE
    if isinstance(error, InputError):  # the registry answered: no version holds the alias
        return Reason.NO_CHAMPION
    return Reason.MODEL_NOT_LOADED
