"""What an erasure may do to the audit store's tables, and the refusal of one its role may not
finish: asked of PostgreSQL before the first part (:func:`_check_permitted`), or refused by
the database while the erasure ran (:func:`_not_permitted`), each naming what is missing and
who may grant it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recommender.service._audit import AuditLog
from recommender.service._store_check import (
    grant_statements,
    listed_privileges,
    missing_privileges,
)
from recommender.service._store_errors import AuditPrivilegeMissing, shown_store

if TYPE_CHECKING:
    from recommender.service._erasure import _Erased


# What an erasure does to each table.
_NEEDED = (
    "UPDATE on recommendations, DELETE on assignments and outcomes, INSERT and UPDATE on "
    "erasures (and USAGE on its id sequence)"
)
# The same, as PostgreSQL is asked (missing_privileges): (privilege, table, serial id or None).
_PRIVILEGES = [
    ("SELECT", "recommendations", None),
    ("UPDATE", "recommendations", None),
    ("SELECT", "assignments", None),
    ("DELETE", "assignments", None),
    ("SELECT", "outcomes", None),
    ("DELETE", "outcomes", None),
    ("SELECT", "erasures", None),
    ("INSERT", "erasures", None),
    ("UPDATE", "erasures", None),
    ("USAGE", "erasures", "id"),
]
_RUN_AS_OWNER = (
    "or run the erasure with the tables' owner's URL (RECOMMENDER_AUDIT_URL=... recommender "
    "audit erase ...), which the service's role need not have"
)


def _check_permitted(audit: AuditLog, connection) -> None:
    """PostgreSQL: refuse before the first part an erasure its role may not finish. Refused by
    the database in a later part instead, the parts before it would stay written, the erasure
    half done (a role granted what revision 0008 asked, INSERT but not UPDATE on erasures, is
    refused at the second part's update of the erasure's row)."""
    if connection.dialect.name != "postgresql":
        return
    role, missing = missing_privileges(connection, _PRIVILEGES)
    connection.rollback()
    if missing:
        raise AuditPrivilegeMissing(
            f"the audit store {shown_store(audit.engine.url)}: its role {role} may not erase "
            f"(missing: {listed_privileges(missing)}); nothing was erased. An erasure needs "
            f"{_NEEDED}: as the tables' owner run {grant_statements(role, missing)} "
            + _RUN_AS_OWNER,
            listed_privileges(missing),
        )


def _not_permitted(audit: AuditLog, cause, done: _Erased) -> AuditPrivilegeMissing:
    first_line = str(cause).strip().splitlines()[0]
    if done.parts:  # a privilege revoked while the erasure ran
        what = (
            f"the {done.parts} part(s) written before stay erased ({len(done.found)} people), "
            f"recorded as erasure {done.erasure_id}, not completed; run it again once permitted "
            "to finish it"
        )
    else:
        what = "nothing was erased"
    return AuditPrivilegeMissing(
        f"the audit store {shown_store(audit.engine.url)}: its role may not erase ({first_line});"
        f" {what}. An erasure needs {_NEEDED}: grant them, " + _RUN_AS_OWNER,
        _NEEDED,
    )
