"""The OpenAPI document at ``/docs.json``: BentoML's, corrected to say what the service does.

BentoML builds the document from the routes' pydantic models, but a client generated from it
(or a program's integrator reading it) was misled in four ways:

- the top level of every body is flattened to the first alternative of each field, so a field
  that may be null was documented as never null: a strict client rejected the crisis answer
  itself (``recommended`` and ``explanation`` are null there, ``model_version`` too while no
  model is loaded), and could not send ``budget: null``;
- every API route listed BentoML's own error bodies (400, 404, 500), not the statuses the
  service answers with (401, 403, 409, 413, 422, 503, 504) nor their body
  (:class:`~recommender.service._problems.ErrorResponse`, with ``crisis_results``);
- request bodies were optional, the API keys undescribed, the entries of ``/allocate`` and
  ``/outcomes`` any object although one invalid entry refuses the request, and a body flagged
  ``crisis_risk`` (answered whatever else it lacks) was not allowed at all;
- the document's ``info`` was BentoML's own README, with version "None".

:func:`openapi_document` corrects these from the same pydantic models, so the document stays
the code. The schemas are JSON Schema 2020-12 (what pydantic writes, ``{"type": "null"}``
included), so the document says OpenAPI 3.1.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from recommender import __version__
from recommender.service._allocation import AllocationPlan, AllocationRequest
from recommender.service._auth import PERMISSIONS
from recommender.service._gate import MAX_BODY_BYTES
from recommender.service._outcome_keys import IDEMPOTENCY_HEADER, KEY_ACCEPTED, REPLAYED_HEADER
from recommender.service._outcomes import OutcomeRow
from recommender.service._problems import ErrorResponse
from recommender.service._readiness import NotReadyResponse, StaleResponse
from recommender.service._requests import (
    BatchRequest,
    ErasureRequest,
    OutcomesRequest,
    ServedProfileRequest,
)
from recommender.service._responses import (
    BatchResponse,
    ErasureResponse,
    OutcomesResponse,
    Recommendation,
    ReloadResponse,
)

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class _Route:
    request: type[BaseModel] | None
    response: type[BaseModel] | None
    statuses: tuple[int, ...]  # the error statuses the route answers with
    media_type: str | None = None  # of the 200 answer, where it is not JSON


_BODY = (400, 401, 403, 408, 413, 415, 422, 500, 503, 504)
_ROUTES = {
    "/recommend": _Route(ServedProfileRequest, Recommendation, _BODY),
    "/recommend_batch": _Route(BatchRequest, BatchResponse, _BODY),
    "/allocate": _Route(AllocationRequest, AllocationPlan, _BODY),
    "/outcomes": _Route(OutcomesRequest, OutcomesResponse, (*_BODY, 409)),
    "/erasures": _Route(ErasureRequest, ErasureResponse, _BODY),
    # /reload takes no fields, but a body sent anyway is checked like any other
    "/reload": _Route(None, ReloadResponse, (*_BODY, 409)),
    "/model_card": _Route(None, None, (401, 403, 404, 500, 503)),
    "/model_card.json": _Route(None, None, (401, 403, 404, 500, 503)),
    "/audit/export": _Route(None, None, (401, 403, 422, 500, 503), media_type="text/csv"),
}

_STATUS = {
    400: "The body is not JSON (or nested over 32 levels deep, or an object of it holds over "
    "256 keys): nothing could be read; when its text "
    "sets crisis_risk (e.g. '\"crisis_risk\": true', 'crisis_risk=on'), one crisis answer "
    "for the request is given all the same, in crisis_results (index null on a batch or "
    "plan: which entry set it cannot be told).",
    401: "No API key, or one that is not valid. Profiles flagged crisis_risk in a readable body "
    "still get their crisis answers, in crisis_results (recorded nowhere).",
    403: "The key's role may not call this route; the error names the roles that may.",
    404: "No model card for the served version.",
    408: "The body was still arriving after three quarters of the request timeout (the error "
    "says how long): nothing was answered; a flag in the query string or in what had arrived "
    "still gets one crisis answer for the request, in crisis_results.",
    409: {
        "/outcomes": "An outcome identical to one already stored, or one different from the "
        "outcome recorded for its recommendation sent without correct: true (the problem says "
        "which): nothing of the submission was recorded. A submission sent again after a "
        "timeout is refused so when its first attempt was recorded, unless both carry one "
        "Idempotency-Key: then it is answered 200 as the first was.",
        "/reload": "The registry's champion cannot be loaded; the version named keeps serving.",
    },
    413: "The body, or the number of entries, is over the limit given in the error; crisis "
    "answers are given all the same, in crisis_results (for a body too large, one for the "
    f"request when the text of its first {MAX_BODY_BYTES // 2**20} MiB sets crisis_risk).",
    415: "The body's Content-Encoding is not one the service reads (gzip, deflate and none "
    "are): the error names it; a flag in the query string still gets its crisis answer, in "
    "crisis_results.",
    422: "Not valid: every problem is named (field, value received, what is accepted); crisis "
    "answers are given all the same, in crisis_results. A batch, plan or outcome report whose "
    "query string sets crisis_risk is refused so (which entry it flags cannot be told), with "
    "one crisis answer for the request (index null).",
    500: "An unexpected failure, a defect of the service; the service log has the details.",
    503: "Not answered now: no model loaded, or the audit store cannot record or read (the "
    "error says which); crisis answers are given all the same, in crisis_results.",
    504: "Not begun within the service's request timeout (the error says so); a request "
    "that may be flagged crisis_risk still gets its crisis answers, in crisis_results: those "
    "given before the timeout as they were recorded, the others saying that they may not be "
    "recorded.",
}

# What POST /outcomes answers to an Idempotency-Key (recommender.service._outcome_keys), beside
# what every route says of the status.
_KEYED_HEADER = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1},
    "description": "Optional: names this submission, so that it may be sent again safely "
    "(after a timeout, say). The first submission with a key that records its outcomes has its "
    "answer kept with the key; the same key with the same body (the same JSON values) is "
    f"answered with that answer again, status and bytes, with '{REPLAYED_HEADER}: true', and "
    "records nothing again; the key with another body is refused (422). A refused submission "
    "keeps nothing: its key stays unused. Keys are each API key's own and kept as long as the "
    f"audit store. Accepted: {KEY_ACCEPTED}.",
}
_KEYED_STATUS = {
    "400": f" With an {IDEMPOTENCY_HEADER}: a key that is not {KEY_ACCEPTED[4:]} (the problem "
    f"names the header).",
    "422": f" With an {IDEMPOTENCY_HEADER} that recorded another body: refused naming the key; "
    "nothing was recorded.",
}

# A body flagged crisis_risk is answered with crisis resources whatever else it holds or lacks.
_CRISIS_BODY = {
    "title": "CrisisFlaggedBody",
    "type": "object",
    "required": ["crisis_risk"],
    "properties": {
        "crisis_risk": {
            "const": True,
            "description": "Also read as set when sent as 1, 'true', 'yes', 'on', 't' or 'y' "
            "(any case, spaces around trimmed), or as any value that reads neither as set nor "
            "as unset (false, 0, 'no', 'off', 'f', 'n'): a flag sent in a wrong type does not "
            "lose the person their resources; such a value is named in 'ignored'.",
        }
    },
    "additionalProperties": True,
    "description": "A profile flagged for crisis risk: answered with crisis resources for the "
    "person's role (when given) even when other fields are missing or not valid; those are "
    "listed in the answer's 'ignored'.",
}

_AUTH = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key of serve.yaml's auth.keys: 'Authorization: Bearer KEY'.",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "The same key in an 'x-api-key' header.",
    },
}

_DESCRIPTION = (
    "Recommends a clinician-wellness intervention (professional coaching, mindfulness, a "
    "peer-support group, resilience training, a Balint group, or usual care) for a physician, "
    "resident, nurse or advanced practice provider from their role, demographics and Maslach "
    "Burnout Inventory subscale scores (EE, DP, PA): each arm's expected change with its "
    "interval, the reasons, the published evidence, and safety triage. Decision support, "
    "not a diagnosis: a person flagged crisis_risk gets crisis resources on every route that "
    "takes profiles, whatever else the request lacks. Every route but the health probes, the "
    "metrics and this document needs an API key; each route names the roles that may call it."
)


def openapi_document(spec: dict) -> dict:
    """The service's OpenAPI document, from BentoML's ``spec`` (``openapi_spec.asdict()``).

    Returns a new mapping; ``spec`` is not changed.
    """
    document = copy.deepcopy(spec)
    document["openapi"] = "3.1.0"
    document["info"] = {
        "title": "burnout-recommender",
        "version": __version__,
        "description": _DESCRIPTION,
    }
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(
        _schemas(
            (ErrorResponse, "serialization"),
            (NotReadyResponse, "serialization"),
            (StaleResponse, "serialization"),
            (OutcomeRow, "validation"),
            (ServedProfileRequest, "validation"),
        )
    )
    components["securitySchemes"] = _AUTH
    for path, route in _ROUTES.items():
        for operation in document.get("paths", {}).get(path, {}).values():
            _correct(path, operation, route)
    readiness = document.get("paths", {}).get("/readyz", {}).get("get")
    if readiness is not None:
        readiness.setdefault("responses", {})["503"] = {
            "description": "Not ready: ordinary requests should go elsewhere (crisis answers "
            "are given all the same). The body names each cause as a code and says what to do.",
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model="NotReadyResponse")}}
            },
        }
        ready = readiness["responses"].setdefault("200", {"description": "Ready."})
        ready["description"] = (
            "Ready. The body is empty, or, while this worker answers with another version than "
            "the champion a /reload announced (it could not load that one), JSON naming both "
            "versions and why: every answer is still given, so a load balancer keeps sending."
        )
        ready["content"] = {
            "text/plain": {"schema": {"type": "string"}},  # BentoML's own, a newline
            "application/json": {"schema": {"$ref": _REF.format(model="StaleResponse")}},
        }
    components["schemas"] = _referenced(document.get("paths", {}), schemas)
    return document


def _referenced(paths: dict, schemas: dict) -> dict:
    """The schemas the routes use, directly or through others (BentoML's and FastAPI's error
    bodies, no longer used by any route, are left out)."""
    names: set[str] = set()
    pending = _refs(paths)
    while pending:
        name = pending.pop()
        if name not in names and name in schemas:
            names.add(name)
            pending |= _refs(schemas[name])
    return {name: schema for name, schema in schemas.items() if name in names}


def _refs(node) -> set[str]:
    prefix = _REF.format(model="")
    return set(re.findall(re.escape(prefix) + r'([^"]+)"', json.dumps(node)))


def _correct(path: str, operation: dict, route: _Route) -> None:
    roles = sorted(PERMISSIONS.get(path, ()))
    if roles:
        operation["security"] = [{"bearer": []}, {"apiKey": []}]
        operation["description"] = (
            f"{operation.get('description') or operation.get('summary') or ''}\n\n"
            f"Roles: {', '.join(roles)}."
        ).strip()
    body = operation.get("requestBody")
    if body is not None and route.request is not None:
        body["required"] = True
        schema = body["content"]["application/json"]["schema"]
        _restore_nullable(schema, route.request, "validation")
        _type_entries(path, schema)
        if route.request is ServedProfileRequest:
            body["content"]["application/json"]["schema"] = {"anyOf": [schema, _CRISIS_BODY]}
    # BentoML keys its responses by int, FastAPI's by str; JSON has only str.
    responses = {str(status): answer for status, answer in operation.get("responses", {}).items()}
    operation["responses"] = responses
    if route.media_type is not None:
        ok = responses.setdefault("200", {"description": "Successful Response"})
        ok["content"] = {route.media_type: {"schema": {"type": "string"}}}
    if route.response is not None:
        for content in responses.get("200", {}).get("content", {}).values():
            _restore_nullable(content["schema"], route.response, "serialization")
    for status in ("400", "404", "422", "500"):  # BentoML's and FastAPI's error bodies
        responses.pop(status, None)
    for status in route.statuses:
        text = _STATUS[status]
        responses[str(status)] = {
            "description": text[path] if isinstance(text, dict) else text,
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model="ErrorResponse")}}
            },
        }
    if path == "/outcomes":
        _keyed(operation, responses)
    operation["responses"] = dict(sorted(responses.items()))


def _keyed(operation: dict, responses: dict) -> None:
    """The ``Idempotency-Key`` header of POST /outcomes, and what it changes in the answers."""
    operation.setdefault("parameters", []).append(dict(_KEYED_HEADER))
    ok = responses.setdefault("200", {"description": "Successful Response"})
    ok["headers"] = {
        REPLAYED_HEADER: {
            "description": f"'true' on the answer kept for an {IDEMPOTENCY_HEADER} sent before "
            "with the same body: nothing was recorded again (absent on a first answer).",
            "schema": {"type": "string", "enum": ["true"]},
        }
    }
    for status, more in _KEYED_STATUS.items():
        if status in responses:
            responses[status]["description"] += more


def _schemas(*models: tuple[type[BaseModel], str]) -> dict:
    _, top = models_json_schema(list(models), ref_template=_REF)
    return top.get("$defs", {})


def _restore_nullable(schema: dict, model: type[BaseModel], mode: str) -> None:
    """Put back the alternatives BentoML's flattening dropped from the top-level fields (a
    field that may be null, or one of several types), as the model's own schema has them."""
    own = model.model_json_schema(ref_template=_REF, mode=mode).get("properties", {})
    documented = schema.get("properties", {})
    for name, field in own.items():
        if name in documented and ("anyOf" in field or "allOf" in field):
            documented[name] = field


def _type_entries(path: str, schema: dict) -> None:
    """The entries of a request refused as a whole when one is not valid, documented by
    their schema (a batch answers each entry on its own, so any object stays accepted there)."""
    items = schema.get("properties", {})
    if path == "/allocate":
        items["profiles"]["items"] = {
            "anyOf": [{"$ref": _REF.format(model="ServedProfileRequest")}, _CRISIS_BODY]
        }
    elif path == "/outcomes":
        items["outcomes"]["items"] = {"$ref": _REF.format(model="OutcomeRow")}
