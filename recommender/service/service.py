"""The BentoML service: the only module of the project that imports BentoML.

Serve with ``recommender serve`` (or ``bentoml serve recommender.service.service:Recommender``).
The champion is loaded once, in ``__init__``; ``/reload`` swaps in the current champion by
replacing one reference, so requests already running finish on the model they started with
(:mod:`~recommender.service._serving`). Authorization and body validation happen in
:class:`~recommender.service._gate.Gate` before BentoML parses anything, and the Gate answers
``/recommend`` and ``/recommend_batch`` itself with the same handlers (``direct_routes``); the
handlers are :mod:`~recommender.service._answering`'s and the pages' :mod:`~recommender.service._pages`'s,
and the work itself is :class:`~recommender.service._engine.RecommendationEngine`. This module
holds what BentoML needs to see: the service class, its routes and the layers around its app.
"""

from __future__ import annotations

import atexit
import gc
import json

import bentoml
from fastapi import FastAPI
from starlette.responses import HTMLResponse, Response

from recommender.service._allocation import AllocationPlan, AllocationRequest
from recommender.service._answering import Answering, request_id
from recommender.service._config import (
    SERVICE_NAME,
    check_before_serving,
    load_serve_config,
    worker_settings,
)
from recommender.service._deadline import Deadline, is_bentoml_timeout_layer
from recommender.service._engine import RecommendationEngine
from recommender.service._gate import Gate
from recommender.service._known_routes import KnownRoutes
from recommender.service._landing import landing_page
from recommender.service._model_loading import load_champion_model, load_version_model
from recommender.service._openapi import openapi_document
from recommender.service._outcome_keys import IDEMPOTENCY_HEADER
from recommender.service._pages import audit_export_response, model_card_facts, model_card_page
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

__all__ = ["Recommender", "SERVICE_NAME"]

# Routes BentoML does not make itself (HTML card, CSV export) live on this small app, mounted
# under the service; its routes are listed in the service's OpenAPI document too.
pages = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

# Settings every worker would refuse at its start are refused here, once: a plain `bentoml
# serve` (the bento's container) defines this class in its own process before starting any
# worker, so it stops naming the setting rather than restarting failing workers for ever.
_SETTINGS = load_serve_config()
check_before_serving(_SETTINGS)

# BentoML's server process imports this module too, and at exit the interpreter collected its
# objects (pandas', SQLAlchemy's, BentoML's) cycle by cycle as it cleared the modules: seconds
# after its workers had stopped, before the port's owner was gone. Exit handlers run before
# that; frozen, the objects are freed by reference counts only. (A worker froze its own at
# start: see _serving.py.)
atexit.register(gc.freeze)


@bentoml.asgi_app(pages, path="/")
# BentoML reads worker settings when the class is defined: they come from serve.yaml (the file
# `recommender serve` names in RECOMMENDER_SERVE_CONFIG, else configs/serve.yaml), so a plain
# `bentoml serve` runs with the same workers and threads (reading the file changes nothing).
@bentoml.service(name=SERVICE_NAME, **worker_settings(_SETTINGS))
class Recommender(Answering):
    """Recommends a clinician-wellness intervention per person, with intervals and reasons."""

    # Startup, /reload and the watcher of other workers' reloads: ``Serving`` (_serving.py,
    # its watcher in _reload_watcher.py);
    # the routes' handlers: ``Answering`` (_answering.py).

    def _load_engine(self, version: str | None = None, *, catalog) -> RecommendationEngine:
        model, version = load_champion_model() if version is None else load_version_model(version)
        return self._engine_for(model, version, catalog=catalog)

    @bentoml.on_shutdown
    def _stop_following(self) -> None:
        self._stopping.set()

    @bentoml.api(route="/recommend")
    def recommend(self, request: ServedProfileRequest, /, ctx: bentoml.Context) -> Recommendation:
        """Rank the offered interventions for one person, with intervals, reasons and safety."""
        return _with_status(ctx, self._recommend(request, _role(ctx)))

    @bentoml.api(route="/recommend_batch")
    def recommend_batch(self, request: BatchRequest, /, ctx: bentoml.Context) -> BatchResponse:
        """Answer up to 10,000 profiles at once; invalid entries get their own error entries."""
        return _with_status(ctx, self._recommend_batch(request, _role(ctx)))

    @bentoml.api(route="/allocate")
    def allocate(self, request: AllocationRequest, /, ctx: bentoml.Context) -> AllocationPlan:
        """Plan a cohort: who gets which intervention under a budget and capacities."""
        plan = self._allocate(request, _role(ctx))
        if isinstance(plan, Response):
            return _with_status(ctx, plan)
        return plan  # the response model: the documented schema is what is sent

    @bentoml.api(route="/outcomes")
    def report_outcomes(
        self, request: OutcomesRequest, /, ctx: bentoml.Context
    ) -> OutcomesResponse:
        """Record follow-up scores, each linked to the person's served recommendation."""
        lines = ctx.request.headers.getlist(IDEMPOTENCY_HEADER)
        caller = getattr(ctx.request.state, "caller_digest", None) or ""
        return _with_status(ctx, self._record_outcomes(request, _role(ctx), lines, caller))

    @bentoml.api(route="/erasures")
    def erase(self, request: ErasureRequest, /, ctx: bentoml.Context) -> ErasureResponse:
        """Erase people from the audit store, as `recommender audit erase` does (program only)."""
        return _with_status(ctx, self._erase_people(request, _role(ctx)))

    @bentoml.api(route="/reload")
    def reload(self, ctx: bentoml.Context) -> ReloadResponse:
        """Load the registry's current champion without a restart (scientists only).

        This worker swaps at once; every other worker sharing the audit store follows within
        ``reload_poll_seconds`` (see ``_follow_reloads``).
        """
        return _with_status(ctx, self._reload(_role(ctx)))

    @pages.get(
        "/model_card",
        response_class=HTMLResponse,
        summary="The served model's card as an HTML page (auditors, scientists).",
    )
    def model_card(self):
        return self._served_card(model_card_page)

    @pages.get("/model_card.json", summary="The served model's card as JSON.")
    def model_card_json(self):
        return self._served_card(model_card_facts)

    def _served_card(self, render):
        """The card of the engine served now, by ``render`` (HTML or JSON), with the catalog
        in force and what is amiss with it; why there is none while no model is served."""
        engine = self.engine
        if engine is None:
            return render(self.config, None, self.load_error, self.stale)
        return render(
            self.config,
            engine.version,
            self.load_error,
            self.stale,
            engine.catalog_note,
            catalog=engine.catalog,
        )

    @pages.get("/audit/export", summary="The audit log as CSV (auditors only).")
    def audit_export(self, since: str | None = None, table: str = "recommendations"):
        closed = None if self.audit is not None else self._store_closed("nothing can be read")
        return audit_export_response(self.audit, since, table=table, closed=closed)


def _role(ctx: bentoml.Context) -> str:
    return getattr(ctx.request.state, "caller_role", None) or "unknown"


def _with_status(ctx: bentoml.Context, response: Response) -> Response:
    # BentoML copies ctx.response.status_code onto whatever the API returns.
    ctx.response.status_code = response.status_code
    return response


def _answer_headers() -> dict:
    """What BentoML's endpoint adds to every answer, for the answers the front door gives
    itself: the server's name and the request id (the id of the request's OpenTelemetry server
    span, which the access log prints too), as 16 hex digits."""
    headers = {"Server": f"BentoML Service/{SERVICE_NAME}"}
    span = request_id()
    if span is not None:
        headers["X-BentoML-Request-ID"] = span
    return headers


Recommender.add_asgi_middleware(
    Gate,
    current=bentoml.get_current_service,
    threads=Recommender.config.get("threads", 1),
    headers=_answer_headers,
    # Three quarters of the request timeout: a slow body's crisis flags are answered in the rest.
    body_seconds=0.75 * Recommender.config["traffic"]["timeout"],
)

# Served beyond the routes the OpenAPI document lists: the document itself and BentoML's
# schema for its clients (BentoML's UI pages are not).
_DOCUMENT_ROUTES = ("/docs.json", "/schema.json")


class _FrontedService(type(Recommender)):
    """BentoML's service with :class:`KnownRoutes` in front of its whole ASGI app.

    Middleware added with ``add_asgi_middleware`` runs inside BentoML's metrics layer, which
    would already have labelled an unknown path; only a layer around the app is early enough.
    """

    __slots__ = ()

    def to_asgi(self, is_main: bool = True):
        spec = self.openapi_spec.asdict()
        # each path with its path item's keys: its methods (and its summary, parameters, ...)
        routes = {path: list(item) for path, item in spec["paths"].items()}
        routes.update({path: ["GET"] for path in _DOCUMENT_ROUTES})
        app = super().to_asgi(is_main=is_main)
        _tune_layers(app)
        document = json.dumps(openapi_document(spec)).encode()
        return KnownRoutes(app, routes=routes, landing=landing_page, document=document)


# What a 504 says of a request whose work goes on in its thread past the answer.
_GOES_ON = {
    "/erasures": "the erasure goes on to its end all the same; its row in GET "
    "/audit/export?table=erasures has a completed_at once it has finished (the same request "
    "sent again meanwhile erases only the people not yet erased)",
}


def _tune_layers(app) -> None:
    """Two of BentoML's layers, changed in place in Starlette's middleware list (the app's
    middleware is built on its first request, so the list is still read then):

    - :class:`Deadline` takes the place of BentoML's request timeout layer (same timeout, same
      504), whose timers kept every request's objects alive for the whole timeout (see
      ``_deadline.py``). BentoML's layer is found by its public name and its ``timeout``
      argument (BentoML exports no name for the class); ``tests/test_fastpath6_deadline.py``
      fails if a BentoML upgrade moves it.
    - OpenTelemetry's layer keeps the request's server span (its id is the
      ``X-BentoML-Request-ID`` header and the access log's request id; a configured tracer
      still gets it) but no longer opens a span of its own around every ASGI message received
      and sent: three more spans per answer, a tenth of the worker's event-loop time under
      load, which nothing here reads.
    """
    from starlette.middleware import Middleware

    layers = app.user_middleware
    for i, layer in enumerate(layers):
        if is_bentoml_timeout_layer(layer):
            layers[i] = Middleware(Deadline, timeout=layer.kwargs["timeout"], past=_GOES_ON)
        elif _is_opentelemetry_layer(layer):
            layer.kwargs["exclude_spans"] = ["receive", "send"]


def _is_opentelemetry_layer(layer) -> bool:
    cls = layer.cls
    return getattr(cls, "__name__", "") == "OpenTelemetryMiddleware" and getattr(
        cls, "__module__", ""
    ).startswith("opentelemetry.instrumentation.asgi")


Recommender.__class__ = _FrontedService  # same layout (no new slots): only to_asgi differs
