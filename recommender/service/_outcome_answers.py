"""``/outcomes``' handler, HTTP framework aside: follow-up scores in, the report (or the
refusal, with the crisis answers of entries flagged for crisis risk) out.

BentoML's endpoint and the front door's crisis lane (a report that may be flagged: see
:attr:`~recommender.service._answering.Answering.crisis_lane_routes`) call the same handler, so
both give the same answer. A base class of :class:`~recommender.service._answering.Answering`;
nothing here imports BentoML.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone

from starlette.responses import JSONResponse, Response

from recommender._files import no_space
from recommender.service._audit_writer import FULL_REMEDY
from recommender.service._crisis import store_failed
from recommender.service._crisis_timeout import crisis_given
from recommender.service._outcome_keys import (
    IDEMPOTENCY_HEADER,
    KeyRefused,
    SubmissionKey,
    answered_before,
    not_permitted,
    read_key,
    submission_key,
)
from recommender.service._outcomes import OutcomeRefused, record_outcomes
from recommender.service._refused import Refusing, refusal
from recommender.service._requests import OutcomesRequest

__all__ = ["OutcomeAnswering", "request_id"]

log = logging.getLogger("recommender.service")


class OutcomeAnswering(Refusing):
    """The handler of ``/outcomes`` (the store, catalog and wording are the service's)."""

    def _outcomes_body(
        self, body: bytes, caller_role: str, key_lines: Sequence[str] = (), caller: str = ""
    ) -> Response:
        """As BentoML's endpoint answers the checked ``body``: the same parse, the same handler
        and the same response."""
        request = OutcomesRequest.model_validate_json(body)
        return self._record_outcomes(request, caller_role, key_lines, caller)

    def _record_outcomes(
        self,
        request: OutcomesRequest,
        caller_role: str,
        key_lines: Sequence[str] = (),
        caller: str = "",
    ) -> Response:
        """``key_lines``: the request's ``Idempotency-Key`` header lines; ``caller``: the digest
        of the API key that sent it, whose keys they are (:mod:`._outcome_keys`)."""
        # An outcome flagged crisis_risk (no outcome's field: the report is refused for it)
        # still gets its person the crisis resources.
        crisis = self._crisis_rows(
            request.outcomes, caller_role, uuid.uuid4().hex, engine=self.engine, entries="outcomes"
        )
        crisis_given(crisis)
        sent = len(request.outcomes)
        try:
            key = read_key(key_lines)
        except KeyRefused as refused:
            _outcomes_logged("outcomes refused (400), the Idempotency-Key: 0 of %d rows", sent)
            return refusal(refused.status, str(refused), refused.problems, crisis)
        if self.catalog is None:  # the arms an outcome may name are the catalog's
            _outcomes_logged("outcomes not recorded (503), no model loaded: 0 of %d rows", sent)
            return refusal(
                503, f"{self.load_error}; outcomes cannot be checked until /reload", None, crisis
            )
        if self.audit is None:
            _outcomes_logged("outcomes not recorded (503), no audit store: 0 of %d rows", sent)
            return refusal(503, self._store_closed("nothing was recorded"), None, crisis)
        if store_failed(crisis):  # waiting for the store would hold back the crisis answers
            _outcomes_logged("outcomes not recorded (503), the store failed: 0 of %d rows", sent)
            return self._refusal_for_the_store(crisis, "no outcome was recorded")
        submission = None
        try:
            if key is not None:
                submission = submission_key(
                    self.audit, key, caller, request.outcomes, request.correct
                )
                answer = answered_before(self.audit, submission)
                if answer is not None:
                    _outcomes_logged("outcomes answered as before (its key's): 0 of %d rows", sent)
                    return answer
            report = record_outcomes(
                self.audit,
                request.outcomes,
                arms=self.catalog.arm_ids,
                source="api",
                correct=request.correct,
                submission=None if submission is None else _kept_with(submission),
            )
        except KeyRefused as refused:
            _outcomes_logged("outcomes refused (422), key used for another body: 0 of %d", sent)
            return refusal(refused.status, str(refused), refused.problems, crisis)
        except OutcomeRefused as error:
            # Refused meanwhile, perhaps as the duplicate of the same submission sent at once
            # with the same key, whose answer is then this one's.
            again = None if submission is None else self._answered_meanwhile(submission)
            if again is not None:
                return again
            rows, duplicates = error.refused_rows()
            _outcomes_logged(
                "outcomes refused (%s), nothing recorded: %d of %d rows refused, %d of them as "
                "duplicates",
                error.status,
                rows,
                sent,
                duplicates,
            )
            return refusal(error.status, str(error), error.problems, crisis)
        except Exception as error:  # noqa: BLE001 - the store's failure is not the caller's
            unkeyed = None if submission is None else not_permitted(error)
            if unkeyed is not None:  # a role granted before revision 0010
                _outcomes_logged("outcomes not recorded (503), no grant for keys: 0 of %d", sent)
                return refusal(503, unkeyed, None, crisis)
            log.exception("recording outcomes failed")
            _outcomes_logged("outcomes not recorded (503), the store failed: 0 of %d rows", sent)
            remedy = FULL_REMEDY if no_space(error) else "please retry"
            return refusal(
                503,
                f"the outcome store could not be written ({type(error).__name__}); nothing "
                f"was recorded, {remedy}",
            )
        _outcomes_logged(
            "outcomes recorded in the audit log: %d recorded, %d corrected, %d already "
            "recorded, of %d rows",
            report.recorded,
            report.corrected,
            report.already_recorded,
            sent,
        )
        return JSONResponse(report.as_dict())

    def _answered_meanwhile(self, submission: SubmissionKey) -> Response | None:
        """The answer kept for a key since this request read none (two requests with one key
        at once: the other recorded the outcomes), or the refusal of another body with it."""
        try:
            return answered_before(self.audit, submission)
        except KeyRefused as refused:
            return refusal(refused.status, str(refused), refused.problems)
        except Exception:  # noqa: BLE001 - the request's own refusal stands then
            log.exception("reading an Idempotency-Key's answer failed")
            return None


def key_lines(headers) -> list[str]:
    """The ``Idempotency-Key`` lines of an ASGI scope's ``headers`` (each as sent, as
    Starlette's ``headers.getlist`` gives BentoML's endpoint them)."""
    name = IDEMPOTENCY_HEADER.lower().encode("latin-1")
    return [value.decode("latin-1") for key, value in headers if key.lower() == name]


def request_id() -> str | None:
    """This request's id, as the ``X-BentoML-Request-ID`` header gives it the caller and the
    access log prints it: its OpenTelemetry server span's id in 16 hex digits (None outside a
    traced request)."""
    from opentelemetry import trace

    span = trace.get_current_span().get_span_context()
    return format(span.span_id, "016x") if span.is_valid else None


def _kept_with(submission: SubmissionKey):
    """The row keeping a keyed submission's answer, as :func:`record_outcomes` asks for it:
    the very bytes the answer is sent as."""
    return lambda report: submission.row(JSONResponse(report.as_dict()), datetime.now(timezone.utc))


def _outcomes_logged(message: str, *args) -> None:
    """One line per /outcomes request: what became of its rows (counts only, nothing of a
    person), tied to its access-log line by the request id, as an answer's audit row is."""
    log.info(f"{message}; request %s", *args, request_id() or "(not traced)")
