"""The service's front door, as plain ASGI middleware: API keys first, then the request body.

Every protected route is checked here before BentoML sees the request, so a caller without a
key gets 401, a caller with the wrong role 403, and a malformed body 400/422 with problems that
name the field, the value and what is accepted (BentoML's own validation errors omit the value).
A body that passes is handed on unchanged, as ``application/json``; or, on a route the service
answers itself (``direct_routes``: ``/recommend``, ``/recommend_batch``), answered here on a
worker thread without BentoML's endpoint parsing it again (BentoML's metrics, tracing, access
log and timeout, which wrap this layer, still see the request).

``GET /readyz`` is answered here while the service is not ready: 503 with each cause named
(:mod:`~recommender.service._readiness`), where BentoML would say only that ``__is_ready__``
returned False; and while a worker serves another version than the champion a /reload
announced: 200 with a body saying so. A ready, current service's probe goes on to BentoML's
own answer.

Before any of that, :class:`~recommender.service._known_routes.KnownRoutes` (the outermost
layer, in front of BentoML's own) answers every path the service does not serve with 404, and
hands the Gate a profile route asked with a method it does not take (405, its crisis flags
answered).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping

from pydantic import ValidationError

from recommender.service._auth import authorize
from recommender.service._content_coding import UnreadCoding, decode_body
from recommender.service._crisis import crisis_in_query, may_be_flagged
from recommender.service._known_routes import (
    METHOD_NOT_TAKEN,
    NEAR_ROUTE,
    method_not_taken,
    not_found,
)
from recommender.service._readiness import Reason, not_ready_body, stale_body

__all__ = [
    "Gate",
    "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_OBJECT_KEYS",
    "MAX_PROFILE_BODY_BYTES",
]

log = logging.getLogger("recommender.service")

# A 10,000-row batch is about 3 MB of JSON; anything far beyond is not a request we serve.
MAX_BODY_BYTES = 32 * 1024 * 1024
# The deepest body the API defines is 4 levels (a batch, its list, a profile, its `offered`
# list); parsers recurse per level, so far deeper bodies are refused before any parser runs.
MAX_JSON_DEPTH = 32
# The most keys any one object of the API holds is a profile's (13 fields and a model's extra
# features). A validator spends about 15 us and a few kB on each key it refuses, so an object of
# a million unknown keys (10 MB) took half a minute and 3 GB; far larger objects are refused
# before any validator runs.
MAX_OBJECT_KEYS = 256


def _may_flag(body: bytes, query) -> bool:
    """Whether a request whose body no parser could read may be flagged: by its query string,
    or by its body's text. A body that cannot be is refused at once, without a worker thread
    (a hostile body costs what it did before)."""
    return query is not None or may_be_flagged(body)


# One profile is a few hundred bytes (a kilobyte with every arm offered). A validator's error
# carries the object it was found in, converted anew for each error: a 32 MiB profile of four
# million numbers missing its ten fields cost 16 s and 2.3 GB.
MAX_PROFILE_BODY_BYTES = 64 * 1024
_BODY_LIMITS = {"/recommend": MAX_PROFILE_BODY_BYTES}


def _too_large_for(path: str, body: bytes) -> tuple[int, dict] | None:
    """The 413 of a body the route's model is not given (it parsed: a body that does not
    is refused for that first)."""
    limit = _BODY_LIMITS.get(path.rstrip("/"))
    return None if limit is None or len(body) <= limit else _too_large(limit)


def _too_large(limit: int) -> tuple[int, dict]:
    return 413, {
        "error": f"the request body is larger than {limit:,} bytes",
        "problems": [
            {
                "field": "body",
                "value": None,
                "accepted": f"at most {limit:,} bytes",
                "message": "too large",
            }
        ],
    }


def _json_response(status: int, payload: dict, headers: dict | None = None):
    from starlette.responses import JSONResponse

    return JSONResponse(payload, status_code=status, headers=headers)


class Gate:
    """ASGI middleware: authorization and request validation for the service's routes.

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    current : callable
        Returns the live service object (with ``keyring``, ``body_models``,
        ``direct_routes``, ``refused_routes``, ``unread_routes``, ``unauthorized_routes`` and
        ``not_ready``), or ``None`` while it is starting.
    threads : int, default 1
        How many requests of the direct routes are answered at once (the service's
        ``threads``); the others wait their turn.
    headers : callable, default dict
        The headers every direct answer carries, read in the request's context.
    body_seconds : float, optional
        How long a request's body may take to arrive; one still arriving then is refused (408)
        while its crisis flags can still be answered, before the service's request timeout
        answers a bare 504.
    """

    def __init__(
        self,
        app,
        *,
        current: Callable[[], object],
        threads: int = 1,
        headers: Callable[[], dict] = dict,
        body_seconds: float | None = None,
    ):
        self.app = app
        self.current = current
        self.threads = threads
        self.headers = headers
        self.body_seconds = body_seconds
        self._limiter = None  # made on first use: it belongs to the running event loop

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        service = self.current()
        taken = scope.get(METHOD_NOT_TAKEN)
        if taken is not None:
            response = await self._method_not_taken(service, scope, receive, path, taken)
            return await response(scope, receive, send)
        if scope.get(NEAR_ROUTE):
            response = await self._refused_first(service, scope, receive, path, *not_found())
            return await response(scope, receive, send)
        if path == "/readyz" and scope.get("method") in ("GET", "HEAD"):
            response = await _readiness(service)
            if response is not None:
                return await response(scope, receive, send)
            return await self.app(scope, receive, send)
        headers = _headers(scope)
        if service is None:
            from recommender.service._auth import PERMISSIONS

            if path.rstrip("/") in PERMISSIONS:
                response = _json_response(503, {"error": "the service is starting", "problems": []})
                return await response(scope, receive, send)
            return await self.app(scope, receive, send)
        decision = authorize(path, headers, service.keyring)
        if decision.status != 200:
            response = await self._unauthorized(service, scope, receive, path, decision)
            return await response(scope, receive, send)
        if decision.role is None:
            return await self.app(scope, receive, send)
        state = scope.setdefault("state", {})
        state["caller_role"], state["caller_digest"] = decision.role, decision.caller
        body_model = service.body_models.get(path.rstrip("/"))
        if path.rstrip("/") in _GET_PARAMETERS and scope.get("method") in ("GET", "HEAD"):
            refusal = _parameters_not_taken(path, scope.get("query_string", b""))
            if refusal is not None:
                return await _json_response(*refusal)(scope, receive, send)
        if body_model is None or scope.get("method") != "POST":
            return await self.app(scope, receive, send)

        body, too_large, unread = await _read_request(headers, receive, self.body_seconds)
        model, known, accepted = body_model
        if not too_large:
            body = body if body.strip() else b"{}"  # no body is an empty object, not bad JSON
        refusal = unread or (
            _too_large(MAX_BODY_BYTES)
            if too_large
            else _sent_as(
                _unparsable(body)
                or _too_large_for(path, body)
                or _lone_surrogates(body, accepted)
                or _invalid(model, body, known, accepted),
                body,
                headers,
            )
            or _parameters_not_taken(path, scope.get("query_string", b""))
        )
        # A flag in the query string flags the whole request, whatever the body says.
        query = crisis_in_query(scope.get("query_string", b""))
        answer = None
        if refusal is None and query is not None:
            answer = service.refused_routes.get(path.rstrip("/"))
        if refusal is not None or answer is not None:
            # The refusal stands, but the crisis flags in the body are still answered: those
            # read from it (the service's ``refused_routes``), or, in a body no parser could
            # read (400, 413), one seen in its text (``unread_routes``).
            if refusal is not None:
                routes = service.refused_routes if refusal[0] == 422 else service.unread_routes
                answer = routes.get(path.rstrip("/"))
            if answer is None or (refusal and refusal[0] != 422 and not _may_flag(body, query)):
                response = _json_response(*refusal)
            else:
                response = await self._answer(answer, body, decision.role, refusal, query)
            return await response(scope, receive, send)

        answer = service.direct_routes.get(path.rstrip("/"))
        if answer is not None:
            response = await self._answer(answer, body, decision.role)
            return await response(scope, receive, send)

        # Hand the checked body on as JSON whatever Content-Type the caller claimed, so no
        # other parser (multipart, pickle) ever sees it.
        scope = dict(scope)
        scope["headers"] = [
            (k, v)
            for k, v in scope.get("headers", [])
            if k.lower() not in (b"content-type", b"content-length", b"content-encoding")
        ]
        scope["headers"] += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        return await self.app(scope, _replay(body, receive), send)

    async def _method_not_taken(self, service, scope, receive, path: str, taken):
        """405 naming the methods the route takes (``KnownRoutes`` sends it here); a
        crisis flag in the request's query string or body (``GET /recommend?crisis_risk=true``)
        still gets one crisis answer for the request, recorded nowhere: no key was asked
        for. A crisis answer never depends on the method."""
        status, payload, headers = method_not_taken(scope.get("method", ""), path, taken)
        response = await self._refused_first(service, scope, receive, path, status, payload)
        response.headers.update(headers)
        return response

    async def _refused_first(self, service, scope, receive, path: str, status, payload):
        """The refusal ``(status, payload)`` of a request refused before its key is looked at
        (405, or 404 for a near miss of a route): on a route that answers profiles, a crisis
        flag in its query string or body still gets one crisis answer, recorded nowhere."""
        answer = None if service is None else service.unread_routes.get(path.rstrip("/"))
        body, query = b"", None
        if answer is not None:
            body, _, _ = await _read_request(_headers(scope), receive, self.body_seconds)
            query = crisis_in_query(scope.get("query_string", b""))
        if answer is not None and _may_flag(body, query):
            return await self._answer(answer, body, None, (status, payload), query)
        return _json_response(status, payload)

    async def _unauthorized(self, service, scope, receive, path: str, decision):
        """401 or 403; on a route that answers profiles, the body's crisis flags (read from it,
        or seen in the text of a body no parser could read) still get their resources (in
        ``crisis_results``, recorded nowhere: the caller is not authorized to write to the
        audit log). A crisis answer never depends on a key."""
        refused = (decision.status, {"error": decision.message, "problems": []})
        answer = service.unauthorized_routes.get(path.rstrip("/"))
        if answer is not None and scope.get("method") == "POST":
            body, too_large, unread = await _read_request(
                _headers(scope), receive, self.body_seconds
            )
            # Keys given twice (a 422 of their own) are read as the refused routes read them; a
            # body no parser could read may still show a crisis flag in its text.
            problem = (400,) if too_large or unread or not body.strip() else _unparsable(body)
            query = crisis_in_query(scope.get("query_string", b""))
            if problem is None or problem[0] == 422:
                response = await self._answer(answer, body, None, refused, query)
            elif _may_flag(body, query):
                response = await self._answer(
                    service.unread_routes[path.rstrip("/")], body, None, refused, query
                )
            else:
                response = _json_response(*refused)
        else:
            response = _json_response(*refused)
        if decision.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async def _answer(self, answer: Callable, body: bytes, role: str, *more):
        """``answer(body, role, *more)`` on a worker thread (at most ``threads`` at once), with
        the headers the service's other answers carry; an unexpected failure is a 500 with the
        body BentoML gives one, logged with its traceback."""
        import anyio

        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.threads)
        try:
            response = await anyio.to_thread.run_sync(
                answer, body, role, *more, limiter=self._limiter
            )
        except Exception:  # noqa: BLE001 - the caller gets a 500, the log the traceback
            log.exception("answering %s failed", answer.__name__)
            response = _json_response(
                500,
                {"error": "An unexpected error has occurred, please check the server log."},
            )
        response.headers.update(self.headers())
        return response


# The POST routes whose query string is read for the crisis flag (it flags the whole request);
# every other parameter of a POST route is refused, never ignored: a field sent there instead
# of the body (``/erasures?dry_run=true``, ``/allocate?budget=100``) was silently left out,
# and the request done without it (an erasure for good, a plan with no budget).
_FLAG_ROUTES = frozenset({"/recommend", "/recommend_batch", "/allocate", "/outcomes"})
# A parameter's name is shown when it reads as one; another (``?p-000123``, a bare id) is not.
_SHOWN_NAME = re.compile(r"[A-Za-z_][A-Za-z_.\- \[\]]{0,39}")


# The GET routes whose query string is checked, with the parameters each takes; each is read
# once, so one given twice (``?since=A&since=B``: the last was used, silently) is refused, as
# a parameter not listed is (``?from=2026-12-01`` exported the whole log; the card's
# ``?version=3`` answered the served version's card).
_GET_PARAMETERS = {
    "/audit/export": ("since", "table"),
    "/model_card": (),
    "/model_card.json": (),
}
_NO_PARAMETER = {
    "/model_card": "the served model's card takes no query parameter (another version's: "
    "recommender card --model VERSION --out DIR)",
}
_NO_PARAMETER["/model_card.json"] = _NO_PARAMETER["/model_card"]


def _parameters_not_taken(path: str, query: bytes) -> tuple[int, dict] | None:
    """The 422 of a request whose query string holds a parameter the route does not take (on
    a POST route all but the crisis flag's, on the routes that read it), or one of
    ``_GET_PARAMETERS`` given twice, naming each, never its value; None when there is none."""
    if not query:
        return None
    from urllib.parse import unquote_plus

    from recommender.service._crisis import is_flag_name

    route = path.rstrip("/")
    flag = route in _FLAG_ROUTES
    taken = _GET_PARAMETERS.get(route, ())
    names, seen = [], set()
    for part in query.split(b"&"):
        name = unquote_plus(part.partition(b"=")[0].decode("utf-8", "replace"))
        twice = name in taken and name in seen
        seen.add(name)
        if not name or (flag and is_flag_name(name)) or (name in taken and not twice):
            continue
        if (name, twice) not in names:
            names.append((name, twice))
    if not names:
        return None
    if taken:
        accepted = f"each of {', '.join(taken)} at most once, and no other parameter"
    elif route in _NO_PARAMETER:
        accepted = _NO_PARAMETER[route]
    else:
        accepted = "the request's fields in its JSON body (see /docs.json); " + (
            "in the query string only crisis_risk" if flag else "no query parameter"
        )
    not_taken = "not a parameter of this route" + (
        "" if route in _GET_PARAMETERS else ", whose fields are read from the JSON body"
    )
    problems = [
        {
            "field": "query string: "
            + (name if _SHOWN_NAME.fullmatch(name) else "(a parameter; name not shown)"),
            "value": "(not shown)",
            "accepted": accepted,
            "message": "given more than once" if twice else not_taken,
        }
        for name, twice in names
    ]
    message = problems[0]["message"]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return 422, {
        "error": f"{problems[0]['field']}: {message}; accepted: {accepted}{more}",
        "problems": problems,
    }


async def _readiness(service):
    """``/readyz``'s 503 naming each cause; else its 200 saying that the worker serves another
    version than the announced champion; ``None`` when the service is ready and current. The
    service's check may wait a second for its audit store: on a thread, not the event loop."""
    if service is None:
        causes = [(Reason.STARTING, None)]
    else:
        import anyio

        causes = await anyio.to_thread.run_sync(service.not_ready)
    if causes:
        return _json_response(503, not_ready_body(causes))
    stale = service.stale
    return None if stale is None else _json_response(200, stale_body(stale))


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


class _TooManyKeys(ValueError):
    def __init__(self, count: int):
        super().__init__(f"an object with {count:,} keys")
        self.count = count


def _refuse_duplicates(pairs: list) -> dict:
    if len(pairs) > MAX_OBJECT_KEYS:
        raise _TooManyKeys(len(pairs))
    # Most JSON parsers keep the last of two equal keys, so '"crisis_risk": true, ...,
    # "crisis_risk": false' would silently switch a crisis flag off; no reading is safe.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


class _Repeated(dict):
    """An object read with keys given twice (``repeated``); the first reading of each kept."""

    repeated: tuple = ()


def _mark_repeated(pairs: list) -> dict:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked, seen = _Repeated(), set()
    for key, value in pairs:
        if key in seen:
            if key not in marked.repeated:  # a key given three times is named once
                marked.repeated = (*marked.repeated, key)
        else:
            marked[key] = value
            seen.add(key)
    return marked


_MAX_REPEATED_PROBLEMS = 10


def _repeated_keys(body: bytes) -> list[tuple]:
    """The places (``("profiles", 3, "age")``) of the keys a body that parses gives twice in
    one object, object by object (an object's own before those inside it), at most
    ``_MAX_REPEATED_PROBLEMS`` of them (called only once a repeated key was found: the usual
    body is read once)."""
    found: list[tuple] = []

    def walk(value, loc: tuple) -> None:
        if len(found) >= _MAX_REPEATED_PROBLEMS:
            return
        if isinstance(value, dict):
            found.extend((*loc, key) for key in getattr(value, "repeated", ()))
            for key, item in value.items():
                walk(item, (*loc, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, (*loc, i))

    walk(json.loads(body, object_pairs_hook=_mark_repeated), ())
    return found[:_MAX_REPEATED_PROBLEMS] or [()]


# JSON strings (whose brackets do not nest anything) and everything but brackets, removed
# before counting depth; possessive quantifiers keep the scan linear on any input.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text, without parsing it.

    Linear in the body's size and done in C, so a hostile body costs milliseconds whatever its
    depth (a parser would recurse once per level).

    Examples
    --------
    >>> json_depth(b'{"a": [1, {"b": "[[["}]}'), json_depth(b"[" * 5000 + b"]" * 5000)
    (3, 5000)
    """
    import numpy as np

    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max())


def _unparsable(body: bytes) -> tuple[int, dict] | None:
    """(status, payload) for a body no parser should be trusted with, or None when it parses.

    Every exception of the parser (a RecursionError included) is the caller's malformed body,
    answered 400; a repeated key is answered 422 naming it.
    """
    # A body nests at most as deep as it has opening brackets (those inside strings included):
    # a profile has one, so the scan (a third of the gate's time per answer) is rarely needed.
    depth = json_depth(body) if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH else 0
    if depth > MAX_JSON_DEPTH:
        return 400, {
            "error": f"body: JSON nested {depth:,} levels deep; at most "
            f"{MAX_JSON_DEPTH} are accepted",
            "problems": [
                {
                    "field": "body",
                    "value": None,
                    "message": "nested too deep",
                    "accepted": f"JSON nested at most {MAX_JSON_DEPTH} levels (see /docs.json)",
                }
            ],
        }
    try:
        json.loads(body, object_pairs_hook=_refuse_duplicates)
    except _DuplicateKey:
        from recommender.service._problems import field_name

        # Named where each is (profiles[3].age), not by its key alone: in a batch of 10,000
        # profiles "age" told the sender nothing of which row to fix.
        problems = [
            {
                "field": field_name(loc)[:200],
                "value": None,
                "message": "duplicate key",
                "accepted": "each key at most once per object",
            }
            for loc in _repeated_keys(body)
        ]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return 422, {
            "error": f"{problems[0]['field']}: the key appears more than once in one object; "
            f"accepted: each key once{more}",
            "problems": problems,
        }
    except _TooManyKeys as many:
        return 400, {
            "error": f"body: {many}; at most {MAX_OBJECT_KEYS} are accepted in one object",
            "problems": [
                {
                    "field": "body",
                    "value": None,
                    "message": "too many keys in one object",
                    "accepted": f"at most {MAX_OBJECT_KEYS} keys in any one object "
                    "(see /docs.json)",
                }
            ],
        }
    except Exception as error:  # noqa: BLE001 - whatever the parser raises, the body is at fault
        # Python's own advice (a setting of the server's) is no use to the sender: the limit
        # and the number's length are what it can act on.
        said = str(error).split("; use sys.set_int_max_str_digits()")[0]
        detail = f"{type(error).__name__}: {said[:200]}"
        return 400, {
            "error": f"body: Invalid JSON ({detail}); accepted: a JSON object with "
            "the documented fields (see /docs.json)",
            "problems": [
                {
                    "field": "body",
                    "value": None,
                    "message": f"Invalid JSON ({detail})",
                    "accepted": "a JSON object with the documented fields (see /docs.json)",
                }
            ],
        }
    return None


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def _sent_as(refusal: tuple[int, dict] | None, body: bytes, headers: Mapping[str, str]):
    """A 400 refusal of a body that is not JSON, saying why when its sender can be told: it was
    sent as a form, or in UTF-16 or UTF-32 (the request models read UTF-8 alone)."""
    if refusal is None or refusal[0] != 400 or refusal[1]["problems"][0]["field"] != "body":
        return refusal
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    encoding = json.detect_encoding(body[:4])
    if media in _FORMS:
        reason = f"the body was sent as a form ({media}): send the fields as JSON"
    elif encoding.startswith("utf-16") or encoding.startswith("utf-32"):
        reason = f"the body is {encoding.upper()} text: send it as UTF-8"
    elif body.startswith(b"\xef\xbb\xbf"):
        # What Windows tools write first (PowerShell 5's UTF8, Notepad before 2019): JSON
        # sent over a network has none (RFC 8259), and the parser's "line 1 column 1" hid it.
        reason = "the body starts with a UTF-8 byte-order mark (bytes EF BB BF): send it without"
    elif not _is_utf8(body):
        reason = "the body is not UTF-8 text (Latin-1 or Windows-1252, say): send it as UTF-8"
    else:
        return refusal
    status, payload = refusal
    first = {**payload["problems"][0]}
    first["message"] = f"{first['message']}; {reason}"
    return status, {
        "error": f"{payload['error']}; {reason}",
        "problems": [first, *payload["problems"][1:]],
    }


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# A \uD800-\uDFFF escape. Python's parser reads an unpaired one into a string (a lone
# surrogate); pydantic's refuses the body with its line and column alone, never the field.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_SURROGATE_PROBLEMS = 10


def _lone_surrogates(body: bytes, accepted) -> tuple[int, dict] | None:
    """The 400 of a parsed body holding unpaired surrogate escapes, naming the field of each
    (at most ``_MAX_SURROGATE_PROBLEMS``) and the byte of its escape; None when it holds none
    (a body without such an escape, the usual case, costs one search)."""
    if not _SURROGATE_ESCAPE.search(body):
        return None
    from recommender.service._problems import lone_surrogate_problem

    offsets = iter(_lone_escape_offsets(body))
    problems = []
    for loc, text, key in _lone_surrogate_strings(json.loads(body), ()):
        # Strings come in the body's order; each holds one or more of the lone escapes.
        found = [next(offsets, None) for _ in range(_surrogate_count(text))]
        problems.append(lone_surrogate_problem(loc, text, found[0], key=key, accepted=accepted))
        if len(problems) == _MAX_SURROGATE_PROBLEMS:
            break
    if not problems:
        return None
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return 400, {
        "error": f"{first['field']}: {first['message']}; accepted: {first['accepted']}{more}",
        "problems": problems,
    }


def _surrogate_count(text: str) -> int:
    return len(_SURROGATE.findall(text))


def _lone_surrogate_strings(value, loc: tuple):
    """``(loc, text, is_key)`` of each string holding a lone surrogate, in document order."""
    if isinstance(value, str):
        if _surrogate_count(value):
            yield loc, value, False
    elif isinstance(value, dict):
        for name, item in value.items():
            if _surrogate_count(name):
                yield loc, name, True
            yield from _lone_surrogate_strings(item, (*loc, name))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _lone_surrogate_strings(item, (*loc, i))


def _lone_escape_offsets(body: bytes) -> list[int]:
    """Byte offsets of the unpaired surrogate escapes of a body that parsed: an escape after
    an odd run of backslashes is text (``\\\\ud800``), and a high one directly followed by
    a low one is a pair."""
    offsets, paired_until = [], -1
    for match in _SURROGATE_ESCAPE.finditer(body):
        start = match.start()
        run = 0
        while start - run > 0 and body[start - run - 1] == 0x5C:  # a backslash
            run += 1
        if run % 2 or start < paired_until:
            continue
        code = int(match.group()[2:], 16)
        after = _SURROGATE_ESCAPE.match(body, match.end())
        if code < 0xDC00 and after and int(after.group()[2:], 16) >= 0xDC00:
            paired_until = after.end()
            continue
        offsets.append(start)
    return offsets


def _invalid(model, body: bytes, known, accepted) -> tuple[int, dict] | None:
    """(status, payload) for a body its route's model refuses, naming every problem."""
    try:
        model.model_validate_json(body)
    except ValidationError as error:
        from recommender.service._problems import problems_from

        problems = problems_from(error, known=known, accepted=accepted)
        status = 400 if any(p["message"].startswith("Invalid JSON") for p in problems) else 422
        first = problems[0]
        return status, {
            "error": f"{first['field']}: {first['message']}; accepted: {first['accepted']}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            "problems": problems,
        }
    return None


async def _read_body(receive, seconds: float | None = None) -> tuple[bytes, bool, bool]:
    """``(body, too_large, too_slow)``; of a body larger than MAX_BODY_BYTES, its first
    MAX_BODY_BYTES bytes (its crisis flags are looked for there) and nothing more is read; of a
    body still arriving after ``seconds``, what had arrived."""
    import asyncio

    chunks, size, too_large = [], 0, False
    try:
        # asyncio's own timeout: half the cost of anyio's per request (10 us against 20).
        async with asyncio.timeout(seconds):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    chunks.append(chunk[: len(chunk) - (size - MAX_BODY_BYTES)])
                    too_large = True
                    break
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        return b"".join(chunks), False, True
    return b"".join(chunks), too_large, False


async def _read_request(
    headers: Mapping[str, str], receive, seconds: float | None
) -> tuple[bytes, bool, tuple | None]:
    """``(body, too_large, refusal)``: the body as :func:`_read_body` reads it in ``seconds``,
    undone of its Content-Encoding (:mod:`~recommender.service._content_coding`); with the
    refusal of a body still arriving then (408), or of a coding that cannot be read (as it
    came)."""
    body, too_large, too_slow = await _read_body(receive, seconds)
    refusal = _too_slow(seconds, len(body)) if too_slow else None
    coding = headers.get("content-encoding", "")
    if not coding.strip():
        return body, too_large, refusal
    try:
        decoded, larger = decode_body(body, coding, MAX_BODY_BYTES)
    except UnreadCoding as error:
        return body, False, refusal or error.refusal()
    return decoded, too_large or larger, refusal


def _too_slow(seconds: float, received: int) -> tuple[int, dict]:
    # Answered before the service's request timeout (a bare 504) can be: a flag in what has
    # arrived, or in the query string, still gets its crisis answer.
    message = f"{received:,} bytes received in {seconds:g} s, and the body was not over"
    accepted = f"the whole body within {seconds:g} s"
    return 408, {
        "error": f"body: {message}; accepted: {accepted}",
        "problems": [{"field": "body", "value": None, "accepted": accepted, "message": message}],
    }


def _headers(scope) -> dict[str, str]:
    """The request's headers by lower-case name; a field given in several lines is combined
    into one, its values joined by commas as HTTP says (RFC 9110, 5.3). Keeping only the last
    line let a request carry two keys (``Authorization`` given twice), of which a proxy in front
    might check one while the service used the other."""
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        name, value = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
