"""The service's front door, as plain ASGI middleware: API keys first, then the request body.

Every protected route is checked here before BentoML sees the request, so a caller without a
key gets 401, a caller with the wrong role 403, and a malformed body 400/422 with problems that
name the field, the value and what is accepted (BentoML's own validation errors omit the value).
A body that passes is handed on unchanged, as ``application/json``; or, on a route the service
answers itself (``direct_routes``: ``/recommend``, ``/recommend_batch``; ``crisis_lane_routes``:
``/allocate`` and ``/outcomes`` when they may be flagged), answered here on a worker thread
without BentoML's endpoint parsing it again (BentoML's metrics, tracing, access log and timeout,
which wrap this layer, still see the request). The request timeout's 504 of a request that may be flagged
carries its crisis answers (:mod:`~recommender.service._crisis_timeout`).

``GET /readyz`` is answered here while the service is not ready: 503 with each cause named
(:mod:`~recommender.service._readiness`), where BentoML would say only that ``__is_ready__``
returned False; and while a worker serves another version than the champion a /reload
announced: 200 with a body saying so. A ready, current service's probe goes on to BentoML's
own answer.

Before any of that, :class:`~recommender.service._known_routes.KnownRoutes` (the outermost
layer, in front of BentoML's own) answers every path the service does not serve with 404, and
hands the Gate a profile route asked with a method it does not take (405, its crisis flags
answered).

What a body must be (:mod:`~recommender.service._body_checks`) and what a query string may hold
(:mod:`~recommender.service._query_string`) are checked in their own modules; this one owns the
order of the checks, reading the body, and the crisis answers of the requests it refuses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from recommender.service._auth import authorize
from recommender.service._body_checks import (
    _invalid,
    _lone_surrogates,
    _sent_as,
    _too_large,
    _too_large_for,
    _unparsable,
)
from recommender.service._content_coding import UnreadCoding, decode_body
from recommender.service._crisis import crisis_in_query, may_be_flagged, needs_crisis_lane
from recommender.service._outcome_answers import key_lines
from recommender.service._crisis_timeout import watch
from recommender.service._proxy_fallback import PROFILE_ROUTES
from recommender.service._known_routes import (
    METHOD_NOT_TAKEN,
    NEAR_ROUTE,
    method_not_taken,
    not_found,
)
from recommender.service._query_string import _GET_PARAMETERS, _parameters_not_taken
from recommender.service._readiness import Reason, not_ready_body, stale_body

__all__ = ["Gate", "MAX_BODY_BYTES"]

log = logging.getLogger("recommender.service")

# A 10,000-row batch is about 3 MB of JSON; anything far beyond is not a request we serve.
MAX_BODY_BYTES = 32 * 1024 * 1024


def _may_flag(body: bytes, query) -> bool:
    """Whether a request whose body no parser could read may be flagged: by its query string,
    or by its body's text. A body that cannot be is refused at once, without a worker thread
    (a hostile body costs what it did before)."""
    return query is not None or may_be_flagged(body)


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
        # (ordinary, crisis): made on first use, as they belong to the running event loop.
        self._limiters = None

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
        route = path.rstrip("/")
        answer = None
        if refusal is None and query is not None:
            answer = service.refused_routes.get(route)
        if refusal is not None or answer is not None:
            # The refusal stands, but the crisis flags in the body are still answered: those
            # read from it (the service's ``refused_routes``), or, in a body no parser could
            # read (400, 413), one seen in its text (``unread_routes``).
            if refusal is not None:
                routes = service.refused_routes if refusal[0] == 422 else service.unread_routes
                answer = routes.get(route)
            if answer is None or (refusal and refusal[0] != 422 and not _may_flag(body, query)):
                response = _json_response(*refusal)
            else:
                crisis = _crisis_lane(service, route, body, query)
                response = await self._answer(
                    answer, body, decision.role, refusal, query, crisis=crisis
                )
            return await response(scope, receive, send)

        crisis = _crisis_lane(service, route, body, query)
        # A plan that may be flagged is answered here too, on the crisis lane: on BentoML's
        # endpoint it waited for one of BentoML's threads, which plans waiting for a locked
        # store can all hold.
        # So is a report of outcomes that may be flagged, with the Idempotency-Key lines and the
        # caller its answer is kept under.
        answer = service.direct_routes.get(route)
        lane = None if answer is not None or not crisis else service.crisis_lane_routes.get(route)
        if answer is not None:
            response = await self._answer(answer, body, decision.role, crisis=crisis)
            return await response(scope, receive, send)
        if lane is not None:
            keys = key_lines(scope.get("headers", []))
            response = await self._answer(
                lane, body, decision.role, keys, decision.caller, crisis=True
            )
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

    async def _answer(
        self, answer: Callable, body: bytes, role: str, *more, crisis: bool | None = None
    ):
        """``answer(body, role, *more)`` on a worker thread (at most ``threads`` at once), with
        the headers the service's other answers carry; an unexpected failure is a 500 with the
        body BentoML gives one, logged with its traceback.

        A request that may be flagged for crisis risk (``crisis``; else its query string, or
        its body's text: :func:`~recommender.service._crisis.needs_crisis_lane`) takes a thread
        of its own lane: ordinary requests waiting for a store that is locked or hangs (up to
        the request timeout) held every thread, and a crisis answer queued behind them was
        given only when one was free, past its 2 s, or never (the timeout's 504)."""
        import anyio

        if self._limiters is None:
            self._limiters = (
                anyio.CapacityLimiter(self.threads),
                anyio.CapacityLimiter(self.threads),
            )
        if crisis is None:
            crisis = needs_crisis_lane(body, more[1] if len(more) > 1 else None)
        limiter = self._limiters[crisis]
        try:
            response = await anyio.to_thread.run_sync(answer, body, role, *more, limiter=limiter)
        except Exception:  # noqa: BLE001 - the caller gets a 500, the log the traceback
            log.exception("answering %s failed", answer.__name__)
            response = _json_response(
                500,
                {"error": "An unexpected error has occurred, please check the server log."},
            )
        response.headers.update(self.headers())
        return response


def _crisis_lane(service, route: str, body: bytes, query) -> bool:
    """Whether a request of a key's holder may be flagged for crisis risk
    (:func:`~recommender.service._crisis.needs_crisis_lane`, read once): then it is answered on
    the crisis lane, and its flags' crisis answers are left for the request timeout's 504
    (:func:`~recommender.service._crisis_timeout.watch`), should it come first."""
    if route not in PROFILE_ROUTES:  # no profiles: nothing to flag
        return False
    crisis = needs_crisis_lane(body, query)
    if crisis:
        watch(service, route, body, query)
    return crisis


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
