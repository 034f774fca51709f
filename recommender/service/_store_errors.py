"""Why an audit store could not be opened, as types: each names the ``/readyz`` reason it gives.

Every one is an :class:`~recommender.errors.InputError` (the message says what was wrong, where,
and what to do; a URL is shown without its password). ``lasting`` ones are not cured by the
service's own retries alone, so a caller refused for want of a store is told their cause.
"""

from __future__ import annotations

import logging

from recommender._locations import shown_location, shown_store
from recommender.errors import InputError
from recommender.service._readiness import Reason

__all__ = [
    "QuotedRowsHidden",
    "shown_location",
    "shown_store",
    "StoreRefusal",
    "AuditStoreUnreachable",
    "AuditStoreDamaged",
    "AuditSchemaNewer",
    "AuditMigrationsPending",
    "AuditMigrationFailed",
    "AuditPrivilegeMissing",
]


class QuotedRowsHidden(logging.Filter):
    """A log filter that drops what a database server quotes of a row it refused from a line
    and its traceback: PostgreSQL's ``DETAIL:`` line (``Failing row contains (...)``, ``Key
    (...)=(...)``), which holds a person's profile, scores and effects. The client's own
    parameters are hidden by the store's engine (``hide_parameters``); the server's message
    is not the client's to hide, so it is cut here, where the service's lines are written.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _DETAIL in message:
            record.msg, record.args = _without_detail(message), None
        if record.exc_info and not record.exc_text:
            trace = logging.Formatter().formatException(record.exc_info)
            if _DETAIL in trace:
                record.exc_text = _without_detail(trace)
        return True


_DETAIL = "DETAIL:"


def _without_detail(text: str) -> str:
    r"""``text`` without its DETAIL lines, each said to be left out.

    >>> _without_detail("violates check constraint\nDETAIL:  Failing row contains (44, x).")
    'violates check constraint\nDETAIL: not logged (it may quote the row)'
    """
    return "\n".join(
        "DETAIL: not logged (it may quote the row)" if line.lstrip().startswith(_DETAIL) else line
        for line in text.split("\n")
    )


class StoreRefusal(InputError):
    """The audit store cannot be opened to record answers."""

    reason = Reason.AUDIT_STORE_UNAVAILABLE
    lasting = False


class AuditStoreUnreachable(StoreRefusal):
    """The store cannot be reached or opened now (a server down, a login refused, a file or
    folder not writable); the service tries again."""

    reason = Reason.AUDIT_STORE_UNREACHABLE


class AuditStoreDamaged(StoreRefusal):
    """A SQLite file that is not (or no longer) a database."""

    reason = Reason.AUDIT_STORE_DAMAGED
    lasting = True


class AuditSchemaNewer(StoreRefusal):
    """A store a newer release has migrated past every revision this one knows."""

    reason = Reason.AUDIT_SCHEMA_NEWER
    lasting = True


class AuditMigrationsPending(StoreRefusal):
    """A store behind this release's schema whose role may not migrate it."""

    reason = Reason.AUDIT_MIGRATIONS_PENDING
    lasting = True


class AuditMigrationFailed(StoreRefusal):
    """A migration the database refused part-way (a table locked by another session, an object
    that exists already): rolled back, the store left at the revision it had. The service
    tries again; the message says which revision failed and what to do."""


class AuditPrivilegeMissing(StoreRefusal):
    """A role that may not read or write what the service must (``missing``: each privilege
    and its object, e.g. ``INSERT on recommendations``, which holds no secret)."""

    reason = Reason.AUDIT_PRIVILEGE_MISSING
    lasting = True

    def __init__(self, message: str, missing: str):
        super().__init__(message)
        self.missing = missing
