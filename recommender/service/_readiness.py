"""Why ``/readyz`` says not ready: one short code per cause, and what an operator should do.

A worker that serves a model but could not load the version a ``/reload`` announced as the
champion (another worker loaded it; here its files are missing or damaged) stays ready: it
answers with a vetted former champion, and a bad announcement that drained every worker would
leave a load balancer nothing to send even crisis requests to. Its ``/readyz`` says 200 with a
body naming both versions and why (:func:`stale_body`), for the person called to it.

A load balancer or Kubernetes reads the status alone (503: send ordinary requests elsewhere;
crisis answers are given either way); the person called to it reads the body, which names each
cause (``reason``, ``reasons``) and says in a sentence what to do. The sentences are fixed
texts: ``/readyz`` needs no key, so the body names no store URL, role, host, key, salt, file
content or person id; the service log has the details. The one figure a body may add is the
list of privileges an audit role lacks (``INSERT on recommendations``), which is no secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, Field

__all__ = [
    "Reason",
    "ADVICE",
    "NotReadyResponse",
    "not_ready_body",
    "StaleModel",
    "StaleResponse",
    "stale_body",
]


class Reason(StrEnum):
    """A cause of not being ready, as ``/readyz`` names it."""

    STARTING = "starting"
    CATALOG_UNREADABLE = "catalog_unreadable"
    NO_CHAMPION = "no_champion"
    MODEL_NOT_LOADED = "model_not_loaded"
    MODEL_UNSERVABLE = "model_unservable"
    MODEL_FILES_MISSING = "model_files_missing"
    AUDIT_SALT_MISSING = "audit_salt_missing"
    AUDIT_SALT_MISMATCH = "audit_salt_mismatch"
    AUDIT_STORE_UNREACHABLE = "audit_store_unreachable"
    AUDIT_STORE_READ_ONLY = "audit_store_read_only"
    AUDIT_PRIVILEGE_MISSING = "audit_privilege_missing"
    AUDIT_MIGRATIONS_PENDING = "audit_migrations_pending"
    AUDIT_SCHEMA_NEWER = "audit_schema_newer"
    AUDIT_STORE_DAMAGED = "audit_store_damaged"
    AUDIT_FILE_REPLACED = "audit_file_replaced"
    AUDIT_STORE_FULL = "audit_store_full"
    AUDIT_STORE_UNAVAILABLE = "audit_store_unavailable"


_SALT_WHERE = "RECOMMENDER_AUDIT_SALT, the secrets folder's audit_salt or audit.salt in serve.yaml"

ADVICE = {
    Reason.STARTING: "The worker is still starting; ask again in a few seconds.",
    Reason.CATALOG_UNREADABLE: "The intervention catalog could not be loaded: correct "
    "interventions.yaml (configs/, or the folder RECOMMENDER_CONFIG_DIR names), then POST "
    "/reload; the service log names the problem.",
    Reason.NO_CHAMPION: "No model holds the 'champion' alias in the registry this service "
    "reads (MLFLOW_TRACKING_URI): train and promote one; the worker loads it by itself "
    "(tried again after reload_poll_seconds, then less and less often) or at once on POST "
    "/reload.",
    Reason.MODEL_NOT_LOADED: "The champion could not be loaded (its registry or artifacts "
    "could not be read): check that MLFLOW_TRACKING_URI and the artifact store are reachable; "
    "the worker tries again by itself, or at once on POST /reload; the service log says why.",
    Reason.MODEL_UNSERVABLE: "The champion is a model this release cannot serve (the service "
    "log says why): promote a version it can serve, then POST /reload.",
    Reason.MODEL_FILES_MISSING: "The champion's files are missing from its artifact folder "
    "(deleted, or a copy or mount without them; the service log names the version and the "
    "file): restore them, or promote a version whose files are there, then POST /reload.",
    Reason.AUDIT_SALT_MISSING: "No usable audit salt: give the salt the audit store was "
    f"written with ({_SALT_WHERE}); a salt file or secrets folder is read again every "
    "reload_poll_seconds, a variable or serve.yaml needs a restart.",
    Reason.AUDIT_SALT_MISMATCH: "The audit store was written with another audit salt than "
    f"this service's: give the service that salt ({_SALT_WHERE}), or another store.",
    Reason.AUDIT_STORE_UNREACHABLE: "The audit store cannot be reached or opened (a database "
    "server down or refusing the login, a SQLite file or folder this user cannot write): the "
    "service tries again every reload_poll_seconds; the service log says why.",
    Reason.AUDIT_STORE_READ_ONLY: "The audit store answers but takes no writes (a standby "
    "after a failover, a database set read-only): point audit.url (RECOMMENDER_AUDIT_URL) at "
    "the primary, or make the database writable; checked again at the next probe.",
    Reason.AUDIT_PRIVILEGE_MISSING: "The audit store's database role may not do what the "
    "service must to record answers: the service log names the GRANT to run as the tables' "
    "owner (docs/migrations.md); checked again every reload_poll_seconds.",
    Reason.AUDIT_MIGRATIONS_PENDING: "The audit store's schema is older than this release and "
    "the service's database role may not migrate it: run `alembic -c alembic.ini upgrade "
    "head` once with the owner's URL, then grant the service's role its tables "
    "(docs/migrations.md).",
    Reason.AUDIT_SCHEMA_NEWER: "A newer release has upgraded the audit store's schema: serve "
    "that release, or give this one another store.",
    Reason.AUDIT_STORE_DAMAGED: "The audit store's SQLite file is not a database this service "
    "can read (it is left as it is): restore it from a backup, or move it away to start a new "
    "store.",
    Reason.AUDIT_FILE_REPLACED: "The audit store's SQLite file was removed or replaced while "
    "the service ran, and nothing more is written there: restart the service.",
    Reason.AUDIT_STORE_FULL: "The disk holding the audit store's SQLite file is full, so "
    "nothing can be recorded and only crisis answers are given: free space on it (the service "
    "log names the store); the service is ready again by itself once there is room.",
    Reason.AUDIT_STORE_UNAVAILABLE: "The audit store could not be opened (the service log has "
    "the details); the service tries again every reload_poll_seconds.",
}


class NotReadyResponse(BaseModel):
    """``/readyz``'s answer while the service is not ready (503)."""

    error: str = Field(description="What is wrong and what to do, one sentence per cause.")
    reason: Reason = Field(description="The first cause, as a code.")
    reasons: list[Reason] = Field(description="Every cause found, as codes.")
    problems: list = Field(default_factory=list, description="Always empty here.")


def not_ready_body(causes: list[tuple[Reason, str | None]]) -> dict:
    """The 503 body for ``causes`` (each a reason and an optional detail that holds no
    secret), at least one.

    Examples
    --------
    >>> body = not_ready_body([(Reason.NO_CHAMPION, None)])
    >>> body["reason"], body["reasons"], body["error"].startswith("not ready: No model holds")
    ('no_champion', ['no_champion'], True)
    """
    sentences = [
        ADVICE[reason] if detail is None else f"{ADVICE[reason]} Missing: {detail}."
        for reason, detail in causes
    ]
    reasons = [str(reason) for reason, _ in causes]
    return {
        "error": "not ready: " + " ".join(sentences),
        "reason": reasons[0],
        "reasons": reasons,
        "problems": [],
    }


@dataclass(frozen=True)
class StaleModel:
    """A worker serving another version than the champion a ``/reload`` announced, and why."""

    serving: str  # the version this worker serves
    champion: str  # the version the newest /reload announced, which it could not load
    reason: Reason  # why, as a code
    cause: str  # the loader's message, naming the file: for the log and the card, not /readyz
    since: str  # when the load first failed, ISO 8601 UTC
    # A /reload that kept the version put an edited catalog in force: what differs is then the
    # catalog, named by version and sha256: the one served, and the file's as it is now (its
    # sha256, or that it cannot be read at all).
    serving_catalog: str | None = None
    announced_catalog: str | None = None

    def statement(self) -> str:
        """What this worker serves beside what the newest /reload put in force, in words that
        differ: the versions, or, for a /reload of the version it serves, the catalogs.

        Examples
        --------
        >>> StaleModel("8", "9", Reason.MODEL_FILES_MISSING, "", "").statement()
        'version 8, not version 9, which a /reload announced as the champion and which it could not load'
        >>> StaleModel("7", "7", Reason.CATALOG_UNREADABLE, "", "", "2026.12-3 (sha256 ab12)",
        ...            "sha256 cd34").statement().split(",")[0]
        'version 7 under intervention catalog 2026.12-3 (sha256 ab12)'
        """
        if self.serving_catalog is None:
            return (
                f"version {self.serving}, not version {self.champion}, which a /reload "
                "announced as the champion and which it could not load"
            )
        return (
            f"version {self.serving} under intervention catalog {self.serving_catalog}, not "
            f"under the catalog file as it is now ({self.announced_catalog}), which a /reload "
            f"of version {self.champion} put in force and which it could not read"
        )

    def facts(self) -> dict:
        """What ``/model_card.json``'s ``serving`` block says of it (scientists, auditors)."""
        return {
            "serving_version": self.serving,
            "champion_version": self.champion,
            "serving_catalog": self.serving_catalog,
            "announced_catalog": self.announced_catalog,
            "reason": str(self.reason),
            "cause": self.cause,
            "since": self.since,
        }


class StaleResponse(BaseModel):
    """``/readyz``'s answer (200) while this worker serves another version than the champion
    a ``/reload`` announced, because that version could not be loaded here."""

    ready: bool = Field(description="Always true: every answer is given, by serving_version.")
    stale: bool = Field(description="Always true: serving_version is not the champion.")
    serving_version: str = Field(description="The version this worker answers with.")
    champion_version: str = Field(
        description="The version the newest /reload announced as the champion."
    )
    reason: Reason = Field(description="Why champion_version could not be loaded, as a code.")
    warning: str = Field(description="What is wrong and what to do.")


def stale_body(stale: StaleModel) -> dict:
    """The 200 body of a worker in ``stale``'s state: no file, URL or secret (the log has the
    file).

    Examples
    --------
    >>> stale = StaleModel("8", "9", Reason.MODEL_FILES_MISSING, "... MLmodel ...", "2026-01-01")
    >>> body = stale_body(stale)
    >>> body["stale"], body["serving_version"], body["champion_version"], "MLmodel" in str(body)
    (True, '8', '9', False)
    """
    return {
        "ready": True,
        "stale": True,
        "serving_version": stale.serving,
        "champion_version": stale.champion,
        "reason": str(stale.reason),
        "warning": (
            f"This worker answers with {stale.statement()}: {ADVICE[stale.reason]} It tries "
            f"{'the catalog file' if stale.serving_catalog else f'version {stale.champion}'} "
            "again by itself meanwhile."
        ),
    }
