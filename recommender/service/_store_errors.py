"""Why an audit store could not be opened, as types: each names the ``/readyz`` reason it gives.

Every one is an :class:`~recommender.errors.InputError` (the message says what was wrong, where,
and what to do; a URL is shown without its password). ``lasting`` ones are not cured by the
service's own retries alone, so a caller refused for want of a store is told their cause.
"""

from __future__ import annotations

from recommender.errors import InputError
from recommender.service._readiness import Reason

__all__ = [
    "StoreRefusal",
    "AuditStoreUnreachable",
    "AuditStoreDamaged",
    "AuditSchemaNewer",
    "AuditMigrationsPending",
    "AuditPrivilegeMissing",
]


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


class AuditPrivilegeMissing(StoreRefusal):
    """A role that may not read or write what the service must (``missing``: each privilege
    and its object, e.g. ``INSERT on recommendations``, which holds no secret)."""

    reason = Reason.AUDIT_PRIVILEGE_MISSING
    lasting = True

    def __init__(self, message: str, missing: str):
        super().__init__(message)
        self.missing = missing
