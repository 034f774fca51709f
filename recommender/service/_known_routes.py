"""The outermost ASGI layer: only the service's own paths go further, ``GET /`` is ours.

:class:`KnownRoutes` stands in front of BentoML's own layers. It answers every path the service
does not serve with 404 (BentoML's metrics make a Prometheus label of each path they see, so
unknown paths must never reach them), serves the service's own landing page at ``/`` instead
of BentoML's (which loads a third-party script) and the OpenAPI document, and answers 405 for a
method a route does not take, naming those it takes; on a route that answers profiles, it hands
such a request to the front door (:class:`~recommender.service._gate.Gate`), which answers the
crisis flags it holds with the 405. So it does with a near miss of a POST route (``/recommend/``,
``/api/v1/recommend``), under the route's own path, for a 404 with its crisis flags answered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping

from recommender.service._error_page import HTML_PAGES, wants_html, with_html_errors
from recommender.service._landing import request_address
from recommender.service._metrics import UNKNOWN_ROUTE, count_front_answer, forget_dead_workers

__all__ = [
    "KnownRoutes",
    "METHOD_NOT_TAKEN",
    "METRICS_IN_PROCESS",
    "NEAR_ROUTE",
    "method_not_taken",
    "metrics_gathered",
    "not_found",
]

log = logging.getLogger("recommender.service")

# The scope key by which KnownRoutes hands the Gate a request its route does not take (the
# methods it takes): the Gate answers it 405, with the crisis flag it holds answered.
METHOD_NOT_TAKEN = "recommender.method_not_taken"
# The scope key by which KnownRoutes hands the Gate a request to a path that misses a POST
# route (``/recommend/``, ``/api/v1/recommend``), under that route's path: the Gate answers it
# 404, with the crisis flag it holds answered (a base URL written with a trailing slash or
# a proxy's prefix must not cost a flagged person the resources).
NEAR_ROUTE = "recommender.near_route"

# What GET /metrics answers where no server gathers them (503).
METRICS_IN_PROCESS = (
    "no metrics here: this service runs in process, without the server that gathers its "
    "workers' metrics (PROMETHEUS_MULTIPROC_DIR, made by `bentoml serve`); GET /metrics of "
    "`recommender serve` gives them (in process: set PROMETHEUS_MULTIPROC_DIR to a folder "
    "before the app starts)"
)


def metrics_gathered() -> bool:
    """Whether BentoML's Prometheus client has its multiprocess folder (``bentoml serve``
    makes one for every server; an app run in process has none)."""
    import os

    return os.path.isdir(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or "")


class KnownRoutes:
    """Outermost ASGI layer: only the service's own paths go further; ``GET /`` is ours.

    BentoML's metrics layer labels every request with its path, so each unknown path would
    add series to ``/metrics`` and memory to the worker for good (and show whatever the path
    held to anyone who reads ``/metrics``). Unknown paths are answered 404 here, before that
    layer; BentoML's own pages (its index, which loads a third-party tag-manager script, and
    its static UI files) are not among the known paths. ``/favicon.ico``, which browsers ask
    for by themselves, is answered 204 (no icon) rather than 404. A known path asked with a
    method it does not take is answered 405 here, in the service's error body, naming the
    methods it takes (BentoML, FastAPI and the landing page each had a body of their own).
    Every answer goes out with ``Cache-Control: no-store`` (unless it sets its own),
    ``X-Content-Type-Options: nosniff`` and a Content-Security-Policy that lets a page run no
    script, load nothing from elsewhere and be framed by no other site.

    Parameters
    ----------
    app : ASGI app
        BentoML's application.
    routes : mapping of str to collection of str
        The exact paths served (API routes, pages, health, metrics, OpenAPI), each with the
        methods it takes, in any case (other names, an OpenAPI path item's ``summary`` or
        ``parameters``, are left out); ``HEAD`` is answered wherever ``GET`` is taken.
    landing : callable
        Returns the landing page's HTML as bytes for a request's scope, for ``GET /`` and
        ``HEAD /``.
    document : bytes
        The OpenAPI document (JSON) answered to ``GET /docs.json`` and ``HEAD /docs.json``
        in place of BentoML's (see :mod:`~recommender.service._openapi`).
    """

    def __init__(
        self,
        app,
        *,
        routes: Mapping[str, Collection[str]],
        landing: Callable[[dict], bytes],
        document: bytes,
    ):
        self.app = app
        self.routes = frozenset(routes)
        self.methods = {
            path: tuple(sorted({m.upper() for m in taken} & _HTTP_METHODS))
            for path, taken in routes.items()
        }
        self.methods["/"] = ("GET",)
        self.landing = landing
        self.document = document

    async def __call__(self, scope, receive, send):
        from starlette.responses import JSONResponse, Response

        if scope["type"] == "http":
            send = _with_answer_headers(send)
        taken = self.methods.get(scope.get("path")) if scope["type"] == "http" else None
        method = scope.get("method")
        if taken and method not in taken and not (method == "HEAD" and "GET" in taken):
            if "POST" in taken:
                # A route that answers profiles: the Gate refuses it, after looking for a
                # crisis flag in what was sent (a crisis answer never depends on the method).
                return await self.app({**scope, METHOD_NOT_TAKEN: taken}, receive, send)
            status, payload, headers = method_not_taken(method, scope["path"], taken)
            response = JSONResponse(payload, status_code=status, headers=headers)
            count_front_answer(scope["path"], status)
            return await response(scope, receive, send)
        if method == "HEAD" and taken and "HEAD" not in taken:
            # Not every layer below answers HEAD (FastAPI's pages did not): it is asked as GET,
            # and the answer's headers go out without its body.
            scope, send = {**scope, "method": "GET"}, _headers_only(send)
        if scope.get("path") == "/metrics" and not metrics_gathered():
            # BentoML's Prometheus client reads every worker's figures from the folder that
            # `bentoml serve` makes; without it (the app run in process, a test client) it
            # raises, which would be a bare 500.
            response = JSONResponse({"error": METRICS_IN_PROCESS, "problems": []}, status_code=503)
            count_front_answer("/metrics", 503)
            return await response(scope, receive, send)
        if scope.get("path") == "/metrics":
            # A killed worker's live gauges (its version served, its requests in progress)
            # would be summed with the living ones' for ever: dropped before they are read.
            forget_dead_workers()
        if scope.get("path") == "/docs.json" and scope.get("method") in ("GET", "HEAD"):
            response = Response(self.document, media_type="application/json")
            count_front_answer("/docs.json", 200)
            return await response(scope, receive, send)
        if scope["type"] == "http" and scope.get("path") in HTML_PAGES and wants_html(scope):
            # A page's refusal (no key, a wrong role, no card) to a browser: a page, not JSON.
            send = with_html_errors(send, request_address(scope))
        if scope["type"] not in ("http", "websocket") or scope.get("path") in self.routes:
            return await self.app(scope, receive, send)

        if scope["type"] == "websocket":
            count_front_answer(UNKNOWN_ROUTE, 403)  # as uvicorn answers a refused handshake
            return await send({"type": "websocket.close", "code": 1008})
        if scope.get("path") == "/" and scope.get("method") in ("GET", "HEAD"):
            response = Response(self.landing(scope), media_type="text/html; charset=utf-8")
            route = "/"
        elif scope.get("path") == "/favicon.ico" and scope.get("method") in ("GET", "HEAD"):
            # Browsers ask for it by themselves on every site they open: a 404 would be an
            # error in the console of every page (the card, /docs.json). There is no icon.
            response = Response(status_code=204, headers={"Cache-Control": "max-age=86400"})
            route = "/favicon.ico"
        else:
            # The path is not echoed, logged nor a label: it may hold what its sender should
            # not have put there, and a scanner's thousands of paths would each be a series.
            log.info(
                "answered 404 to %s of a path the service does not serve (path not logged)",
                _method_word(method),
            )
            near = self._near_route(scope.get("path", ""))
            if near is not None:
                # Under the route's own path: BentoML's layers label and log that, never the
                # path sent.
                near_scope = {**scope, "path": near, "raw_path": near.encode(), NEAR_ROUTE: True}
                return await self.app(near_scope, receive, send)
            status, payload = not_found()
            response = JSONResponse(payload, status_code=status)
            route = UNKNOWN_ROUTE
        count_front_answer(route, response.status_code)
        return await response(scope, receive, send)

    def _near_route(self, path: str) -> str | None:
        """The POST route whose name ends ``path`` (any case, slashes around it), when ``path``
        is not itself a route: ``/recommend/``, ``//allocate``, ``/api/v1/Recommend``."""
        last = path.rstrip("/").rsplit("/", 1)[-1].lower()
        near = f"/{last}"
        return near if last and "POST" in self.methods.get(near, ()) else None


def not_found() -> tuple[int, dict]:
    """(status, payload) of the 404 of a path the service does not serve."""
    return 404, {"error": "no such route; the routes are listed in /docs.json", "problems": []}


# Every answer may hold health-related data (a profile's scores, a crisis answer, the audit
# trail) or say what the service is: no cache along the way (a proxy, the browser's disk) keeps
# one, and no browser reads a body as another type than it is sent as (the card is HTML built
# from the registry's text). The pages (the landing page, the card) need no script and load
# nothing from elsewhere (the card's figures are data: URLs; 'self' is for the favicon a browser
# asks for by itself, which it skips under `img-src data:` alone), and no other site may frame
# them; the browser is told so. An answer that sets its own header (the favicon's
# Cache-Control) keeps it.
_ANSWER_HEADERS = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (
        b"content-security-policy",
        b"default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; base-uri 'none'; "
        b"form-action 'none'; frame-ancestors 'none'",
    ),
)


def _with_answer_headers(send):
    async def send_with_headers(message):
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            headers += [(name, value) for name, value in _ANSWER_HEADERS if name not in present]
            message = {**message, "headers": headers}
        await send(message)

    return send_with_headers


def _headers_only(send):
    async def send_headers(message):
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_headers


_HTTP_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"})


def _method_word(method: str | None) -> str:
    """A request's method as the log may say it: a standard one, else "another method" (a
    method is any token its sender chose)."""
    return method if method in _HTTP_METHODS else "another method"


def method_not_taken(method: str, path: str, taken: tuple[str, ...]) -> tuple[int, dict, dict]:
    """(status, payload, headers) of the 405 naming the methods a route takes."""
    allowed = ", ".join(taken)
    method = method[:20]  # a method is any token its sender chose
    return (
        405,
        {
            "error": f"{method} {path}: the route does not take this method; accepted: "
            f"{allowed} (see /docs.json)",
            "problems": [
                {
                    "field": "method",
                    "value": method,
                    "message": "not taken here",
                    "accepted": allowed,
                }
            ],
        },
        {"Allow": allowed},
    )
