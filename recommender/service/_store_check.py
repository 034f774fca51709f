"""Whether the audit store can take records, for ``/readyz`` and when it is opened: a replica
whose store is down, read-only or closed to its role gives crisis answers only, so a load
balancer should send ordinary requests elsewhere.

One short check at a time (``SELECT 1``; on PostgreSQL ``SHOW transaction_read_only``, since a
standby or a database set read-only answers queries but refuses every record, and, for a
service that writes, whether its role holds every privilege it writes with: a role that may
read but not insert opened the store and then refused every answer), its result kept for
:data:`CHECK_EVERY` seconds and waited for :data:`CHECK_WAIT` seconds at most: a readiness
probe neither queries the store on every call nor waits long for a server that does not answer
(a store silent past the wait is not ready; its check goes on and decides the next probes).

The privileges are asked of PostgreSQL (``has_table_privilege``, ``has_sequence_privilege``),
never tried: the check writes nothing. What a missing one needs is said as the GRANT to run;
the grants of a whole deployment are :data:`GRANTS` (docs/migrations.md shows the same).
"""

from __future__ import annotations

import logging
import re
import threading
import time

import sqlalchemy as sa

from recommender.service._audit_tables import SERVICE_TABLES
from recommender.service._migrate import VERSION_TABLE
from recommender.service._readiness import Reason
from recommender.service._store_errors import (
    AuditMigrationsPending,
    AuditPrivilegeMissing,
    shown_store,
)

__all__ = [
    "StoreCheck",
    "CHECK_EVERY",
    "CHECK_WAIT",
    "GRANTS",
    "CONNECT_SECONDS",
    "check_privileges",
    "connect_waits",
    "grant_statements",
    "listed_privileges",
    "missing_privileges",
    "not_permitted",
]

log = logging.getLogger("recommender.service")

# Seconds a check's result stands for (readiness probes come every few seconds).
CHECK_EVERY = 2.0
# Seconds a readiness probe waits for a check at most.
CHECK_WAIT = 1.0

# What a deployment grants the service's role once the tables' owner has migrated the store:
# the service reads and appends, nothing more ({role}: the role's name). Again after each
# release that adds a table.
GRANTS = (
    "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {role};",
    "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role};",
)


# How long a connection to a database server is waited for (libpq's connect_timeout, unless the
# URL sets its own): without it, a server that accepts the connection and never answers (hung,
# or a half-open network path) kept `recommender serve` from starting at all, crisis answers
# included, and would hold every worker thread that opens a connection.
CONNECT_SECONDS = 10


def connect_waits(url: str) -> dict:
    """The connection arguments that bound how long a connection to ``url`` is waited for."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "postgresql" or "connect_timeout" in parsed.query:
        return {}
    return {"connect_timeout": CONNECT_SECONDS}


class StoreCheck:
    """Whether ``engine``'s database answered its latest check and, when the service ``writes``
    to it, may take its records (see the module's text)."""

    def __init__(self, engine: sa.Engine, *, shown: str, writes: bool = False):
        self._engine = engine
        self._shown = shown  # the store's URL without its password, for the log
        self._writes = writes
        self._lock = threading.Lock()
        self._problem: tuple[Reason, str | None] | None = None  # it has just been opened
        self._checked_at: float | None = None
        self._running: threading.Event | None = None

    def problem(self) -> tuple[Reason, str | None] | None:
        """``None`` when the store answered its latest check and may take records, else its
        readiness reason and a detail holding no secret (the privileges missing, or ``None``).

        Starts a check when the latest is older than :data:`CHECK_EVERY` seconds and waits
        :data:`CHECK_WAIT` seconds for it at most."""
        with self._lock:
            running = self._running
            due = self._checked_at is None or time.monotonic() - self._checked_at >= CHECK_EVERY
            if running is None and due:
                running = self._running = threading.Event()
                threading.Thread(
                    target=self._check, args=(running,), name="audit-store-check", daemon=True
                ).start()
        if running is not None and not running.wait(CHECK_WAIT):
            return Reason.AUDIT_STORE_UNREACHABLE, None  # silent past the wait: not ready
        return self._problem

    def _check(self, done: threading.Event) -> None:
        problem, cause = None, None
        try:
            with self._engine.connect() as connection:
                if connection.dialect.name == "postgresql":
                    # A server that answers but takes no writes (a standby after a failover, a
                    # database set read-only) fails every ordinary answer just the same.
                    read_only = connection.exec_driver_sql("SHOW transaction_read_only").scalar()
                    if read_only == "on":
                        problem, cause = (Reason.AUDIT_STORE_READ_ONLY, None), "it is read-only"
                    elif self._writes:  # as does a role whose privileges were revoked since
                        role, missing = missing_privileges(connection)
                        if missing:
                            problem = Reason.AUDIT_PRIVILEGE_MISSING, listed_privileges(missing)
                            cause = _lacking(role, missing)
                else:
                    connection.exec_driver_sql("SELECT 1")
        except Exception as error:  # noqa: BLE001 - any failure: ordinary answers would fail
            problem, cause = (Reason.AUDIT_STORE_UNREACHABLE, None), f"{type(error).__name__}"
        with self._lock:
            changed = problem != self._problem
            self._problem = problem
            self._checked_at = time.monotonic()
            self._running = None
        done.set()
        if changed and problem is None:
            log.info("the audit store %s takes records again: ready", self._shown)
        elif changed:
            log.warning(
                "the audit store %s cannot take records (%s): not ready; only crisis "
                "answers can be given until it can",
                self._shown,
                cause,
            )


def check_privileges(engine: sa.Engine, *, shown: str) -> None:
    """Refuse (:class:`AuditPrivilegeMissing`) a PostgreSQL store whose role lacks a privilege
    the service reads or writes with, naming each and the GRANT to run; other databases have
    none to ask. ``shown``: the store's URL without its password."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as connection:
        role, missing = missing_privileges(connection)
    if missing:
        raise AuditPrivilegeMissing(
            f"the audit store {shown}: {_lacking(role, missing)}. Until then it is not opened: "
            "every answer but a crisis one is refused (503), and it is tried again every "
            "reload_poll_seconds",
            listed_privileges(missing),
        )


def missing_privileges(
    connection, needed: list[tuple[str, str, str | None]] | None = None
) -> tuple[str, list[tuple[str, str, str]]]:
    """The role's name (quoted where SQL needs it) and each ``(privilege, kind, object)`` it
    lacks of ``needed`` (by default those the service uses, :func:`_needed`), e.g.
    ``("INSERT", "TABLE", "recommendations")`` or ``("USAGE", "SEQUENCE",
    "public.recommendations_id_seq")``. PostgreSQL; one query that writes nothing."""
    needed = _needed() if needed is None else needed
    columns, params = ["quote_ident(current_user)"], {}
    for k, (privilege, table, column) in enumerate(needed):
        params[f"t{k}"] = table
        if column is None:
            columns.append(f"has_table_privilege(:t{k}, '{privilege}')")
        else:  # nextval() needs USAGE or UPDATE on the sequence behind a serial id
            params[f"c{k}"] = column
            columns.append(f"pg_get_serial_sequence(:t{k}, :c{k})")
            columns.append(
                f"has_sequence_privilege(pg_get_serial_sequence(:t{k}, :c{k}), 'USAGE, UPDATE')"
            )
    row = list(connection.execute(sa.text(f"SELECT {', '.join(columns)}"), params).one())
    role, values, missing = row[0], iter(row[1:]), []
    for privilege, table, column in needed:
        if column is None:
            if next(values) is False:
                missing.append((privilege, "TABLE", table))
        else:
            sequence, held = next(values), next(values)
            if sequence is not None and held is False:
                missing.append((privilege, "SEQUENCE", sequence))
    return role, missing


def _needed() -> list[tuple[str, str, str | None]]:
    """``(privilege, table, id column or None)`` the service's role must hold: SELECT and
    INSERT on every table the service uses (each is appended to; not ``erasures``, which only
    ``recommender audit erase`` writes), SELECT on the schema's version table, and USAGE on the sequence of each serial id (the column given)."""
    needed: list[tuple[str, str, str | None]] = [("SELECT", VERSION_TABLE, None)]
    for table in SERVICE_TABLES:
        needed += [("SELECT", table.name, None), ("INSERT", table.name, None)]
        serial = table.autoincrement_column
        if serial is not None:
            needed.append(("USAGE", table.name, serial.name))
    return needed


def listed_privileges(missing: list[tuple[str, str, str]]) -> str:
    """``INSERT on recommendations, USAGE on sequence public.recommendations_id_seq``."""
    return ", ".join(
        f"{privilege} on {'' if kind == 'TABLE' else kind.lower() + ' '}{name}"
        for privilege, kind, name in missing
    )


def _lacking(role: str, missing: list[tuple[str, str, str]]) -> str:
    """What ``role`` lacks and the GRANT statements that give it."""
    return (
        f"its role {role} may not do what the service must to record answers (missing: "
        f"{listed_privileges(missing)}); as the tables' owner run: {grant_statements(role, missing)}"
        f" (docs/migrations.md gives the grants for every table of the schema: {_grants(role)})"
    )


def grant_statements(role: str, missing: list[tuple[str, str, str]]) -> str:
    """The GRANT statements that give ``role`` what it lacks, one per kind of object and set of
    privileges: ``GRANT INSERT ON TABLE assignments, recommendations TO svc;``."""
    held: dict[tuple[str, str], list[str]] = {}
    for privilege, kind, name in missing:
        held.setdefault((kind, name), []).append(privilege)
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (kind, name), privileges in held.items():
        grouped.setdefault((kind, tuple(privileges)), []).append(name)
    return " ".join(
        f"GRANT {', '.join(privileges)} ON {kind} {', '.join(names)} TO {role};"
        for (kind, privileges), names in grouped.items()
    )


def _identifier(name: str) -> str:
    """``name`` as SQL must write it (PostgreSQL's ``quote_ident``)."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def _grants(role: str) -> str:
    return " ".join(grant.format(role=role) for grant in GRANTS)


def not_permitted(url: sa.engine.URL, cause, *, behind: bool):
    """The refusal of a store its role may not migrate (``behind``: its schema is older than
    this release's, :class:`AuditMigrationsPending`) or may not even read
    (:class:`AuditPrivilegeMissing`), from the database's own message ``cause``."""
    first_line = str(cause).strip().splitlines()[0]
    role = "<the service's role>" if not url.username else _identifier(url.username)
    message = (
        f"the audit store {shown_store(url)}: its role may not create "
        f"or read the audit tables ({first_line}); migrate it once with a role that may "
        "(RECOMMENDER_AUDIT_URL=<that role's URL> alembic -c alembic.ini upgrade head, see "
        f"docs/migrations.md) and grant this one what it uses ({_grants(role)}); only a store "
        "with no audit tables yet is served by granting this role CREATE on the schema instead "
        "(tables that exist are altered by their owner alone)"
    )
    if behind:
        return AuditMigrationsPending(message)
    return AuditPrivilegeMissing(message, "SELECT on the audit tables")
