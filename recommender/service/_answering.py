"""What the service's routes answer, HTTP framework aside: a checked request in, the response
out (its status code, body and headers).

BentoML's endpoints and the front door's direct routes (``direct_routes``, answered by
:class:`~recommender.service._gate.Gate` once it has checked the body) call the same handlers,
so both give the same answers. A part of :class:`~recommender.service.service.Recommender` (its
base class); nothing here imports BentoML.
"""

from __future__ import annotations

import logging
import uuid

from starlette.responses import JSONResponse, Response

from recommender.errors import InputError, PlanTimeout
from recommender.service._allocation import AllocationRequest, allocate_cohort
from recommender.service._audit_tables import PLAN_ID_PREFIX
from recommender.service._answer_json import batch_response_json
from recommender.service._collector import collector_held
from recommender.service._crisis import crisis_flagged, store_failed
from recommender.service._crisis_timeout import crisis_given
from recommender.service._engine import AuditUnavailable
from recommender.service._erasure import erase_people
from recommender.service._outcome_answers import OutcomeAnswering, request_id
from recommender.service._requests import (
    BatchRequest,
    ErasureRequest,
    ServedProfileRequest,
    accepted_text,
)
from recommender.service._store_errors import AuditPrivilegeMissing
from recommender.service._refused import refusal
from recommender.service._serving import CatalogUnreadable, Unservable

__all__ = ["Answering", "request_id"]

log = logging.getLogger("recommender.service")


class Answering(OutcomeAnswering):
    """The handlers of ``/recommend``, ``/recommend_batch``, ``/allocate``, ``/erasures`` and
    ``/reload`` (``/outcomes``' is its base class's)."""

    @property
    def direct_routes(self) -> dict:
        """Per route, the answer the front door gives itself once it has checked the body:
        ``(body, caller_role) -> Response``, run on a worker thread.

        ``/recommend`` and ``/recommend_batch`` are answered here rather than through
        BentoML's endpoint (its input-model parse, signature handling, per-request context and
        thread hand-off cost about a tenth of the worker's CPU per answer): the same parse, the
        same handler, the same status codes, bodies and headers; BentoML's metrics, tracing,
        access log and timeout still wrap it, and the routes and their OpenAPI description stay
        BentoML's (its endpoint answers whatever the front door hands on).
        """
        return {
            "/recommend": self._recommend_body,
            "/recommend_batch": self._recommend_batch_body,
        }

    @property
    def crisis_lane_routes(self) -> dict:
        """Per route, the answer the front door gives itself, as ``direct_routes``, to a
        request that may be flagged for crisis risk: on its crisis lane, which requests waiting
        for a locked store cannot hold (BentoML's endpoint waits for one of BentoML's threads).
        Other requests go on to BentoML's endpoint, with the same handler. Each is
        ``(body, caller_role, key_lines, caller) -> Response``: ``key_lines``, the request's
        ``Idempotency-Key`` lines, and ``caller``, its API key's digest, are what ``/outcomes``
        keeps a keyed report's answer under (:mod:`._outcome_keys`)."""
        return {"/allocate": self._allocate_body, "/outcomes": self._outcomes_body}

    def _recommend_body(self, body: bytes, caller_role: str) -> Response:
        return self._recommend(ServedProfileRequest.model_validate_json(body), caller_role)

    def _recommend(self, request: ServedProfileRequest, caller_role: str) -> Response:
        raw = request.body()
        engine = self.engine  # one model for the whole request, even if /reload runs meanwhile
        if crisis_flagged(raw):  # before and outside anything that could fail
            answer = self._crisis_answers([raw], caller_role, engine=engine)[0]
            crisis_given({0: answer})
            return JSONResponse(answer)
        if engine is None:
            return self._refusal_without_model()
        try:
            # Checked against the model that answers (the front door may have seen another,
            # had /reload swapped it in between).
            row = engine.check_row(raw)
            answer = engine.recommend([row], caller_role=caller_role)[0]
        except InputError as error:
            return refusal(422, str(error), error.problems)
        except AuditUnavailable as error:
            return refusal(503, self._unrecorded(f"{error}; nothing was answered"))
        # Recommendation's own JSON (the documented schema is what is sent), with the catalog
        # facts every answer repeats validated once per model rather than once per request.
        return Response(engine.answer_json.recommendation(answer), media_type="application/json")

    def _recommend_batch_body(self, body: bytes, caller_role: str) -> Response:
        return self._recommend_batch(BatchRequest.model_validate_json(body), caller_role)

    def _recommend_batch(self, request: BatchRequest, caller_role: str) -> Response:
        # The batch's answers live until its body is written: the cyclic collector is held off
        # until then, so that it does not walk them after the engine's own hold ends
        # (recommender.service._collector).
        with collector_held():
            return self._answer_batch(request, caller_role)

    def _answer_batch(self, request: BatchRequest, caller_role: str) -> Response:
        engine = self.engine
        batch_id = uuid.uuid4().hex
        if len(request.profiles) > self.config.max_batch_rows:
            return self._too_many(request.profiles, caller_role, batch_id, engine)
        # Crisis rows first, on their own: they neither block nor are blocked by the others.
        crisis = self._crisis_rows(
            request.profiles, caller_role, batch_id, engine=engine, same_person=True
        )
        crisis_given(crisis)  # a 504 past the model or the store carries them
        if engine is None:
            return self._refusal_without_model(crisis)
        if store_failed(crisis):
            return self._refusal_for_the_store(crisis, "nothing but crisis answers was answered")
        valid, index, errors = engine.check_rows(request.profiles)
        errors = [e for e in errors if e["index"] not in crisis]
        kept = [k for k, i in enumerate(index) if i not in crisis]
        try:
            scored = engine.recommend(
                [valid[k] for k in kept], caller_role=caller_role, batch_id=batch_id, compact=True
            )
        except InputError as error:  # e.g. a category the served model never saw
            return refusal(422, str(error), error.problems, crisis)
        except AuditUnavailable as error:
            return refusal(
                503,
                self._unrecorded(f"{error}; nothing but crisis answers was answered"),
                None,
                crisis,
            )
        by_index = {**dict(zip((index[k] for k in kept), scored)), **crisis}
        order = sorted(by_index)
        answers = [by_index[i] for i in order]
        # BatchResponse's own JSON (the documented schema is what is sent), serialised in one
        # pass instead of validating a thousand answers as models first.
        body = batch_response_json(
            answers,
            batch_id=batch_id,
            model_version=engine.version,
            answered=len(answers),
            rejected=len(errors),
            result_index=order,
            errors=errors,
            arms=engine.arm_facts(answers),
            disclaimer=self.config.disclaimer,
            complements=engine.complements,
            context=engine.context,
        )
        return Response(body, media_type="application/json")

    def _allocate_body(self, body: bytes, caller_role: str, *_key_and_caller) -> Response:
        plan = self._allocate(AllocationRequest.model_validate_json(body), caller_role)
        if isinstance(plan, Response):
            return plan
        # As BentoML's endpoint sends the response model (its JSON serde's model_dump_json).
        return Response(plan.model_dump_json(), media_type="application/json")

    def _allocate(self, request: AllocationRequest, caller_role: str):
        """A cohort's plan (the response model), or the refusal to send instead."""
        engine = self.engine
        plan_id = f"{PLAN_ID_PREFIX}{uuid.uuid4().hex}"
        if len(request.profiles) > self.config.max_batch_rows:
            return self._too_many(request.profiles, caller_role, plan_id, engine)
        # Crisis rows get their resources before any planning, whatever happens to the plan.
        crisis = self._crisis_rows(request.profiles, caller_role, plan_id, engine=engine)
        crisis_given(crisis)  # a 504 past the solver or the store carries them
        if engine is None:
            return self._refusal_without_model(crisis)
        if store_failed(crisis):
            return self._refusal_for_the_store(crisis, "no plan was given, only the crisis answers")
        try:
            # Half the request timeout: a plan found by then is answered with its status.
            plan = allocate_cohort(
                engine,
                request,
                caller_role=caller_role,
                time_limit=self.config.timeout / 2,
                plan_id=plan_id,
                crisis=crisis,
            )
        except InputError as error:
            return refusal(422, str(error), error.problems, crisis)
        except PlanTimeout as error:  # not the caller's fault: usual care for all always fits
            return refusal(503, str(error), None, crisis)
        except AuditUnavailable as error:
            return refusal(
                503,
                self._unrecorded(f"{error}; no plan was given, only the crisis answers"),
                None,
                crisis,
            )
        except Exception:  # noqa: BLE001 - the model or the solver failed: still a 500, but
            # the crisis rows, answered before any planning, are not lost with the plan
            log.exception("planning a cohort failed")
            return refusal(
                500,
                "An unexpected error has occurred while planning, please check the server "
                "log; no plan was given, only the crisis answers",
                None,
                crisis,
            )
        return plan

    def _refusal_for_the_store(self, crisis: dict[int, dict], given: str) -> JSONResponse:
        cause = next(iter(crisis.values()))["safety"]["recorded_in"]
        return refusal(
            503,
            self._unrecorded(
                f"the audit log could not be written (it did not take this request's crisis "
                f"answers: {cause}); {given}"
            ),
            None,
            crisis,
        )

    def _store_closed(self, consequence: str) -> str:
        """Why a route that needs the audit store cannot answer while none is open: the cause
        when retrying will not help (a refused salt), else that the service tries again."""
        if self.store_refusal is not None:
            return f"the audit store is not open, {consequence}: {self.store_refusal}"
        return (
            f"the audit store is not open yet, {consequence}; the service tries again every "
            f"{self.config.reload_poll_seconds:g} s, please retry"
        )

    def _unrecorded(self, message: str) -> str:
        """A refusal for want of the audit store: "please retry", or why none is open when
        retrying will not help (see ``store_refusal``)."""
        refused = self.store_refusal if self.audit is None else None
        return f"{message}, please retry" if refused is None else f"{message}: {refused}"

    def _refusal_without_model(self, crisis=None) -> JSONResponse:
        # A model loaded since the request read none has cleared the cause meanwhile.
        cause = self.load_error or "no model was loaded when this request arrived"
        return refusal(
            503,
            f"{cause}; only crisis answers can be given until /reload loads a champion",
            None,
            crisis,
        )

    def _too_many(self, profiles, caller_role: str, batch_id: str, engine) -> JSONResponse:
        """413 for more entries than the service's ``max_batch_rows``; the flagged entries
        still get their crisis answers (at most the 10,000 entries any request may hold)."""
        limit, entries = self.config.max_batch_rows, len(profiles)
        return refusal(
            413,
            f"profiles: {entries:,} entries; at most {limit:,} are accepted per request",
            [
                {
                    "field": "profiles",
                    "value": entries,
                    "accepted": f"at most {limit:,} entries",
                    "message": "too many",
                }
            ],
            self._crisis_rows(profiles, caller_role, batch_id, engine=engine),
        )

    def _erase_people(self, request: ErasureRequest, caller_role: str) -> JSONResponse:
        """``recommender audit erase`` over HTTP: the same function, with the service's store
        and salt. It runs on one of the worker's threads; the store's write lock is held one
        part at a time, so answers (crisis answers first of all) wait at most one part."""
        if self.audit is None:
            return refusal(503, self._store_closed("nothing was erased"))
        named = [f"person_ids[{i}]" for i in range(len(request.person_ids))]
        try:
            report = erase_people(
                self.audit,
                request.person_ids,
                dry_run=request.dry_run,
                named=named,
                part_rows=self.config.erase_part_rows,
            )
        except AuditPrivilegeMissing as error:  # the service's role may not (PostgreSQL)
            return refusal(503, str(error))
        except InputError as error:  # an id no store can hold, named by its position
            field = str(error).split(" ", 1)[0].rstrip(":")
            problem = {
                "field": field,
                "value": "(hidden)",
                "accepted": accepted_text("person_ids"),
                "message": str(error),
            }
            return refusal(422, str(error), [problem])
        except Exception as error:  # noqa: BLE001 - the store's failure is not the caller's
            log.exception("erasing people failed")
            return refusal(
                503,
                f"the audit store could not be written ({type(error).__name__}): the parts "
                "written before the failure stay erased and recorded, the others are "
                "untouched; send the same request again to finish it",
            )
        # a dry run, or one that found no one, records no erasure: no id to name
        log.info(
            "erasure %s by %s: %d of %d people found, %d rows, in %d part(s)%s",
            "(none recorded)" if report.erasure_id is None else report.erasure_id,
            caller_role,
            report.found,
            report.asked,
            report.rows,
            report.parts,
            " (dry run, nothing changed)" if report.dry_run else "",
        )
        return JSONResponse(report.as_dict())

    def _reload(self, caller_role: str) -> JSONResponse:
        """Read the catalog file again, swap in the registry's champion under it and announce
        it to the other workers (see ``_follow_reloads``); a catalog or champion refused leaves
        both as they were."""
        engine = self.engine
        previous = None if engine is None else engine.version
        serving = "crisis answers only" if previous is None else f"version {previous}"
        try:
            previous, engine, announced = self._reload_champion(caller_role)
        except CatalogUnreadable as error:  # each entry, field and value refused: its problems
            if engine is not None:
                catalog = engine.catalog
                serving += (
                    f" under intervention catalog {catalog.version} (sha256 {catalog.sha256})"
                )
            return refusal(409, f"{error}; still serving {serving}", error.problems)
        except Unservable as error:
            return refusal(409, f"{error}; still serving {serving}", error.problems)
        except InputError as error:
            return refusal(409, f"no champion to load ({error}); still serving {serving}")
        except Exception as error:  # noqa: BLE001 - a bad champion must not take the service down
            # The registry unreachable, an artifact missing, or a champion pickled by other
            # code: the old model keeps serving and the caller learns why.
            log.exception("reload failed; still serving %s", serving)
            return refusal(
                503,
                f"could not load the champion ({type(error).__name__}: "
                f"{error}); still serving {serving}",
            )
        catalog = engine.catalog
        log.info(
            "reloaded: version %s -> %s, intervention catalog %s (sha256 %s)",
            previous,
            engine.version,
            catalog.version,
            catalog.sha256,
        )
        return JSONResponse(
            {
                "previous_version": previous,
                "model_version": engine.version,
                "announced": announced,
                "catalog_version": catalog.version,
                "catalog_sha256": catalog.sha256,
            }
        )
