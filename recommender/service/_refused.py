"""What a refused request still answers: the crisis flags it holds, with the refusal.

A request may be refused for its caller (401, 403), its fields (422), its size (413) or a body
no parser can read (400: not JSON, nested too deep); the refusal stands, but no refusal may
withhold crisis resources from a person flagged for crisis risk. Every flag that can be read is
answered on its own entry (``index``, the entry's position); a flag that can only be seen in
the body's text (:func:`~recommender.service._crisis.crisis_in_text`) is answered once for the
request, for every role, saying that its entry could not be read (``index`` 0 on
``/recommend``, null on a batch or plan, whose flagged entry cannot be told). Nothing of the
body is echoed.

A flag in the request's query string (``POST /recommend?crisis_risk=true``, read by
:func:`~recommender.service._crisis.crisis_in_query`) flags the whole request, whatever its
body says: ``/recommend`` gives the crisis answer for its profile; a batch, plan or outcome
report, whose flagged entry cannot be told, is refused (422, naming the parameter) with one
crisis answer for the request (``index`` null) besides those of its flagged entries. Each such
answer names the parameter in ``ignored``: where its flag was read.

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
    PROFILE_KEYS,
    crisis_answer,
    crisis_flagged,
    crisis_in_text,
    is_flag_name,
    record_answers,
)
from recommender.service._crisis_notes import (
    beside_entries,
    nested_in_entry,
    outcome_flagged,
    query_notes,
    refused_by_query,
    seen_in_text,
    not_recorded,
)
from recommender.service._metrics import count_crisis_answers
from recommender.service._problems import as_problems
from recommender.service._serving import Serving

__all__ = ["Refusing", "crisis_results", "refusal"]

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
            "/outcomes": self._refused_outcomes,
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
            "/outcomes": self._unread_batch,
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
            "/outcomes": self._refused_caller_outcomes,
        }

    def _refused_caller_one(self, body: bytes, _caller_role: None, refused, query=None):
        return self._refused_caller(body, refused, query, entries=None)

    def _refused_caller_cohort(self, body: bytes, _caller_role: None, refused, query=None):
        return self._refused_caller(body, refused, query, entries="profiles")

    def _refused_caller_outcomes(self, body: bytes, _caller_role: None, refused, query=None):
        return self._refused_caller(body, refused, query, entries="outcomes")

    def _refused_caller(self, body: bytes, refused, query, *, entries: str | None) -> Response:
        status, payload = refused
        crisis = self._unrecorded_crisis(body, query, entries, not_recorded(status))
        if not crisis:
            return JSONResponse(payload, status_code=status)
        return refusal(status, payload["error"], payload["problems"], crisis)

    def _unrecorded_crisis(self, body: bytes, query, entries: str | None, unrecorded: str) -> dict:
        """``{index: crisis answer}`` for every flag of a JSON body (its profile, ``entries``
        None; else each flagged entry of its list ``entries``, and the request's own), recorded
        nowhere, as ``unrecorded`` (their ``safety.recorded_in``) says why."""
        single = entries is None
        raw = _flags_kept(body)
        profiles = [raw] if single else _entries(raw, entries)
        request = {"single": single, "query": query, "unrecorded": unrecorded}
        if profiles is None or len(profiles) > self.config.max_batch_rows:
            return self._flagged_request(body, None, None, **request)
        flagged = [i for i, profile in enumerate(profiles) if crisis_flagged(profile)]
        if not flagged or (single and query is not None):
            return self._flagged_request(body, None, None, raw=raw, **request)
        answers = self._crisis_answers(
            [_as_profile(profiles[i], entries) for i in flagged],
            None,
            engine=self.engine,
            compact=not single,
            prefixes=None if single else [f"{entries}[{i}]" for i in flagged],
            unrecorded=unrecorded,
        )
        crisis = dict(zip(flagged, answers))
        crisis.update(
            self._flagged_request(body, None, None, query=query, scan=False, unrecorded=unrecorded)
        )
        return crisis

    def _refused_recommend(self, body: bytes, caller_role: str, refused, query=None):
        """``refused`` is None for a valid profile flagged by the query string alone."""
        problems = [] if refused is None else refused[1]["problems"]
        raw = _flags_kept(body)
        if not isinstance(raw, dict) or (query is None and not crisis_flagged(raw)):
            refused = refused or refused_by_query(query, "a JSON object (see /docs.json)")
            return self._flag_in_text(body, caller_role, refused, single=True, query=query)
        flagged = raw if crisis_flagged(raw) else {**raw, "crisis_risk": True}
        answer = self._crisis_answers([flagged], caller_role, engine=self.engine)[0]
        answer["ignored"] = [
            *query_notes(query, "crisis resources and no ranking"),
            *problems,
            *answer["ignored"],
        ]
        return JSONResponse(answer)

    def _refused_batch(self, body: bytes, caller_role: str, refused, query=None) -> Response:
        return self._refused_cohort(body, caller_role, refused, uuid.uuid4().hex, query)

    def _refused_plan(self, body: bytes, caller_role: str, refused, query=None) -> Response:
        plan_id = f"{PLAN_ID_PREFIX}{uuid.uuid4().hex}"
        return self._refused_cohort(body, caller_role, refused, plan_id, query)

    def _refused_outcomes(self, body: bytes, caller_role: str, refused, query=None) -> Response:
        batch_id = uuid.uuid4().hex
        return self._refused_cohort(body, caller_role, refused, batch_id, query, "outcomes")

    def _refused_cohort(
        self,
        body: bytes,
        caller_role: str,
        refused,
        batch_id: str,
        query=None,
        entries: str = "profiles",
    ) -> Response:
        """``refused`` is None for a valid body flagged by the query string alone: it is
        refused all the same (which entry the flag is for cannot be told)."""
        refused = refused or refused_by_query(
            query, f"crisis_risk in each flagged entry of {entries}"
        )
        status, payload = refused
        raw = _flags_kept(body)
        profiles = _entries(raw, entries)
        if profiles is None or len(profiles) > self.config.max_batch_rows:
            return self._flag_in_text(
                body, caller_role, refused, single=False, batch_id=batch_id, query=query, raw=raw
            )
        crisis = self._crisis_rows(
            profiles, caller_role, batch_id, engine=self.engine, entries=entries
        )
        crisis.update(
            self._flagged_request(
                body, caller_role, refused, batch_id=batch_id, query=query, raw=raw, scan=not crisis
            )
        )
        if not crisis:
            return JSONResponse(payload, status_code=status)
        return refusal(status, payload["error"], payload["problems"], crisis)

    def _unread_profile(self, body: bytes, caller_role, refused, query=None) -> Response:
        return self._flag_in_text(body, caller_role, refused, single=True, query=query)

    def _unread_batch(self, body: bytes, caller_role, refused, query=None) -> Response:
        batch_id = uuid.uuid4().hex
        return self._flag_in_text(
            body, caller_role, refused, single=False, batch_id=batch_id, query=query
        )

    def _unread_plan(self, body: bytes, caller_role, refused, query=None) -> Response:
        plan_id = f"{PLAN_ID_PREFIX}{uuid.uuid4().hex}"
        return self._flag_in_text(
            body, caller_role, refused, single=False, batch_id=plan_id, query=query
        )

    def _flag_in_text(self, body: bytes, caller_role, refused, **request) -> Response:
        """The refusal, with one crisis answer for the request when it is flagged though no
        entry's flag could be read (see :meth:`_flagged_request`)."""
        status, payload = refused
        crisis = self._flagged_request(body, caller_role, refused, **request)
        if not crisis:
            return JSONResponse(payload, status_code=status)
        return refusal(status, payload["error"], payload["problems"], crisis)

    def _flagged_request(
        self,
        body: bytes,
        caller_role: str | None,
        refused,
        *,
        single: bool = False,
        batch_id: str | None = None,
        query=None,
        raw=None,
        scan: bool = True,
        unrecorded: str | None = None,
    ) -> dict:
        """``{index: answer}``: one crisis answer for the request (index 0 on /recommend, None
        on a batch, plan or outcome report), or nothing, when the query string flags it, or a
        flag beside the entries (``raw``, the body read) or in the text of a body no parser
        could read sets it (``scan``: no entry's flag was read; recorded nowhere for a caller
        refused 401, 403 or 405: ``caller_role`` None, which ``unrecorded`` says, else the
        refusal's status does). Its ``ignored`` says where the flag was read."""
        entry = "the profile" if single else "which entry it flags cannot be told"
        notes = query_notes(
            query, f"crisis resources for every role once for the request ({entry})"
        )
        if not notes and not single and crisis_flagged(raw):
            notes = [beside_entries()]
        if not notes and scan and crisis_in_text(body):
            unread = "the profile" if single else "which entry set it"
            notes = [
                seen_in_text(
                    "body",
                    "this route's request (see the error)",
                    f"once for the request ({unread} could not be read)",
                )
            ]
        if not notes:
            return {}
        answer = self._crisis_answers(
            [{"crisis_risk": True}],
            caller_role,
            batch_id,
            engine=self.engine,
            compact=not single,
            unrecorded=None if caller_role is not None else unrecorded or not_recorded(refused[0]),
        )[0]
        answer["ignored"] = notes
        return {0 if single else None: answer}

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
                    catalog_sha256=None if self.catalog is None else self.catalog.sha256,
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
            count_crisis_answers(len(answers), "nowhere")
            return answers
        records = [record for _, record in pairs]
        for record in records:  # hashed with the store's salt even while no store is open
            record["person_hash"] = self._person_hash(record["person_id"])
        record_answers(self.audit, records, answers, range(len(pairs)))
        return answers

    def _crisis_rows(
        self,
        profiles,
        caller_role: str,
        batch_id: str,
        *,
        engine,
        same_person: bool = False,
        entries: str = "profiles",
    ) -> dict[int, dict]:
        """``{position: crisis answer}`` for the flagged entries of a batch or plan, answered
        with ``engine`` (see :meth:`_crisis_answers`).

        ``same_person`` (batches, where a person may be named twice): an entry whose person_id
        a flagged entry also names gets the crisis answer too, never a ranking, with the
        flagged entry named in its ``ignored``. (A plan refuses a person named twice.)
        """
        flagged = [i for i, raw in enumerate(profiles) if crisis_flagged(raw)]
        if entries == "outcomes" and not flagged:  # the usual report: no crisis row
            return {}
        # An entry whose flag is inside one of its fields (``{"details": {"crisis_risk":
        # true}}``) is refused as a profile, but its person was flagged all the same.
        nested = [i for i, raw in enumerate(profiles) if i not in flagged and _nested_flag(raw)]
        flagged = sorted([*flagged, *nested])
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
            [
                {"crisis_risk": True} if i in unread else _as_profile(profiles[i], entries)
                for i in answered
            ],
            caller_role,
            batch_id,
            engine=engine,
            compact=True,
            prefixes=[f"{entries}[{i}]" for i in answered],
        )
        for i, answer in zip(answered, answers):
            if i in unread:
                answer["ignored"] = [seen_in_text(f"{entries}[{i}]", "this entry, not an object")]
            elif entries == "outcomes":
                answer["ignored"] = [outcome_flagged(i)]
            elif i in nested:
                answer["ignored"] = [nested_in_entry(f"{entries}[{i}]"), *answer["ignored"]]
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


def _entries(raw, key: str) -> list | None:
    entries = raw.get(key) if isinstance(raw, dict) else None
    return entries if isinstance(entries, list) else None


def _nested_flag(entry) -> bool:
    """Does a field of ``entry`` that no profile has hold, somewhere inside, a crisis flag that
    reads as set (an object, a list, or text such as a profile sent as a JSON string)? An
    ordinary profile costs a set comparison; a value whose text never says "risk" (an extra
    feature's level) is not searched."""
    if not isinstance(entry, Mapping) or PROFILE_KEYS.issuperset(entry):
        return False
    for key, value in entry.items():
        if key in PROFILE_KEYS or not value or not isinstance(value, (Mapping, list, str)):
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        if "risk" in text.casefold() and crisis_in_text(text.encode("utf-8", "replace")):
            return True
    return False


def _as_profile(entry, entries: str):
    """An entry as the crisis path reads it: an outcome's fields are none of a profile's, so
    only its person_id and flag are kept (the others would each be named as ignored)."""
    if entries != "outcomes" or not isinstance(entry, Mapping):
        return entry
    return {k: v for k, v in entry.items() if k == "person_id" or is_flag_name(k)}


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
            if key in read and crisis_flagged({key: read[key]}):
                continue
            read[key] = value
        return read

    return json.loads(body, object_pairs_hook=keep_flags)


def refusal(status: int, message: str, problems=None, crisis=None) -> JSONResponse:
    body = {"error": message, "problems": as_problems(problems)}
    if crisis:  # a batch or plan refused: its crisis rows are answered all the same
        body["crisis_results"] = crisis_results(crisis)
    return JSONResponse(body, status_code=status)


def crisis_results(crisis: Mapping) -> list[dict]:
    """``{index: crisis answer}`` as a refusal's ``crisis_results``: by index, the request's
    own (index None) last."""
    order = sorted(crisis, key=lambda i: (i is None, i or 0))
    return [{"index": i, "answer": crisis[i]} for i in order]
