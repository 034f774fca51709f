"""The BentoML service: the only module of the project that imports BentoML.

Serve with ``recommender serve`` (or ``bentoml serve recommender.service.service:Recommender``).
The champion is loaded once, in ``__init__``; ``/reload`` swaps in the current champion by
replacing one reference, so requests already running finish on the model they started with.
Authorization and body validation happen in :class:`~recommender.service._gate.Gate` before
BentoML parses anything, and the Gate answers ``/recommend`` and ``/recommend_batch`` itself
with the same handlers (``direct_routes``); the work itself is
:class:`~recommender.service._engine.RecommendationEngine`.
"""

from __future__ import annotations

import gc
import logging
import threading
import uuid

import bentoml
from fastapi import FastAPI
from starlette.responses import HTMLResponse, JSONResponse, Response

from recommender.errors import InputError, PlanTimeout
from recommender.explain import complements_for
from recommender.service._allocation import (
    ALLOCATION_ACCEPTED,
    AllocationPlan,
    AllocationRequest,
    allocate_cohort,
)
from recommender.service._audit import AuditLog, resolve_salt
from recommender.service._audit_export import audit_csv, parse_since
from recommender.service._auth import API_KEYS_ENV, KeyRing, parse_env_keys
from recommender.service._card import read_card
from recommender.service._config import SERVICE_NAME, load_serve_config, worker_settings
from recommender.service._context import answer_context
from recommender.service._crisis import crisis_answer, crisis_flagged, record_answers
from recommender.service._deadline import Deadline, is_bentoml_timeout_layer
from recommender.service._engine import AuditUnavailable, RecommendationEngine, load_champion_model
from recommender.service._gate import Gate, KnownRoutes
from recommender.service._landing import landing_page
from recommender.service._outcomes import OutcomeRefused, record_outcomes
from recommender.service._profiles import profile_schema
from recommender.settings import read_secret
from recommender.service._answer_json import batch_response_json
from recommender.service._problems import as_problems
from recommender.service._requests import (
    BatchRequest,
    OutcomesRequest,
    ReloadRequest,
    ServedProfileRequest,
)
from recommender.service._responses import (
    BatchResponse,
    OutcomesResponse,
    Recommendation,
    ReloadResponse,
)

__all__ = ["Recommender", "SERVICE_NAME"]

log = logging.getLogger("recommender.service")

# Routes BentoML does not make itself (HTML card, CSV export) live on this small app, mounted
# under the service; its routes are listed in the service's OpenAPI document too.
pages = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@bentoml.asgi_app(pages, path="/")
# BentoML reads worker settings when the class is defined: they come from serve.yaml (the file
# `recommender serve` names in RECOMMENDER_SERVE_CONFIG, else configs/serve.yaml), so a plain
# `bentoml serve` runs with the same workers and threads (reading the file changes nothing).
@bentoml.service(name=SERVICE_NAME, **worker_settings())
class Recommender:
    """Recommends a clinician-wellness intervention per person, with intervals and reasons."""

    def __init__(self) -> None:
        from recommender.catalog import load_catalog

        # BentoML's server logging passes only warnings from other loggers; which model a worker
        # serves, and when it followed a /reload, are what an operator reads the log for.
        if log.level == logging.NOTSET:
            log.setLevel(logging.INFO)
        self.config = load_serve_config()
        self.keyring = KeyRing(
            [*self.config.api_keys, *parse_env_keys(read_secret("api_keys", env=API_KEYS_ENV))]
        )
        if not len(self.keyring):
            log.warning(
                "no API keys configured: every protected route answers 401; set "
                "%s or auth.keys in serve.yaml",
                API_KEYS_ENV,
            )
        url = self.config.audit_url or f"sqlite:///{self.config.models_dir / 'audit.db'}"
        try:
            self.audit = AuditLog(
                url,
                salt=resolve_salt(self.config.audit_salt, self.config.models_dir),
                durability=self.config.audit_durability,
            )
        except Exception:  # noqa: BLE001 - crisis answers must not wait for the store
            log.exception(
                "the audit store could not be opened: only crisis answers are given "
                "(recorded in this log) until it can"
            )
            self.audit = None
        self.catalog = load_catalog()
        self._reload_lock = threading.Lock()
        # Reloads other workers announced before this one started are already in the champion.
        self._reload_seen = self._latest_reload_id()
        # Without a champion the service still starts: crisis answers need no model. /readyz
        # then says not ready, other requests get 503 with the cause, and /reload can bring one.
        self.engine, self.load_error = None, None
        try:
            self.engine = self._load_engine()
        except Exception as error:  # noqa: BLE001 - a bad champion must not stop crisis answers
            self.load_error = f"no model is loaded ({type(error).__name__}: {error})"
            log.exception(
                "the champion could not be loaded; serving crisis answers only until "
                "/reload brings a model"
            )
        self.context_without_model = answer_context(self.config)
        self._stopping = threading.Event()
        threading.Thread(target=self._follow_reloads, name="follow-reloads", daemon=True).start()
        # The loaded libraries and model are hundreds of thousands of long-lived objects; kept
        # out of the cyclic collector, full collections no longer stall large batches. (Done
        # once: after /reload the old model must stay collectable.)
        gc.collect()
        gc.freeze()
        if self.engine is not None:
            log.info("serving model version %s", self.engine.version)

    def __is_ready__(self) -> bool:
        """/readyz: ready only with a model loaded (crisis answers are given either way)."""
        return self.engine is not None

    def _latest_reload_id(self) -> int:
        try:
            latest = self.audit.latest_reload()
        except Exception:  # noqa: BLE001 - the store may be down now; the watcher retries
            log.warning("could not read the reload records; following from now on")
            return 0
        return latest[0] if latest else 0

    def _follow_reloads(self) -> None:
        """Load the champion when another worker (or replica) has announced a /reload.

        Every ``reload_poll_seconds`` one query on the audit store; a failed query or load is
        logged and this worker keeps serving what it has, trying again next time.
        """
        while not self._stopping.wait(self.config.reload_poll_seconds):
            try:
                latest = self.audit.latest_reload()
                if latest is None or latest[0] <= self._reload_seen:
                    continue
                if self.engine is None or latest[1] != self.engine.version:
                    previous, engine = self._swap_in_champion()
                    log.info("followed a /reload: version %s -> %s", previous, engine.version)
                self._reload_seen = latest[0]
            except Exception:  # noqa: BLE001 - never let the watcher die
                log.exception(
                    "following a /reload failed; still serving version %s",
                    None if self.engine is None else self.engine.version,
                )

    @bentoml.on_shutdown
    def _stop_following(self) -> None:
        self._stopping.set()

    def _swap_in_champion(self):
        """Load the registry's champion and serve it; returns ``(previous_version, engine)``."""
        with self._reload_lock:
            previous = None if self.engine is None else self.engine.version
            engine = self._load_engine()
            self.engine = engine  # a single reference swap: atomic for readers
            self.load_error = None
        return previous, engine

    def _load_engine(self) -> RecommendationEngine:
        model, version = load_champion_model()
        return self._engine_for(model, version)

    def _engine_for(self, model, version) -> RecommendationEngine:
        try:
            return RecommendationEngine(
                model, version, catalog=self.catalog, config=self.config, audit=self.audit
            )
        except InputError as error:  # the champion exists but this service cannot serve it
            raise _Unservable(
                f"the champion (version {version}) cannot be served: {error}"
            ) from None

    @property
    def body_models(self) -> dict:
        """Per route, the body model the front door checks, its fields and what each accepts.

        A profile is the served model's: the data contract's fields and its extra features
        (which a crisis flag may leave out: it never reaches the model).
        """
        engine = self.engine
        profiles = engine.profiles if engine is not None else profile_schema()
        return {
            "/recommend": (profiles.front_door, profiles.fields, profiles.accepted),
            "/recommend_batch": (BatchRequest, ("profiles",), {}),
            "/allocate": (
                AllocationRequest,
                tuple(AllocationRequest.model_fields),
                ALLOCATION_ACCEPTED,
            ),
            "/reload": (ReloadRequest, (), {}),
            "/outcomes": (OutcomesRequest, ("outcomes",), {}),
        }

    @bentoml.api(route="/recommend")
    def recommend(self, request: ServedProfileRequest, /, ctx: bentoml.Context) -> Recommendation:
        """Rank the offered interventions for one person, with intervals, reasons and safety."""
        return _with_status(ctx, self._recommend(request, _role(ctx)))

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

    def _recommend_body(self, body: bytes, caller_role: str) -> Response:
        return self._recommend(ServedProfileRequest.model_validate_json(body), caller_role)

    def _recommend(self, request: ServedProfileRequest, caller_role: str) -> Response:
        raw = request.body()
        if crisis_flagged(raw):  # before and outside anything that could fail
            return JSONResponse(self._crisis_answers([raw], caller_role)[0])
        engine = self.engine  # one model for the whole request, even if /reload runs meanwhile
        if engine is None:
            return self._refusal_without_model()
        try:
            # Checked against the model that answers (the front door may have seen another,
            # had /reload swapped it in between).
            row = engine.check_row(raw)
            answer = engine.recommend([row], caller_role=caller_role)[0]
        except InputError as error:
            return _refusal(422, str(error), error.problems)
        except AuditUnavailable as error:
            return _refusal(503, f"{error}; nothing was answered, please retry")
        # Recommendation's own JSON (the documented schema is what is sent), with the catalog
        # facts every answer repeats validated once per model rather than once per request.
        return Response(engine.answer_json.recommendation(answer), media_type="application/json")

    @bentoml.api(route="/recommend_batch")
    def recommend_batch(self, request: BatchRequest, /, ctx: bentoml.Context) -> BatchResponse:
        """Answer up to 10,000 profiles at once; invalid entries get their own error entries."""
        return _with_status(ctx, self._recommend_batch(request, _role(ctx)))

    def _recommend_batch_body(self, body: bytes, caller_role: str) -> Response:
        return self._recommend_batch(BatchRequest.model_validate_json(body), caller_role)

    def _recommend_batch(self, request: BatchRequest, caller_role: str) -> Response:
        engine = self.engine
        if len(request.profiles) > self.config.max_batch_rows:
            return self._too_many(len(request.profiles))
        batch_id = uuid.uuid4().hex
        # Crisis rows first, on their own: they neither block nor are blocked by the others.
        crisis = self._crisis_rows(request.profiles, caller_role, batch_id)
        if engine is None:
            return self._refusal_without_model(crisis)
        valid, index, errors = engine.check_rows(request.profiles)
        errors = [e for e in errors if e["index"] not in crisis]
        kept = [k for k, i in enumerate(index) if i not in crisis]
        try:
            scored = engine.recommend(
                [valid[k] for k in kept], caller_role=caller_role, batch_id=batch_id, compact=True
            )
        except InputError as error:  # e.g. a category the served model never saw
            return _refusal(422, str(error), error.problems, crisis)
        except AuditUnavailable as error:
            return _refusal(
                503,
                f"{error}; nothing but crisis answers was answered, please retry",
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

    @bentoml.api(route="/allocate")
    def allocate(self, request: AllocationRequest, /, ctx: bentoml.Context) -> AllocationPlan:
        """Plan a cohort: who gets which intervention under a budget and capacities."""
        engine = self.engine
        if len(request.profiles) > self.config.max_batch_rows:
            return _with_status(ctx, self._too_many(len(request.profiles)))
        plan_id = f"plan-{uuid.uuid4().hex}"
        # Crisis rows get their resources before any planning, whatever happens to the plan.
        crisis = self._crisis_rows(request.profiles, _role(ctx), plan_id)
        if engine is None:
            return self._no_model(ctx, crisis)
        try:
            # Half the request timeout: a plan found by then is answered with its status.
            plan = allocate_cohort(
                engine,
                request,
                caller_role=_role(ctx),
                time_limit=self.config.timeout / 2,
                plan_id=plan_id,
                crisis=crisis,
            )
        except InputError as error:
            return _error(ctx, 422, str(error), error.problems, crisis)
        except PlanTimeout as error:  # not the caller's fault: usual care for all always fits
            return _error(ctx, 503, str(error), None, crisis)
        except AuditUnavailable as error:
            return _error(
                ctx,
                503,
                f"{error}; no plan was given, only the crisis answers; please retry",
                None,
                crisis,
            )
        return plan  # the response model: the documented schema is what is sent

    def _crisis_answers(
        self,
        raws,
        caller_role: str,
        batch_id: str | None = None,
        *,
        compact: bool = False,
        prefixes=None,
    ) -> list[dict]:
        """Crisis answers for flagged bodies, recorded (in the service log if the audit store
        fails); they need no model, so one is used only for its version when loaded."""
        engine, config = self.engine, self.config
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
                    catalog_version=self.catalog.version,
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
        if engine is None and not compact:
            complements = complements_for(self.catalog)
            for answer in answers:
                answer["complements"] = complements
        record_answers(self.audit, [record for _, record in pairs], answers, range(len(pairs)))
        return answers

    def _crisis_rows(self, profiles, caller_role: str, batch_id: str) -> dict[int, dict]:
        """``{position: crisis answer}`` for the flagged entries of a batch or plan."""
        flagged = [i for i, raw in enumerate(profiles) if crisis_flagged(raw)]
        answers = self._crisis_answers(
            [profiles[i] for i in flagged],
            caller_role,
            batch_id,
            compact=True,
            prefixes=[f"profiles[{i}]" for i in flagged],
        )
        return dict(zip(flagged, answers))

    def _no_model(self, ctx: bentoml.Context, crisis=None) -> JSONResponse:
        return _with_status(ctx, self._refusal_without_model(crisis))

    def _refusal_without_model(self, crisis=None) -> JSONResponse:
        return _refusal(
            503,
            f"{self.load_error}; only crisis answers can be given until /reload loads a champion",
            None,
            crisis,
        )

    def _too_many(self, entries: int) -> JSONResponse:
        limit = self.config.max_batch_rows
        return _refusal(
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
        )

    @bentoml.api(route="/outcomes")
    def report_outcomes(
        self, request: OutcomesRequest, /, ctx: bentoml.Context
    ) -> OutcomesResponse:
        """Record follow-up scores, each linked to the person's served recommendation."""
        try:
            report = record_outcomes(
                self.audit, request.outcomes, arms=self.catalog.arm_ids, source="api"
            )
        except OutcomeRefused as error:
            return _error(ctx, error.status, str(error), error.problems)
        except Exception as error:  # noqa: BLE001 - the store's failure is not the caller's
            log.exception("recording outcomes failed")
            return _error(
                ctx,
                503,
                f"the outcome store could not be written "
                f"({type(error).__name__}); nothing was recorded, please "
                "retry",
            )
        return JSONResponse(report.as_dict())

    @bentoml.api(route="/reload")
    def reload(self, ctx: bentoml.Context) -> ReloadResponse:
        """Load the registry's current champion without a restart (scientists only).

        This worker swaps at once; every other worker sharing the audit store follows within
        ``reload_poll_seconds`` (see ``_follow_reloads``).
        """
        previous = None if self.engine is None else self.engine.version
        serving = "crisis answers only" if previous is None else f"version {previous}"
        try:
            previous, engine = self._swap_in_champion()
        except _Unservable as error:
            return _error(ctx, 409, f"{error}; still serving {serving}")
        except InputError as error:
            return _error(ctx, 409, f"no champion to load ({error}); still serving {serving}")
        except Exception as error:  # noqa: BLE001 - a bad champion must not take the service down
            # The registry unreachable, an artifact missing, or a champion pickled by other
            # code: the old model keeps serving and the caller learns why.
            log.exception("reload failed; still serving %s", serving)
            return _error(
                ctx,
                503,
                f"could not load the champion ({type(error).__name__}: "
                f"{error}); still serving {serving}",
            )
        log.info("reloaded: version %s -> %s", previous, engine.version)
        try:
            self._reload_seen = self.audit.announce_reload(engine.version, _role(ctx))
        except Exception:  # noqa: BLE001 - this worker serves the new version regardless
            log.exception(
                "could not record the reload; other workers keep version %s until "
                "their next /reload",
                previous,
            )
        return JSONResponse({"previous_version": previous, "model_version": engine.version})

    @pages.get(
        "/model_card",
        response_class=HTMLResponse,
        summary="The served model's card as an HTML page (auditors, scientists).",
    )
    def model_card(self):
        if self.engine is None:
            return _no_card(self.load_error)
        version = self.engine.version
        html = read_card(self.config.models_dir, version, "card.html")
        if html is None:
            return _missing_card(version)
        # The card was written at training; the exploration policy is the service's own.
        import html as markup

        serving = (
            f'<p id="serving-policy"><strong>As served now:</strong> '
            f"{markup.escape(self.config.exploration.describe())}</p>"
        )
        return HTMLResponse(html.replace("</h1>", "</h1>" + serving, 1))

    @pages.get("/model_card.json", summary="The served model's card as JSON.")
    def model_card_json(self):
        if self.engine is None:
            return _no_card(self.load_error)
        version = self.engine.version
        text = read_card(self.config.models_dir, version, "card.json")
        if text is None:
            return _missing_card(version)
        import json

        facts = json.loads(text)
        rule = self.config.exploration
        facts["serving"] = {
            "exploration": {
                "policy": rule.policy,
                "epsilon": rule.epsilon,
                "cycle": rule.cycle,
                "usual_care_share": rule.usual_care_share,
                "max_cost": rule.max_cost,
                "description": rule.describe(),
            }
        }
        return JSONResponse(facts)

    @pages.get("/audit/export", summary="The audit log as CSV (auditors only).")
    def audit_export(self, since: str | None = None):
        try:
            start = None if since is None else parse_since(since)
        except InputError as error:
            return JSONResponse({"error": str(error), "problems": error.problems}, status_code=422)
        try:
            if self.audit is None:
                raise RuntimeError("the audit store could not be opened")
            rows = self.audit.export(since=start)
        except Exception as error:  # noqa: BLE001 - the store's failure is not the caller's
            log.exception("audit export failed")
            return JSONResponse(
                {
                    "error": f"the audit store could not be read "
                    f"({type(error).__name__}); please retry",
                    "problems": [],
                },
                status_code=503,
            )
        return Response(audit_csv(rows), media_type="text/csv")


class _Unservable(InputError):
    """A champion was loaded but cannot be served (e.g. an extra feature named like a field)."""


def _no_card(cause: str | None) -> JSONResponse:
    return JSONResponse(
        {"error": f"{cause}; no model card to show", "problems": []}, status_code=503
    )


def _missing_card(version: str) -> JSONResponse:
    return JSONResponse(
        {"error": f"no model card found for version {version}", "problems": []}, status_code=404
    )


def _role(ctx: bentoml.Context) -> str:
    return getattr(ctx.request.state, "caller_role", None) or "unknown"


def _error(
    ctx: bentoml.Context, status: int, message: str, problems=None, crisis=None
) -> JSONResponse:
    return _with_status(ctx, _refusal(status, message, problems, crisis))


def _with_status(ctx: bentoml.Context, response: Response) -> Response:
    # BentoML copies ctx.response.status_code onto whatever the API returns.
    ctx.response.status_code = response.status_code
    return response


def _refusal(status: int, message: str, problems=None, crisis=None) -> JSONResponse:
    body = {"error": message, "problems": as_problems(problems)}
    if crisis:  # a batch or plan refused: its crisis rows are answered all the same
        body["crisis_results"] = [{"index": i, "answer": crisis[i]} for i in sorted(crisis)]
    return JSONResponse(body, status_code=status)


def _answer_headers() -> dict:
    """What BentoML's endpoint adds to every answer, for the answers the front door gives
    itself: the server's name and the request id (the id of the request's OpenTelemetry server
    span, which the access log prints too), as 16 hex digits."""
    from opentelemetry import trace

    headers = {"Server": f"BentoML Service/{SERVICE_NAME}"}
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        headers["X-BentoML-Request-ID"] = format(span.span_id, "016x")
    return headers


Recommender.add_asgi_middleware(
    Gate,
    current=bentoml.get_current_service,
    threads=Recommender.config.get("threads", 1),
    headers=_answer_headers,
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
        routes = {*self.openapi_spec.asdict()["paths"], *_DOCUMENT_ROUTES}
        app = super().to_asgi(is_main=is_main)
        _tune_layers(app)
        return KnownRoutes(app, routes=routes, landing=landing_page)


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
            layers[i] = Middleware(Deadline, timeout=layer.kwargs["timeout"])
        elif _is_opentelemetry_layer(layer):
            layer.kwargs["exclude_spans"] = ["receive", "send"]


def _is_opentelemetry_layer(layer) -> bool:
    cls = layer.cls
    return getattr(cls, "__name__", "") == "OpenTelemetryMiddleware" and getattr(
        cls, "__module__", ""
    ).startswith("opentelemetry.instrumentation.asgi")


Recommender.__class__ = _FrontedService  # same layout (no new slots): only to_asgi differs
