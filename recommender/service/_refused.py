"""What a refused request still answers: the crisis flags it holds, with the refusal.

A request may be refused for its caller (401, 403), its fields (422), its size (413) or a body
no parser can read (400: not JSON, nested too deep); the refusal stands, but no refusal may
withhold crisis resources from a person flagged for crisis risk. Every flag that can be read is
answered on its own entry (``index``, the entry's position); a flag that can only be seen in
the body's text (:func:`~recommender.service._crisis.crisis_in_text`) is answered once for the
request, for every role, saying that its entry could not be read (``index`` 0 on
``/recommend``, null on a batch or plan, whose flagged entry cannot be told). Nothing of the
body is echoed.

The answers of :class:`~recommender.service._answering.Answering` (its base class); the crisis
answers themselves, recorded before they are given, are made here for every route.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping

from starlette.responses import JSONResponse, Response

from recommender.explain import complements_for
from recommender.service._audit_tables import PLAN_ID_PREFIX
from recommender.service._crisis import (
    crisis_answer,
    crisis_flagged,
    crisis_in_text,
    record_answers,
)
from recommender.service._problems import as_problems
from recommender.service._serving import Serving

__all__ = ["Refusing", "refusal"]

log = logging.getLogger("recommender.service")


class Refusing(Serving):
    """The crisis answers of refused requests (``refused_routes``, ``unread_routes``,
    ``unauthorized_routes``, which the front door calls), and the crisis answers of every
    route (``_crisis_answers``, ``_crisis_rows``)."""

    @property
    def refused_routes(self) -> dict:
        """Per route, the answer to a body the front door refuses (422: a key given twice, a
        field the route does not take, a budget out of range): ``(body, caller_role, (status,
        payload)) -> Response``, run on a worker thread.

        The refusal stands, but the crisis flags in the body are still answered: ``/recommend``
        gives the crisis answer, naming the repeated key in ``ignored``; a batch or plan is
        refused with its crisis answers in ``crisis_results`` (up to ``max_batch_rows`` entries).
        A flag that is seen only in the text (an entry that is not an object, a batch too
        long) is answered once for the request.
        """
        return {
            "/recommend": self._refused_recommend,
            "/recommend_batch": self._refused_batch,
            "/allocate": self._refused_plan,
        }

    @property
    def unread_routes(self) -> dict:
        """Per route, the answer to a body no parser could read (400: not JSON, nested too
        deep; 413: larger than the front door reads, of which it passes the part it read):
        ``(body, caller_role, (status, payload)) -> Response``, run on a worker thread;
        ``caller_role`` is None for a caller refused 401 or 403 (then nothing is recorded).

        The refusal stands; when the body's text sets ``crisis_risk``, it carries one crisis
        answer for the request in ``crisis_results``.
        """
        return {
            "/recommend": self._unread_profile,
            "/recommend_batch": self._unread_batch,
            "/allocate": self._unread_plan,
        }

    @property
    def unauthorized_routes(self) -> dict:
        """Per route, the answer to a caller refused 401 or 403: ``(body, None, (status,
        payload)) -> Response``, run on a worker thread.

        The refusal stands and nothing is recorded (the caller may not write to the audit
        log), but every crisis flag in the body (the profile of ``/recommend``, the entries of
        a batch or plan, up to ``max_batch_rows``) gets its crisis answer in
        ``crisis_results``: crisis resources never depend on a key.
        """
        return {
            "/recommend": self._refused_caller_one,
            "/recommend_batch": self._refused_caller_cohort,
            "/allocate": self._refused_caller_cohort,
        }

    def _refused_caller_one(self, body: bytes, _caller_role: None, refused) -> Response:
        return self._refused_caller(body, refused, single=True)

    def _refused_caller_cohort(self, body: bytes, _caller_role: None, refused) -> Response:
        return self._refused_caller(body, refused, single=False)

    def _refused_caller(self, body: bytes, refused, *, single: bool) -> Response:
        status, payload = refused
        raw = _flags_kept(body)
        if single:
            profiles = [raw]
        else:
            profiles = raw.get("profiles") if isinstance(raw, dict) else None
        if not isinstance(profiles, list) or len(profiles) > self.config.max_batch_rows:
            return self._flag_in_text(body, None, refused, single=single)
        flagged = [i for i, profile in enumerate(profiles) if crisis_flagged(profile)]
        if not flagged:
            return self._flag_in_text(body, None, refused, single=single)
        answers = self._crisis_answers(
            [profiles[i] for i in flagged],
            None,
            engine=self.engine,
            compact=not single,
            prefixes=None if single else [f"profiles[{i}]" for i in flagged],
            unrecorded=_unrecorded(status),
        )
        return refusal(status, payload["error"], None, dict(zip(flagged, answers)))

    def _refused_recommend(self, body: bytes, caller_role: str, refused) -> Response:
        status, payload = refused
        raw = _flags_kept(body)
        if not crisis_flagged(raw):
            return self._flag_in_text(body, caller_role, refused, single=True)
        answer = self._crisis_answers([raw], caller_role, engine=self.engine)[0]
        answer["ignored"] = [*payload["problems"], *answer["ignored"]]
        return JSONResponse(answer)

    def _refused_batch(self, body: bytes, caller_role: str, refused) -> Response:
        return self._refused_cohort(body, caller_role, refused, uuid.uuid4().hex)

    def _refused_plan(self, body: bytes, caller_role: str, refused) -> Response:
        return self._refused_cohort(
            body, caller_role, refused, f"{PLAN_ID_PREFIX}{uuid.uuid4().hex}"
        )

    def _refused_cohort(self, body: bytes, caller_role: str, refused, batch_id: str) -> Response:
        status, payload = refused
        raw = _flags_kept(body)
        profiles = raw.get("profiles") if isinstance(raw, dict) else None
        if not isinstance(profiles, list) or len(profiles) > self.config.max_batch_rows:
            return self._flag_in_text(body, caller_role, refused, single=False, batch_id=batch_id)
        crisis = self._crisis_rows(profiles, caller_role, batch_id, engine=self.engine)
        if not crisis:
            return self._flag_in_text(body, caller_role, refused, single=False, batch_id=batch_id)
        return refusal(status, payload["error"], payload["problems"], crisis)

    def _unread_profile(self, body: bytes, caller_role: str | None, refused) -> Response:
        return self._flag_in_text(body, caller_role, refused, single=True)

    def _unread_batch(self, body: bytes, caller_role: str | None, refused) -> Response:
        return self._flag_in_text(
            body, caller_role, refused, single=False, batch_id=uuid.uuid4().hex
        )

    def _unread_plan(self, body: bytes, caller_role: str | None, refused) -> Response:
        plan_id = f"{PLAN_ID_PREFIX}{uuid.uuid4().hex}"
        return self._flag_in_text(body, caller_role, refused, single=False, batch_id=plan_id)

    def _flag_in_text(
        self,
        body: bytes,
        caller_role: str | None,
        refused,
        *,
        single: bool,
        batch_id: str | None = None,
    ) -> Response:
        """The refusal, with one crisis answer for the request when the body's text sets
        ``crisis_risk`` though no flag could be read from it (recorded nowhere for a caller
        refused 401 or 403: ``caller_role`` None)."""
        status, payload = refused
        if not crisis_in_text(body):
            return JSONResponse(payload, status_code=status)
        answer = self._crisis_answers(
            [{"crisis_risk": True}],
            caller_role,
            batch_id,
            engine=self.engine,
            compact=not single,
            unrecorded=None if caller_role is not None else _unrecorded(status),
        )[0]
        entry = "the profile" if single else "which entry set it"
        answer["ignored"] = [
            _seen_in_text(
                "body",
                "this route's request (see the error)",
                f"once for the request ({entry} could not be read)",
            )
        ]
        return refusal(
            status, payload["error"], payload["problems"], {0 if single else None: answer}
        )

    def _crisis_answers(
        self,
        raws,
        caller_role: str,
        batch_id: str | None = None,
        *,
        engine,
        compact: bool = False,
        prefixes=None,
        unrecorded: str | None = None,
    ) -> list[dict]:
        """Crisis answers for flagged bodies, recorded (in the service log if the audit store
        fails); they need no model, so ``engine`` (the served one, ``None`` while none is
        loaded) gives only its version and context.

        ``engine`` is the one the request read once: a batch's or plan's crisis rows name the
        model its other rows were answered by, even when a /reload swapped another in meanwhile.

        ``unrecorded``: why they are recorded nowhere (a refused caller's), as their
        ``safety.recorded_in`` says; the service log counts them, without identifiers.
        """
        config = self.config
        prefixes = prefixes or [""] * len(raws)
        if engine is not None:
            pairs = [
                engine.crisis_answer(
                    raw, caller_role=caller_role, batch_id=batch_id, compact=compact, prefix=prefix
                )
                for raw, prefix in zip(raws, prefixes)
            ]
        else:
            pairs = [
                crisis_answer(
                    raw,
                    config.safety,
                    model_version=None,
                    catalog_version=None if self.catalog is None else self.catalog.version,
                    coverage=config.coverage,
                    disclaimer=None if compact else config.disclaimer,
                    context=None if compact else self.context_without_model,
                    caller_role=caller_role,
                    batch_id=batch_id,
                    prefix=prefix,
                )
                for raw, prefix in zip(raws, prefixes)
            ]
        answers = [answer for answer, _ in pairs]
        if engine is None and not compact and self.catalog is not None:
            complements = complements_for(self.catalog)
            for answer in answers:
                answer["complements"] = complements
        if unrecorded is not None:
            for answer in answers:
                answer["safety"]["recorded_in"] = unrecorded
            log.warning("%d crisis answer(s) given, %s", len(answers), unrecorded)
            return answers
        records = [record for _, record in pairs]
        for record in records:  # hashed with the store's salt even while no store is open
            record["person_hash"] = self._person_hash(record["person_id"])
        record_answers(self.audit, records, answers, range(len(pairs)))
        return answers

    def _crisis_rows(
        self, profiles, caller_role: str, batch_id: str, *, engine, same_person: bool = False
    ) -> dict[int, dict]:
        """``{position: crisis answer}`` for the flagged entries of a batch or plan, answered
        with ``engine`` (see :meth:`_crisis_answers`).

        ``same_person`` (batches, where a person may be named twice): an entry whose person_id
        a flagged entry also names gets the crisis answer too, never a ranking, with the
        flagged entry named in its ``ignored``. (A plan refuses a person named twice.)
        """
        flagged = [i for i, raw in enumerate(profiles) if crisis_flagged(raw)]
        # An entry that is not an object (a profile sent as a JSON string) is no profile, but
        # its text may still set the flag: its resources are for every role.
        unread = [
            i
            for i, raw in enumerate(profiles)
            if not isinstance(raw, Mapping) and crisis_in_text(json.dumps(raw).encode())
        ]
        because = _flagged_elsewhere(profiles, flagged) if same_person else {}
        answered = sorted([*flagged, *unread, *because])
        answers = self._crisis_answers(
            [{"crisis_risk": True} if i in unread else profiles[i] for i in answered],
            caller_role,
            batch_id,
            engine=engine,
            compact=True,
            prefixes=[f"profiles[{i}]" for i in answered],
        )
        for i, answer in zip(answered, answers):
            if i in unread:
                answer["ignored"] = [_seen_in_text(f"profiles[{i}]", "this entry, not an object")]
            elif i in because:
                answer["ignored"] = [
                    {
                        "field": f"profiles[{i}].crisis_risk",
                        "value": None,
                        "accepted": "crisis resources and no ranking for this person_id",
                        "message": f"profiles[{because[i]}] flags the same person_id for "
                        "crisis risk",
                    },
                    *answer["ignored"],
                ]
        return dict(zip(answered, answers))


def _seen_in_text(field: str, read_as: str, given: str = "") -> dict:
    """The problem a crisis answer names when its flag was seen in text no parser read."""
    return {
        "field": field,
        "value": None,
        "accepted": "a JSON object with the documented fields (see /docs.json)",
        "message": f"not read as {read_as}, but its text sets crisis_risk: crisis resources "
        f"for every role{', ' + given if given else ''}",
    }


def _unrecorded(status: int) -> str:
    return (
        f"not recorded: the request was refused ({status}), so nothing of it was written to "
        "the audit log"
    )


def _flagged_elsewhere(profiles, flagged) -> dict[int, int]:
    """``{position: flagged position}`` for the entries not flagged themselves whose person_id
    a flagged entry also names (the first such entry)."""
    first: dict[str, int] = {}
    for i in flagged:
        person = _person_key(profiles[i])
        if person is not None:
            first.setdefault(person, i)
    if not first:  # the usual batch: nobody flagged, nothing to look up
        return {}
    skip = set(flagged)
    return {
        i: first[person]
        for i, raw in enumerate(profiles)
        if i not in skip and (person := _person_key(raw)) is not None and person in first
    }


def _person_key(raw) -> str | None:
    person = raw.get("person_id") if isinstance(raw, dict) else None
    if isinstance(person, bool) or not isinstance(person, (str, int)) or person == "":
        return None
    return str(person)


def _flags_kept(body: bytes):
    """A body with keys given twice, read so that a crisis flag read as true anywhere in an
    object stays set (other keys: the last value)."""

    def keep_flags(pairs: list) -> dict:
        read: dict = {}
        for key, value in pairs:
            if key == "crisis_risk" and crisis_flagged(read):
                continue
            read[key] = value
        return read

    return json.loads(body, object_pairs_hook=keep_flags)


def refusal(status: int, message: str, problems=None, crisis=None) -> JSONResponse:
    body = {"error": message, "problems": as_problems(problems)}
    if crisis:  # a batch or plan refused: its crisis rows are answered all the same
        body["crisis_results"] = [{"index": i, "answer": crisis[i]} for i in sorted(crisis)]
    return JSONResponse(body, status_code=status)
