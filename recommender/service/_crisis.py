"""The crisis path: a request flagged for crisis risk always gets crisis resources.

Nothing here needs the model, the solver or the audit store. A flag is read from the request as
sent (``crisis_flagged``), before and outside any model call, so neither a missing profile
field, an invalid one, a model that cannot be loaded nor a plan that cannot be made withholds
the resources. Answers are recorded in the audit log like every other; when the store cannot be
written, a crisis answer is still given, recorded instead in the service log (hashed person id,
never the raw one) and marked as such in its ``safety.recorded_in``.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

from pydantic import ValidationError

from recommender.cohort import CATEGORIES, PROFILE_COLUMNS, is_crisis_name
from recommender.policy import crisis_flag, triage
from recommender.service._metrics import count_crisis_answers, count_store_failure
from recommender.service._requests import STORED_ID_MAX_LENGTH

__all__ = [
    "AuditUnavailable",
    "AUDIT_LOG",
    "NO_MODEL",
    "PROFILE_KEYS",
    "crisis_answer",
    "crisis_flagged",
    "crisis_in_query",
    "crisis_in_text",
    "is_flag_name",
    "may_be_flagged",
    "needs_crisis_lane",
    "record_answers",
    "safety_block",
    "store_failed",
]

log = logging.getLogger("recommender.service")

AUDIT_LOG = "audit log"
# The audit store's model_version of a crisis answer given while no model is loaded.
NO_MODEL = "no model loaded"

# Seconds crisis answers wait at most for their audit records' commit. Past it they are given,
# recorded in the service log: a store another process holds locked would otherwise hold back
# the resources for the driver's busy timeout (30 s for SQLite) or longer.
CRISIS_RECORD_WAIT = 2.0


class AuditUnavailable(RuntimeError):
    """The audit log could not be written, so the answers must not be given.

    ``crisis`` maps the position of each crisis row among the answers to its answer: those are
    given all the same (recorded in the service log instead).
    """

    def __init__(self, message: str, *, crisis: Mapping[int, dict] | None = None):
        super().__init__(message)
        self.crisis = dict(crisis or {})


class AuditNotOpened(RuntimeError):
    """No audit store is open: it could not be opened when the service started, nor since."""

    remedy = (
        "it could not be opened when the service started and is tried again every "
        "reload_poll_seconds; the service log says why"
    )


def crisis_flagged(raw) -> bool:
    """Is a request body flagged ``crisis_risk``? Read by the files' rule,
    :func:`recommender.policy.crisis_flag` (true/false, yes/no, y/n, t/f, on/off, 1/0,
    1.0/0.0, any case, spaces around trimmed). A flag that cannot be read either way (``"maybe"``, ``2``)
    counts as set, as a file's does: the person gets the crisis resources, and the answer's
    ``ignored`` names the value, which the request model refuses. The key counts written in any
    case and with spaces, hyphens or underscores (``"Crisis Risk"``, ``"crisisRisk"``): the
    request model refuses such a field by its name, but not the person its resources.

    Examples
    --------
    >>> [crisis_flagged(b) for b in ({"crisis_risk": "Yes"}, {"Crisis_Risk": 1}, {"crisis_risk": 0})]
    [True, True, False]
    >>> crisis_flagged({"crisis_risk": False, "crisis-risk": "true "})
    True
    """
    if not isinstance(raw, Mapping):
        return False
    if "crisis_risk" in raw and crisis_flag(raw["crisis_risk"]) is not False:
        return True
    if PROFILE_KEYS.issuperset(raw):  # a profile's keys alone: a batch's rows, mostly
        return False
    return any(
        crisis_flag(raw[key]) is not False
        for key in raw.keys() - PROFILE_KEYS
        if is_flag_name(key) and key != "crisis_risk"
    )


# Is a key ``crisis_risk`` but for case, spaces, hyphens or underscores? The files' rule too.
is_flag_name = is_crisis_name

PROFILE_KEYS = frozenset(PROFILE_COLUMNS) | {"crisis_risk", "offered"}


def crisis_in_query(query: bytes) -> tuple[str, object] | None:
    """The parameter of a query string (or of a form's body, written alike) that flags the
    request for crisis risk, as ``(name, value)`` decoded, or None.

    Each parameter is read as :func:`crisis_flagged` reads a body's key; a name given without
    ``=`` (``?crisis_risk``) is a flag set, as such a parameter is meant, and ``crisis_risk=``
    (no value) is not.

    Examples
    --------
    >>> crisis_in_query(b"person_id=a&Crisis%20Risk=YES"), crisis_in_query(b"crisis_risk")
    (('Crisis Risk', 'YES'), ('crisis_risk', True))
    >>> crisis_in_query(b"crisis_risk=false"), crisis_in_query(b"crisis_risk="), crisis_in_query(b"")
    (None, None, None)
    """
    if not query or (b"%" not in query and b"risk" not in query.lower()):
        return None
    from urllib.parse import unquote_plus

    for part in query.split(b"&"):
        name, given, value = part.partition(b"=")
        name = unquote_plus(name.decode("utf-8", "replace"))
        read = unquote_plus(value.decode("utf-8", "replace")) if given else True
        if is_flag_name(name) and crisis_flagged({name: read}):
            return name, read
    return None


# ``crisis_risk`` as a key set to a value ``crisis_flagged`` reads as true, in any text a caller
# may send by mistake: JSON however broken (``"crisis_risk": true``, or escaped inside a string:
# ``\"crisis_risk\": \"yes\"``), a Python dict's repr (``'crisis_risk': True``), a form
# (``crisis_risk=on``) or a multipart field (``name="crisis_risk"``, a blank line, ``true``).
# It starts with its literal so the search skips ahead in C; it can be fooled only into
# giving resources (by a string that holds such text), never into withholding them.
_FLAG_IN_TEXT = re.compile(
    rb"crisis_risk(?:\\?[\"'])?"
    rb"(?:[ \t\r\n]*[:=][ \t\r\n]*|\r?\n\r?\n)"
    rb"(?:\\?[\"'])?[ \t]*(?i:true|yes|on|1|t|y)[ \t]*(?![A-Za-z0-9_.])"
)


# Bodies up to this size are also read as a person writes the key (any case, spaces: a form's
# ``Crisis+Risk=TRUE``), in UTF-16 or UTF-32, and as a form: a profile, even a flagged form,
# is far smaller, and a batch's JSON is read by its parser.
LOOSE_TEXT_BYTES = 64 * 1024
_LOOSE_NAME = re.compile(rb"crisis[\W_]{0,3}risk")
_FLAG_KEY = b"crisis_risk"


def crisis_in_text(body: bytes) -> bool:
    """Does the raw text of a body no parser could read set ``crisis_risk``?

    For refusals only (a body that is not JSON, nested too deep, too large, or not the route's
    request): one linear search in C, about a second on 32 MiB of the worst text, so callers
    bound what they pass (the front door passes at most the bytes it reads of any body).
    A key named otherwise (``not_crisis_risk``) does not count. A body of at most
    :data:`LOOSE_TEXT_BYTES` is also read in UTF-16 or UTF-32, with the key in any case or
    spacing, and as a form (:func:`crisis_in_query`).

    Examples
    --------
    >>> crisis_in_text(b'{"person_id": "a", "crisis_risk": true,'), crisis_in_text(b"crisis_risk=on")
    (True, True)
    >>> crisis_in_text(b"{'crisis_risk': False}"), crisis_in_text(b'{"not_crisis_risk": true')
    (False, False)
    >>> crisis_in_text(b"Crisis+Risk=TRUE"), crisis_in_text('{"crisis_risk": 1'.encode("utf-16"))
    (True, True)
    """
    if _flag_in(body):
        return True
    if len(body) > LOOSE_TEXT_BYTES:
        return False
    text = _utf8(body).lower()
    return _flag_in(_LOOSE_NAME.sub(_FLAG_KEY, text)) or crisis_in_query(text) is not None


def may_be_flagged(body: bytes) -> bool:
    """Whether :func:`crisis_in_text` may find a flag in a body, at the cost of a look-up in C
    for a large body: a hostile body costs no scan of its text."""
    return _FLAG_KEY in body or (len(body) <= LOOSE_TEXT_BYTES and crisis_in_text(body))


# A JSON key ``crisis_risk`` whose value reads as not flagged (as the request models read
# false: ``false``, ``null``, ``0``, ``0.0``, or one of the false words quoted).
_NOT_FLAGGED = re.compile(
    rb'"crisis_risk"[ \t\r\n]*:[ \t\r\n]*'
    rb'(?:false|null|0(?:\.0)?|"(?i:false|no|n|f|off|0|0\.0)")(?![A-Za-z0-9_.])'
)


def needs_crisis_lane(body: bytes, query) -> bool:
    """Whether a request goes to the answering threads kept for crisis requests: flagged in
    its query string (``query`` from :func:`crisis_in_query`), or a body that may be flagged.

    A body naming ``crisis_risk`` goes there unless every time it names it, it is a JSON key
    whose value reads false: programs that send ``"crisis_risk": false`` with every profile
    would otherwise fill the crisis lane with ordinary requests, and a crisis answer would
    queue behind them again when the store is stuck. Any other mention (``true``, ``"yes"``,
    ``1.0``, a value in another field, a misspelt key) errs towards the crisis lane.

    Examples
    --------
    >>> needs_crisis_lane(b'{"person_id": "a", "crisis_risk": false}', None)
    False
    >>> needs_crisis_lane(b'{"profiles": [{"crisis_risk": false}, {"crisis_risk": 1.0}]}', None)
    True
    >>> needs_crisis_lane(b'{"person_id": "a"}', None), needs_crisis_lane(b"{}", True)
    (False, True)
    """
    if query is not None:
        return True
    mentions = body.count(_FLAG_KEY)
    if mentions:
        return mentions != len(_NOT_FLAGGED.findall(body))
    return len(body) <= LOOSE_TEXT_BYTES and crisis_in_text(body)


def _flag_in(text: bytes) -> bool:
    for match in _FLAG_IN_TEXT.finditer(text):
        start = match.start()
        if start == 0 or not (text[start - 1 : start].isalnum() or text[start - 1] == 0x5F):
            return True
    return False


def _utf8(body: bytes) -> bytes:
    """A UTF-16 or UTF-32 text (told as JSON's parser tells it) in UTF-8; others as they are."""
    encoding = json.detect_encoding(body)
    return body if encoding.startswith("utf-8") else body.decode(encoding, "replace").encode()


def safety_block(safety, *, recorded_in: str = AUDIT_LOG) -> dict:
    """A triage (:func:`recommender.policy.triage`) as the answers' ``safety`` block."""
    referral = safety.referral
    return {
        "level": safety.level,
        "notice": safety.notice,
        "rule": safety.matched_rule,
        "resources": [
            {
                "name": r.name,
                "contact": r.contact,
                "url": r.url,
                "serves": r.audience,
                "hours": r.hours,
                "confidentiality": r.confidentiality,
            }
            for r in safety.resources
        ],
        "referral": None
        if referral is None
        else {"to": referral.to, "confidentiality": referral.confidentiality},
        "recorded_in": recorded_in,
    }


def _sent_role(raw: Mapping):
    role = raw.get("role")
    return role if isinstance(role, str) and role in CATEGORIES["role"] else None


def _person_id(raw: Mapping) -> str:
    # Whatever came as the id, cut to the length /erasures takes: the person stays erasable.
    person = raw.get("person_id")
    if isinstance(person, str) and person:
        return person[:STORED_ID_MAX_LENGTH]
    return "" if person is None else str(person)[:STORED_ID_MAX_LENGTH]


def _ignored(raw: Mapping, prefix: str) -> list[dict]:
    # Fields that were sent but are not accepted: a crisis answer does not need them, so they
    # are named (and neither used nor stored) instead of turning the answer into a 422.
    from recommender.service._problems import problems_from
    from recommender.service._requests import PROFILE_FIELDS, ProfileRequest

    try:
        ProfileRequest.model_validate(dict(raw))
    except ValidationError as error:
        return [
            p
            for p in problems_from(error, prefix=prefix, known=PROFILE_FIELDS)
            if p["value"] is not None or p["message"] != "Field required"
        ]
    return []


def crisis_answer(
    raw: Mapping,
    rules,
    *,
    model_version: str | None,
    catalog_version: str | None,
    catalog_sha256: str | None = None,
    coverage: float,
    disclaimer: str | None,
    context: dict | None,
    caller_role: str,
    batch_id: str | None = None,
    prefix: str = "",
):
    """``(answer, audit record)`` for a request body flagged for crisis risk.

    Only the flag is needed; the role, when sent and valid, picks the resources that serve it.
    The answer has the fields of every ``/recommend`` answer (no ranking) and ``ignored``: the
    problems of fields that were sent but not accepted.
    """
    safety = triage({"role": _sent_role(raw)}, rules, crisis_risk=True)
    answer = {
        "request_id": uuid.uuid4().hex,
        "model_version": model_version,
        "catalog_version": catalog_version,
        "catalog_sha256": catalog_sha256,
        "recommended": None,
        "interval_level": round(coverage, 6),
        "ranking": [],
        "ranking_meaningful": None,
        "ranking_note": None,
        "excluded": [],
        "explanation": None,
        "safety": safety_block(safety),
        "disclaimer": disclaimer,
        "context": context,
        "ignored": _ignored(raw, prefix),
        "assignment": None,
    }
    record = {
        "request_id": answer["request_id"],
        "batch_id": batch_id,
        "model_version": model_version or NO_MODEL,
        "caller_role": caller_role,
        "person_id": _person_id(raw),
        "safety_level": safety.level,
        "recommended": None,
        "ranking_meaningful": None,
        "effects": {},
    }
    return answer, record


def record_answers(
    audit,
    records: Sequence[Mapping],
    answers: Sequence[dict],
    crisis: Sequence[int],
    *,
    started=None,
) -> None:
    """Record answers in the audit log before they are given, in one transaction.

    ``started``: the records' append already under way (what
    :meth:`AuditLog.start_append` returned, or the exception it raised), waited for here.
    When the store cannot be written, the crisis answers (at positions ``crisis``) are recorded
    in the service log instead and marked so; then, if any other answer is left unrecorded,
    :class:`AuditUnavailable` is raised carrying the crisis answers, which must still be given.
    Records of crisis answers alone are waited for at most :data:`CRISIS_RECORD_WAIT` seconds.
    """
    wait = CRISIS_RECORD_WAIT if len(crisis) == len(records) else None
    try:
        if audit is None:
            raise AuditNotOpened("no audit store is open")
        if started is None:
            audit.append(records, timeout=wait)
        elif isinstance(started, BaseException):
            raise started
        else:
            started.result(wait)
    except Exception as error:  # any store failure: crisis answers go on, the others do not
        count_store_failure(error)
        remedy = getattr(error, "remedy", None)  # when retrying alone will not help
        cause = f"{type(error).__name__}" + (f"; {remedy}" if remedy else "")
        log.error("the audit log could not be written (%s): %s", cause, error)
        marked = f"service log (fallback: the audit store could not be written, {cause})"
        if isinstance(error, TimeoutError) and wait is not None:  # still queued: not failed
            marked = (
                f"service log (fallback: the audit store did not confirm the record within "
                f"{wait:g} s; it may still be added there)"
            )
    else:
        # The line that ties the audit rows to this request's access-log line (its trace and
        # span, which the X-BentoML-Request-ID header gives the caller): their ids, nothing else.
        if records:
            log.info("recorded in the audit log: %s", _recorded(records))
        count_crisis_answers(len(crisis), "audit_log")
        return
    count_crisis_answers(len(crisis), "service_log")
    for i in crisis:
        _log_fallback(audit, records[i])
        answers[i]["safety"]["recorded_in"] = marked
    if len(crisis) < len(records):
        raise AuditUnavailable(
            f"the audit log could not be written ({cause})", crisis={i: answers[i] for i in crisis}
        )


def _recorded(records: Sequence[Mapping]) -> str:
    """Which audit rows ``records`` are, by their ids: ``request <id>`` for one answer, else
    the batch's or plan's id and the number of rows."""
    first = records[0]
    if len(records) == 1:
        return f"request {first['request_id']}" + (
            f" of batch {first['batch_id']}" if first.get("batch_id") else ""
        )
    return f"{len(records)} rows of batch {first.get('batch_id')}"


def _log_fallback(audit, record: Mapping) -> None:
    # The record's own hash (made with the service's salt while no store is open), else the
    # store's: either links the line to the person's other records later.
    person = record.get("person_hash")
    if not person:
        try:
            person = audit.person_hash(record["person_id"])
        except Exception:  # noqa: BLE001 - without a salt no hash; the raw id is never logged
            person = "unavailable (no audit salt)"
    entry = {
        "logged_at": datetime.now(timezone.utc).isoformat(),
        **{
            k: record.get(k)
            for k in ("request_id", "batch_id", "model_version", "caller_role", "safety_level")
        },
        "person_hash": person,
    }
    log.warning(
        "crisis answer recorded here, not in the audit log: %s", json.dumps(entry, sort_keys=True)
    )


def store_failed(crisis: dict[int, dict]) -> bool:
    """Whether the audit store did not take a request's crisis records (they went to
    the service log): then it would not take the others' either, and waiting for it to say so
    (the driver's busy timeout, 30 s for SQLite) would hold back the crisis answers."""
    return any(
        answer["safety"]["recorded_in"].startswith("service log") for answer in crisis.values()
    )
