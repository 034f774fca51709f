"""The audit store's tables, as queries and the writer use them.

The database's schema is made and upgraded by the Alembic migrations in ``migrations/`` (a test
checks that these tables and the migrations agree); ``migrations/env.py`` reads ``_metadata``.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "recommendations",
    "reloads",
    "assignments",
    "outcomes",
    "outcome_submissions",
    "store_facts",
    "erasures",
    "SERVICE_TABLES",
    "AUDIT_TABLE_NAMES",
    "ERASED_PERSON",
    "AUDIT_COLUMNS",
    "ROW_COLUMNS",
    "SERVED_COLUMNS",
    "SECONDARY_COLUMNS",
    "PLAN_ID_PREFIX",
    "UNLINKABLE_ANSWER",
    "UNASSIGNED_ANSWERS_FACT",
    "ranked_answer",
]

_metadata = sa.MetaData()
# A plan's lines share its plan_id in `batch_id`; the prefix tells them from a batch's.
PLAN_ID_PREFIX = "plan-"
# The recommended arm's secondary figures a record keeps, in this order.
SECONDARY_COLUMNS = ("dp_effect", "dp_lower", "dp_upper", "pa_effect", "pa_lower", "pa_upper")
recommendations = sa.Table(
    "recommendations",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("request_id", sa.String(64), nullable=False, unique=True),
    sa.Column("batch_id", sa.String(64), nullable=True),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("caller_role", sa.String(16), nullable=False),
    sa.Column("person_hash", sa.String(64), nullable=False),
    sa.Column("safety_level", sa.String(16), nullable=False),
    sa.Column("recommended", sa.String(64), nullable=True),
    sa.Column("ranking_meaningful", sa.Boolean, nullable=True),
    # {"arm": [effect, lower, upper]} in EE points; JSON text so every backend stores it alike.
    sa.Column("effects", sa.Text, nullable=False),
    # The recommended arm's DP and PA effects with their bounds (MBI points, at the answer's
    # interval level), as its answer showed them (revision 0005). Null where the answer showed
    # none: the evidence-only model's arms (and arms carried over from it), a crisis answer, a
    # plan's line (plans show EE alone), and every record written before revision 0005.
    *(sa.Column(name, sa.Float, nullable=True) for name in SECONDARY_COLUMNS),
)
AUDIT_COLUMNS = tuple(c.name for c in recommendations.columns)
# The answers no outcome is linked to: crisis answers and plan lines. Linking an outcome looks
# up a person's such answers (revision 0006), through an index over these rows alone: a full
# index of person_hash would cost every answer a random B-tree insert, and the person's ranked
# answers are found through `assignments`, which has one. Literals, not bound parameters: a
# query finds the partial index only where its condition reads as the index's own (SQLite
# matches the expression's terms; PostgreSQL proves the implication from constants).
UNLINKABLE_ANSWER = sa.or_(
    recommendations.c.safety_level == sa.literal_column("'crisis'"),
    recommendations.c.batch_id.like(sa.literal_column(f"'{PLAN_ID_PREFIX}%'")),
)
sa.Index(
    "ix_recommendations_unlinkable_person",
    recommendations.c.person_hash,
    sqlite_where=UNLINKABLE_ANSWER,
    postgresql_where=UNLINKABLE_ANSWER,
)
# Every accepted /reload, so that all workers (and replicas) sharing this store follow it, and
# an auditor can see who put which version in service when.
reloads = sa.Table(
    "service_reloads",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("caller_role", sa.String(16), nullable=False),
)

# The learning loop's tables (issue 11), beside the audit log in the same database. One row per
# ranked answer: the arm served, the probability of every candidate arm and the profile without
# its identifier, which is what retraining from the log needs.
assignments = sa.Table(
    "assignments",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False, unique=True),
    sa.Column("person_hash", sa.String(64), nullable=False, index=True),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("safety_level", sa.String(16), nullable=False),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("policy", sa.String(16), nullable=False),
    sa.Column("arm", sa.String(64), nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    # {"arm": probability} of every ranked arm, and the profile's fields except person_id.
    sa.Column("probabilities", sa.Text, nullable=False),
    sa.Column("profile", sa.Text, nullable=False),
)
# The columns an append writes, in table order (the id is the database's).
ROW_COLUMNS = tuple(c.name for c in recommendations.columns if c.name != "id")
SERVED_COLUMNS = tuple(c.name for c in assignments.columns if c.name != "id")
# Follow-up scores, each linked to the one served recommendation it follows. Append-only: a
# correction is a row naming the row it replaces in `corrects` (revision 0007), and the
# recommendation's outcome is the row no other row corrects.
outcomes = sa.Table(
    "outcomes",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("person_hash", sa.String(64), nullable=False, index=True),
    sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("arm_taken", sa.String(64), nullable=False),
    sa.Column("ee_followup", sa.Integer, nullable=False),
    sa.Column("dp_followup", sa.Integer, nullable=False),
    sa.Column("pa_followup", sa.Integer, nullable=False),
    sa.Column("source", sa.String(120), nullable=False),
    sa.Column("corrects", sa.Integer, nullable=True),
)
# One first outcome a recommendation, and each row corrected at most once: unique indexes, so
# that they hold when two submissions race.
_FIRST_ONLY = outcomes.c.corrects.is_(None)
sa.Index(
    "uq_outcomes_first_per_request",
    outcomes.c.request_id,
    unique=True,
    sqlite_where=_FIRST_ONLY,
    postgresql_where=_FIRST_ONLY,
)
sa.Index("uq_outcomes_corrects", outcomes.c.corrects, unique=True)
# The answer of each POST /outcomes sent with an Idempotency-Key and recorded (revision 0010),
# so that the same submission sent again (a retry after a timeout) is answered as it was. A row
# holds digests alone: of the caller's API key with the idempotency key, and of the body (both
# keyed with the audit salt: a body holds person ids), beside the answer (counts only).
outcome_submissions = sa.Table(
    "outcome_submissions",
    _metadata,
    sa.Column("key_digest", sa.String(64), primary_key=True),
    sa.Column("body_digest", sa.String(64), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
)
# What the store remembers about itself: ``salt_fingerprint``, a keyed digest of the salt its
# person hashes were made with (never the salt), so that a service with another salt is refused.
store_facts = sa.Table(
    "store_facts",
    _metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(128), nullable=False),
)
# Every answer is a crisis answer or a plan line (UNLINKABLE_ANSWER, indexed by person), has an
# assignment (indexed by person), or is found by row id at or below the highest id named by a
# store_facts row with this prefix (revision 0011): one for the answers without assignment
# found at the upgrade (releases before the learning loop logged none), one more for each later
# write of such records (AuditLog.append takes them), so that the service only inserts. None:
# the store holds no such answer. Linking outcomes reads them to say why a row is refused.
UNASSIGNED_ANSWERS_FACT = "unassigned_answers_through:"


def ranked_answer(safety_level: str, batch_id: str | None) -> bool:
    """Whether a record so written is neither a crisis answer nor a plan line (an answer
    UNASSIGNED_ANSWERS_FACT bounds when it has no assignment)."""
    plan_line = batch_id is not None and batch_id.startswith(PLAN_ID_PREFIX)
    return safety_level != "crisis" and not plan_line


# One row per erasure of people's rows (revision 0008, ``recommender audit erase``): when, and
# how many people and rows, never whose. An erasure is written in parts; ``completed_at``
# (revision 0009) is set with its last part, and stays null if it was stopped between parts. The service neither reads nor writes it, so its role
# needs no privilege on it (an erasure runs with the tables' owner's, which may delete).
erasures = sa.Table(
    "erasures",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("people_asked", sa.Integer, nullable=False),
    sa.Column("people_found", sa.Integer, nullable=False),
    sa.Column("answers_redacted", sa.Integer, nullable=False),
    sa.Column("crisis_answers_redacted", sa.Integer, nullable=False),
    sa.Column("assignments_deleted", sa.Integer, nullable=False),
    sa.Column("outcomes_deleted", sa.Integer, nullable=False),
)
# The tables the service reads and appends to (what its role must be granted to open the store).
# Not ``outcome_submissions``, which only a POST /outcomes with an Idempotency-Key uses: a
# deployment whose grants predate revision 0010 keeps serving, and such a request names the
# grant it lacks.
SERVICE_TABLES = tuple(
    t for t in _metadata.sorted_tables if t is not erasures and t is not outcome_submissions
)
# Every table of the store, the schema revision's included (what a pg_dump of it must name).
AUDIT_TABLE_NAMES = (*(t.name for t in _metadata.sorted_tables), "recommender_schema_version")
# The person_hash of an answer whose person was erased: no hash (64 hex digits) is ever this.
ERASED_PERSON = "erased"
