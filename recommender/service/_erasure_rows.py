"""Whose rows an erasure finds, and in which parts it erases them: the ids given, hashed with the
store's salt and refused when no store can hold them (:func:`_hashes`); on SQLite, the people's
answers looked for before the write lock is taken (:func:`_answers_seen`) and read again under
it by primary key (:func:`_answers_of`); and the rows each person holds, counted to cut the
erasure into parts of whole people (:func:`_rows_held`, :func:`_parts`).

What is done to the rows found is :mod:`recommender.service._erasure`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from recommender.cohort import unhashable_id_problem
from recommender.errors import InputError
from recommender.service._audit import AuditLog
from recommender.service._audit_tables import assignments, outcomes, recommendations
from recommender.service._outcome_links import query_batches
from recommender.service._requests import STORED_ID_MAX_LENGTH


def _rows_held(connection, people, seen: _SeenAnswers | None) -> dict[str, int]:
    """How many rows each person hashed in ``people`` has in the store, read without the write
    lock, to cut the erasure into parts (rows appended since are erased too, in their part)."""
    held = dict.fromkeys(people, 0)
    tables = [assignments, outcomes]
    if seen is not None:
        for person_hash, ids in seen.ids.items():
            held[person_hash] += len(ids)
    else:
        tables.append(recommendations)
    for table in tables:
        for batch in query_batches(people):
            query = (
                sa.select(table.c.person_hash, sa.func.count())
                .where(table.c.person_hash.in_(batch))
                .group_by(table.c.person_hash)
            )
            for person_hash, count in connection.execute(query):
                held[person_hash] += count
    return held


def _parts(people: dict, held: dict[str, int], part_rows: int) -> list[dict]:
    """``people`` cut, in the order given, into parts of whole people of at most ``part_rows``
    rows (a person with more is a part alone). A person is never split: a stop between parts
    leaves each person erased or not, never half."""
    parts: list[dict] = [{}]
    rows = 0
    for person_hash, positions in people.items():
        if parts[-1] and rows + held[person_hash] > part_rows:
            parts.append({})
            rows = 0
        parts[-1][person_hash] = positions
        rows += held[person_hash]
    return parts


def _hashes(audit: AuditLog, person_ids: Sequence[str], named) -> dict[str, list[int]]:
    """Each distinct id's hash and the positions it was given at. An id is hashed exactly as
    given: ids stored before today's rules on what an id may hold hash as they did."""
    if isinstance(person_ids, str):  # a lone id would be read as its characters
        person_ids = [person_ids]
    if not person_ids:
        raise InputError("person ids: none given; accepted: one person id or more")
    people: dict[str, list[int]] = {}
    for position, person_id in enumerate(person_ids):
        where = f"person id {position + 1}" if named is None else named[position]
        if not isinstance(person_id, str):
            raise InputError(
                f"{where}: a {type(person_id).__name__}, not text; accepted: "
                "the person_id as the program sent it to the service"
            )
        if len(person_id) > STORED_ID_MAX_LENGTH:  # a crisis answer keeps the first 1,000
            problem = (
                f"is {len(person_id):,} characters long, more than any stored id "
                f"({STORED_ID_MAX_LENGTH:,})"
            )
        elif person_id.strip():
            problem = unhashable_id_problem(person_id)
        else:
            problem = "holds only spaces" if person_id else "is empty"
        if problem is not None:  # never stored: the service refuses such an id
            raise InputError(
                f"{where} {problem}; accepted: the person_id as the program "
                "sent it to the service (nothing was erased)"
            )
        people.setdefault(audit.person_hash(person_id), []).append(position)
    return people


@dataclass(frozen=True)
class _SeenAnswers:
    """The answers of the people to erase that a scan before the write lock found: their row
    ids by person hash, among the rows up to ``up_to`` (the last row id when the scan began)."""

    up_to: int
    ids: dict[str, list[int]]


def _answers_seen(connection: sa.Connection, people) -> _SeenAnswers | None:
    """SQLite: find the people's answers without the write lock. On SQLite a writer excludes
    every other writer, so a scan under the lock made the service's answers wait for it (past
    their busy timeout, an answer fails). Rows appended later have higher ids (SQLite gives a
    new row the highest id plus one), so the erasure reads again under the lock only the rows
    found here and those past ``up_to``. PostgreSQL (None): an erasure's scan locks no row the
    service writes, so the erasure reads the people's answers in its transaction."""
    if connection.dialect.name != "sqlite":
        return None
    row = recommendations.c
    up_to = connection.execute(sa.select(sa.func.max(row.id))).scalar_one() or 0
    ids: dict[str, list[int]] = {}
    for batch in query_batches(people):
        query = sa.select(row.person_hash, row.id).where(row.person_hash.in_(batch))
        for person_hash, row_id in connection.execute(query.where(row.id <= up_to)):
            ids.setdefault(person_hash, []).append(row_id)
    connection.rollback()  # the write lock is taken next, in a transaction of its own
    return _SeenAnswers(up_to, ids)


def _answers_of(batch: list[str], seen: _SeenAnswers | None) -> list:
    """Conditions that, together, select the answers of the people hashed in ``batch``: by
    primary key, the rows seen before the lock and the rows appended since (each row still
    checked to be the person's: another erasure may have redacted it meanwhile)."""
    theirs = recommendations.c.person_hash.in_(batch)
    if seen is None:
        return [theirs]
    row_id = recommendations.c.id
    known = [i for person_hash in batch for i in seen.ids.get(person_hash, ())]
    return [theirs & row_id.in_(ids) for ids in query_batches(known)] + [
        theirs & (row_id > seen.up_to)
    ]
