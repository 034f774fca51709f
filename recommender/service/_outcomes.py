"""Follow-up scores in, and the log out as a training cohort: the store side of the loop.

A program reports, for a person it asked for a recommendation, the follow-up MBI subscale
scores, when they were measured and which arm the person actually took. The report is linked
to the served recommendation through the salted person hash: the latest recommendation served
to that person at or before the measurement. No raw identifier is stored.

Every report is checked as a whole before anything is written: a score out of range, an arm
the catalog does not know, a person never served, a measurement dated before the person's
first recommendation or after a crisis answer or plan line given since the recommendation it
would follow, or a second, different outcome for the same recommendation refuses the whole
submission, naming the row and field. An outcome identical to one already stored is a
duplicate: refused (409) over HTTP, skipped by a file import, so that importing the same file
twice changes nothing; the same outcome twice within one submission is refused either way. A
submission sent over HTTP with an ``Idempotency-Key`` keeps its answer with the key, in the
transaction that records its outcomes, and is answered from it when sent again
(:mod:`recommender.service._outcome_keys`).

A mistyped outcome is replaced only by an explicit correction (``correct``), appended as a row
of its own that names the row it replaces; nothing stored is changed or deleted
(:mod:`recommender.service._outcome_log` reads the outcome in force and the history).

What a row holds, and the wording of each problem a refusal names, are in
:mod:`recommender.service._outcome_rows`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from pydantic import ValidationError

from recommender.cohort import MBI_ITEMS_REFUSED, looks_like_mbi_item, spelling_hint
from recommender.cohort import PERSON_ID_ACCEPTED, person_id_problem
from recommender.service._audit import AuditLog
from recommender.service._audit_tables import outcome_submissions, outcomes
from recommender.service._outcome_links import (
    answered_at_all,
    served_before_the_loop,
    served_by_person,
    stored_outcomes,
    unlinkable_answers,
)
from recommender.service._outcome_rows import (
    OUTCOME_FIELDS,
    OutcomeRefused,
    OutcomeRow,
    _accepted,
    _duplicate,
    _echoed,
    _problem,
    _read_as_utc,
    _row_number,
    _summary,
)
from recommender.service._problems import MBI_ITEM_MESSAGE, too_many_fields

__all__ = [
    "OutcomeReport",
    "OutcomeRefused",
    "OutcomeRow",
    "record_outcomes",
    "OUTCOME_FIELDS",
]


@dataclass
class OutcomeReport:
    """What a submission did."""

    recorded: int = 0
    corrected: int = 0  # corrections stored (not counted in ``recorded``)
    already_recorded: int = 0
    linked: list = field(default_factory=list)  # request ids, one per stored row

    def as_dict(self) -> dict:
        return {
            "recorded": self.recorded,
            "corrected": self.corrected,
            "already_recorded": self.already_recorded,
        }


def record_outcomes(
    audit: AuditLog,
    raws: Sequence[Mapping],
    *,
    arms: Sequence[str],
    source: str,
    duplicates: str = "refuse",
    correct: bool = False,
    now: datetime | None = None,
    submission: Callable[[OutcomeReport], Mapping] | None = None,
) -> OutcomeReport:
    """Check every row, link it to its recommendation and store them all, or nothing.

    Parameters
    ----------
    audit : AuditLog
        The audit store (with its salt): the outcomes go into the same database.
    raws : sequence of mapping
        Rows with :data:`OUTCOME_FIELDS`.
    arms : sequence of str
        The catalog's arm ids (usual care included), accepted as ``arm_taken``.
    source : str
        Recorded with each row (``"api"``, ``"import <file name>"``).
    duplicates : {"refuse", "skip"}
        What an outcome identical to a stored one does: refuse the submission (409) or count
        it as already recorded (an import run twice).
    correct : bool
        Each row replaces the outcome in force of the recommendation it links to (a mistyped
        score, say): stored as a row of its own naming the row it replaces, which is kept. A
        row whose recommendation has no outcome is refused (422); one identical to the outcome
        in force is a duplicate, as ``duplicates`` says. Without it, a row different from the
        outcome recorded for its recommendation is refused (409), naming this flag.
    submission : callable, optional
        Given the report, the ``outcome_submissions`` row that keeps the answer to an
        ``Idempotency-Key`` (:mod:`recommender.service._outcome_keys`): written in the same
        transaction as the outcomes, so that a key is kept exactly when its outcomes are.

    Raises
    ------
    OutcomeRefused
        Naming every bad row and field; nothing is written.
    """
    now = now or datetime.now(timezone.utc)
    problems, checked = [], []
    if not raws:
        raise OutcomeRefused(
            "outcomes: the submission holds no rows",
            status=422,
            problems=[
                {
                    "field": "outcomes",
                    "value": 0,
                    "accepted": "at least one outcome row",
                    "message": "empty",
                }
            ],
        )
    for i, raw in enumerate(raws):
        many = too_many_fields(raw, tuple(OutcomeRow.model_fields), prefix=f"outcomes[{i}]")
        if many:
            problems += many
            continue
        try:
            row = OutcomeRow.model_validate(raw)
        except ValidationError as error:
            for item in error.errors():
                name = ".".join(str(p) for p in item["loc"]) or "row"
                accepted, message = _accepted(name), item["msg"]
                if item["type"] == "extra_forbidden" and looks_like_mbi_item(name):
                    accepted, message = MBI_ITEMS_REFUSED, MBI_ITEM_MESSAGE
                problems.append(_problem(i, name, _echoed(name, item), accepted, message))
            continue
        if row.arm_taken not in arms:
            hint = spelling_hint(row.arm_taken, arms)  # a spreadsheet's 'Coaching'
            message = f"unknown arm ({hint})" if hint else "unknown arm"
            problems.append(
                _problem(i, "arm_taken", row.arm_taken, f"one of {', '.join(arms)}", message)
            )
            continue
        measured = row.measured_at  # in UTC
        # An hour's grace for clocks that disagree between the program and the service.
        if measured > now + timedelta(hours=1):
            problems.append(
                _problem(
                    i,
                    "measured_at",
                    measured.isoformat(),
                    "a time that is not in the future",
                    "in the future" + _read_as_utc(raw),
                )
            )
            continue
        checked.append((i, row, measured, audit.person_hash(row.person_id)))

    people = {h for *_, h in checked}
    served = served_by_person(audit, people)  # through assignments' index
    unlinkable = unlinkable_answers(audit, people)  # through the index of such answers
    # Only a row that will be refused reads the whole log: a person with no assignment, or one
    # measured before their first (its message says whether an older release served them).
    refused = {
        h
        for _, _, measured, h in checked
        if h not in served or served[h][0]["logged_at"].replace(microsecond=0) > measured
    }
    before_the_loop = served_before_the_loop(audit, refused)
    unknown = refused - set(served) - set(unlinkable) - before_the_loop
    answered = set(unlinkable) | answered_at_all(audit, unknown)
    linked = []
    for i, row, measured, person_hash in checked:
        history = served.get(person_hash)
        if not history and person_hash in before_the_loop:
            # Ranked, yet with no assignment: served by a release older than the learning loop
            # (audit revision 0003), which logged neither the probability nor the profile a
            # retraining needs. Saying "crisis answer or plan line" would be false.
            problems.append(
                _problem(
                    i,
                    "person_id",
                    "(hidden)",
                    "a person served a ranked recommendation since the audit store recorded "
                    "assignments (serve the person again, then send the outcome measured after "
                    "that answer)",
                    "this person id was served only by a release older than the learning loop "
                    "(before audit revision 0003), which logged no assignment probability or "
                    "profile, so no outcome can be linked to those recommendations",
                )
            )
            continue
        if not history and person_hash in answered:
            problems.append(
                _problem(
                    i,
                    "person_id",
                    "(hidden)",
                    "a person served a ranked recommendation (/recommend or /recommend_batch)",
                    "this person id was answered only with a crisis answer or a plan line "
                    "(/allocate), which no outcome is linked to",
                )
            )
            continue
        unaccepted = None if history else person_id_problem(row.person_id)
        if unaccepted:
            # An id served before the contract refused such characters still links (above);
            # one never served is refused for what it holds, not as an unknown person.
            problems.append(
                _problem(i, "person_id", "(hidden)", PERSON_ID_ACCEPTED, f"person_id {unaccepted}")
            )
            continue
        if not history:
            problems.append(
                _problem(
                    i,
                    "person_id",
                    "(hidden)",
                    "a person the service has served a recommendation, the id written exactly "
                    "as it was sent then (case, spaces and leading zeros count: a spreadsheet "
                    "reads 000123 as 123)",
                    # Not "was never served": an erasure leaves no trace of whom it removed
                    # (README, "To erase people"), so a follow-up file sent after one meets
                    # its people here, and a lead told they were never served hunts a typo.
                    "unknown person: the store holds no recommendation for this person id "
                    "(never served with this service's salt, or erased since: leave an erased "
                    "person's rows out of the file or body)",
                )
            )
            continue
        # To the second, as outcomes are stored: a program's clock writes whole seconds, so an
        # outcome stamped in the second of its answer (10:00:00 for 10:00:00.7) is after it.
        before = [item for item in history if item["logged_at"].replace(microsecond=0) <= measured]
        if not before:
            first = history[0]["logged_at"].replace(microsecond=0).isoformat()
            older = (
                " (an outcome of a recommendation served by a release older than the learning "
                "loop, before audit revision 0003, cannot be linked: it logged no assignment)"
                if person_hash in before_the_loop
                else ""
            )
            problems.append(
                _problem(
                    i,
                    "measured_at",
                    measured.isoformat(),
                    f"a time at or after {first}, when the "
                    "person's first recommendation was served"
                    + (" with a logged assignment" if older else ""),
                    "dated before its recommendation" + older + _read_as_utc(raws[i]),
                )
            )
            continue
        latest = before[-1]
        # A crisis answer or a plan line given the person after that recommendation and before
        # the measurement: the score follows it too (crisis care, or the arm a plan allocated),
        # so it is no follow-up of the earlier arm alone, and retraining would credit that arm.
        since = [
            answer
            for answer in unlinkable.get(person_hash, ())
            if latest["logged_at"] < answer["logged_at"]
            and answer["logged_at"].replace(microsecond=0) <= measured
        ]
        if since:
            last = since[-1]
            answer_at = last["logged_at"].replace(microsecond=0).isoformat()
            served_at = latest["logged_at"].replace(microsecond=0).isoformat()
            problems.append(
                _problem(
                    i,
                    "measured_at",
                    measured.isoformat(),
                    f"a time before {answer_at} (the outcome of the recommendation served at "
                    f"{served_at}), or serve the person a ranked recommendation again and send "
                    "the outcome measured after that answer",
                    f"measured after the person's {last['kind']} at {answer_at}, which came "
                    f"after their recommendation served at {served_at}: no outcome is linked to "
                    "a crisis answer or a plan line, and the score no longer follows that "
                    "recommendation alone",
                )
            )
            continue
        served_at = latest["logged_at"].replace(microsecond=0).isoformat()
        linked.append((i, row, measured, person_hash, latest["request_id"], served_at))
    if problems:
        # In row order, as a program corrects its file: a row's link problem beside its others
        # (the import prints the first 50).
        problems.sort(key=_row_number)
        raise OutcomeRefused(_summary(problems), problems=problems, status=422)

    stored = stored_outcomes(audit, {h for *_, h, _, _ in linked})
    fresh, report, conflicts, missing, seen = [], OutcomeReport(), [], [], {}
    for i, row, measured, person_hash, request_id, served_at in linked:
        values = (
            measured.replace(microsecond=0),
            row.arm_taken,
            row.ee_followup,
            row.dp_followup,
            row.pa_followup,
        )
        in_force = stored.in_force.get(request_id)  # (row id, values) of its outcome, if any
        earlier, row_before = None if in_force is None else in_force[1], None
        # A correction compares with the outcomes in force (one replaced may be restored); a
        # first outcome with every one stored, so that a file imported again after a correction
        # changes nothing.
        if values in (stored.in_force_of if correct else stored.ever_of).get(person_hash, ()):
            # This very outcome is stored, though perhaps linked to an earlier recommendation:
            # measured within the hour's grace, before one served since (a file imported again).
            earlier = values
        if request_id in seen:
            row_before, earlier = seen[request_id]
        if earlier is not None and (earlier == values or row_before is not None or not correct):
            if earlier == values and duplicates == "skip" and row_before is None:
                report.already_recorded += 1  # stored before: an import run again
                continue
            conflicts.append(_duplicate(i, request_id, earlier == values, row_before))
            continue
        if correct and in_force is None:
            missing.append(
                _problem(
                    i,
                    "person_id",
                    "(hidden)",
                    "with correct, only rows replacing a recorded outcome: a first outcome is "
                    "sent without it",
                    "nothing to correct: no outcome is recorded for the recommendation this row "
                    f"links to (request {request_id}, served at {served_at}); a row links to "
                    "the person's latest recommendation at or before its measured_at",
                )
            )
            continue
        seen[request_id] = (i, values)
        fresh.append(
            {
                "recorded_at": now,
                "request_id": request_id,
                "person_hash": person_hash,
                "measured_at": measured,
                "arm_taken": row.arm_taken,
                "ee_followup": row.ee_followup,
                "dp_followup": row.dp_followup,
                "pa_followup": row.pa_followup,
                "source": source[:120],
                "corrects": None if in_force is None else in_force[0],
            }
        )
    if missing:
        problems = sorted(missing + conflicts, key=_row_number)
        raise OutcomeRefused(_summary(problems), problems=problems, status=422)
    if conflicts:
        raise OutcomeRefused(_summary(conflicts), problems=conflicts, status=409)
    report.corrected = sum(row["corrects"] is not None for row in fresh)
    report.recorded = len(fresh) - report.corrected
    report.linked = [row["request_id"] for row in fresh]
    kept = None if submission is None else submission(report)
    if fresh or kept is not None:
        try:
            with audit.engine.begin() as connection:
                if fresh:
                    connection.execute(outcomes.insert(), fresh)
                if kept is not None:
                    connection.execute(outcome_submissions.insert(), kept)
        except sa.exc.IntegrityError:
            # The unique indexes: another submission recorded or corrected one of these
            # outcomes since they were read (or recorded its outcomes with the same key).
            raise OutcomeRefused(
                "outcomes: another submission recorded an outcome for one of these "
                "recommendations meanwhile; nothing of this one was recorded",
                problems=[
                    {
                        "field": "outcomes",
                        "value": "(not shown)",
                        "accepted": "one outcome per served recommendation, or a correction "
                        "of the one in force",
                        "message": "recorded meanwhile by another submission: send this one "
                        "again to see which rows are now duplicates",
                    }
                ],
                status=409,
            ) from None
    return report
