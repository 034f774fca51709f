"""What the store knows of the people a submission of outcomes names, as linking reads it.

Each query finds a person's rows through an index: ranked answers through ``assignments``
(indexed by person since revision 0003), crisis answers and plan lines through the partial
index of revision 0006 (:data:`UNLINKABLE_ANSWER`), stored outcomes through ``outcomes``'
own. ``recommendations.person_hash`` has no full index, which every answer would pay for:
the answers that are none of these (ranked answers without assignment, which releases before
the learning loop wrote) are read by row id, up to the bound ``store_facts`` keeps
(:data:`UNASSIGNED_ANSWERS_FACT`, revision 0011), and not at all in a store holding none.
Only rows about to be refused read them (:func:`answered_at_all`,
:func:`served_before_the_loop`), to say why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from recommender.service._audit import AuditLog
from recommender.service._audit_export import as_utc
from recommender.service._audit_tables import (
    PLAN_ID_PREFIX,
    UNASSIGNED_ANSWERS_FACT,
    UNLINKABLE_ANSWER,
    assignments,
    outcomes,
    recommendations,
    store_facts,
)

__all__ = [
    "StoredOutcomes",
    "answered_at_all",
    "served_before_the_loop",
    "served_by_person",
    "stored_outcomes",
    "unlinkable_answers",
    "query_batches",
]

# PostgreSQL binds at most 65,535 parameters a query, and an import may name more people.
_QUERY_BATCH = 10_000


def query_batches(values) -> list[list]:
    """``values`` sorted, in lists short enough for one query's ``IN`` each."""
    ordered = sorted(values)
    return [ordered[i : i + _QUERY_BATCH] for i in range(0, len(ordered), _QUERY_BATCH)]


def served_by_person(audit: AuditLog, hashes: set) -> dict:
    """Each of ``hashes``' ranked answers with a logged assignment, the recommendations an
    outcome may follow: ``{"request_id", "logged_at"}`` in time order."""
    out: dict = {}
    with audit.engine.connect() as connection:
        for batch in query_batches(hashes):  # a person's rows all fall in one batch, in order
            query = (
                sa.select(
                    assignments.c.person_hash, assignments.c.request_id, assignments.c.logged_at
                )
                .where(assignments.c.person_hash.in_(batch))
                .order_by(assignments.c.logged_at, assignments.c.id)
            )
            for person_hash, request_id, logged_at in connection.execute(query):
                out.setdefault(person_hash, []).append(
                    {"request_id": request_id, "logged_at": as_utc(logged_at)}
                )
    return out


def _unassigned_through(connection) -> int | None:
    """The highest row id an answer without assignment may have, or None: the store holds none
    (see :data:`UNASSIGNED_ANSWERS_FACT`)."""
    query = sa.select(store_facts.c.value).where(
        store_facts.c.name.startswith(UNASSIGNED_ANSWERS_FACT, autoescape=True)
    )
    return max((int(value) for (value,) in connection.execute(query)), default=None)


def answered_at_all(audit: AuditLog, hashes: set) -> set:
    """Those of ``hashes`` the audit log holds any answer for (crisis answers and plan lines
    included): through assignments' index, the index of crisis answers and plan lines, and the
    answers without assignment by row id."""
    if not hashes:
        return set()
    person = recommendations.c.person_hash
    batch = sa.bindparam("batch", expanding=True)
    queries = [
        sa.select(assignments.c.person_hash).where(assignments.c.person_hash.in_(batch)),
        # as the index's own condition reads, so that it is used
        sa.select(person).where(sa.and_(person.in_(batch), UNLINKABLE_ANSWER)),
    ]
    out: set = set()
    with audit.engine.connect() as connection:
        through = _unassigned_through(connection)
        if through is not None:
            queries.append(
                sa.select(person).where(person.in_(batch), recommendations.c.id <= through)
            )
        for batch_values in query_batches(hashes):
            for query in queries:
                found = connection.execute(query.distinct(), {"batch": batch_values})
                out.update(person_hash for (person_hash,) in found)
    return out


def served_before_the_loop(audit: AuditLog, hashes: set) -> set:
    """Those of ``hashes`` served a ranked recommendation that has no assignment: written by a
    release older than the learning loop (audit revision 0003), which logged none. Read by row
    id, up to the bound of such answers (none in a store holding none)."""
    out: set = set()
    if not hashes:
        return out
    with audit.engine.connect() as connection:
        through = _unassigned_through(connection)
        if through is None:
            return out
        query = _ranked_without_assignment(through)
        for batch in query_batches(hashes):
            out.update(h for (h,) in connection.execute(query, {"batch": list(batch)}))
    return out


def _ranked_without_assignment(through: int):
    ranked_without_assignment = sa.and_(
        recommendations.c.id <= through,
        recommendations.c.person_hash.in_(sa.bindparam("batch", expanding=True)),
        recommendations.c.recommended.is_not(None),
        recommendations.c.safety_level != "crisis",
        sa.or_(
            recommendations.c.batch_id.is_(None),
            sa.not_(recommendations.c.batch_id.startswith(PLAN_ID_PREFIX)),
        ),
        ~sa.exists().where(assignments.c.request_id == recommendations.c.request_id),
    )
    return sa.select(recommendations.c.person_hash).where(ranked_without_assignment).distinct()


def unlinkable_answers(audit: AuditLog, hashes: set) -> dict:
    """Each of ``hashes``' answers no outcome is linked to (crisis answers and plan lines),
    ``{"logged_at", "kind"}`` in time order."""
    unlinkable = sa.and_(
        recommendations.c.person_hash.in_(sa.bindparam("batch", expanding=True)),
        UNLINKABLE_ANSWER,  # as the index's own condition reads, so that it is used
    )
    query = (
        sa.select(
            recommendations.c.person_hash,
            recommendations.c.logged_at,
            recommendations.c.safety_level,
        )
        .where(unlinkable)
        .order_by(recommendations.c.logged_at, recommendations.c.id)
    )
    out: dict = {}
    with audit.engine.connect() as connection:
        for batch in query_batches(hashes):
            for person_hash, logged_at, level in connection.execute(query, {"batch": batch}):
                kind = "crisis answer" if level == "crisis" else "plan line (/allocate)"
                out.setdefault(person_hash, []).append(
                    {"logged_at": as_utc(logged_at), "kind": kind}
                )
    return out


@dataclass
class StoredOutcomes:
    """The stored outcomes of some people: per recommendation the one in force (its row id and
    values), and per person the values of those in force and of every row ever stored."""

    in_force: dict = field(default_factory=dict)
    in_force_of: dict = field(default_factory=dict)
    ever_of: dict = field(default_factory=dict)


def stored_outcomes(audit: AuditLog, person_hashes: set) -> StoredOutcomes:
    stored, rows = StoredOutcomes(), []
    with audit.engine.connect() as connection:
        for batch in query_batches(person_hashes):
            query = (
                sa.select(outcomes).where(outcomes.c.person_hash.in_(batch)).order_by(outcomes.c.id)
            )
            rows.extend(connection.execute(query))
    corrected = {r.corrects for r in rows}
    for r in rows:
        values = (
            as_utc(r.measured_at).replace(microsecond=0),
            r.arm_taken,
            r.ee_followup,
            r.dp_followup,
            r.pa_followup,
        )
        stored.ever_of.setdefault(r.person_hash, set()).add(values)
        if r.id not in corrected:
            stored.in_force[r.request_id] = (r.id, values)
            stored.in_force_of.setdefault(r.person_hash, set()).add(values)
    return stored
