"""The BentoML service: the only module of the project that imports BentoML.

Serve with ``recommender serve`` (or ``bentoml serve recommender.service.service:Recommender``).
The champion is loaded once, in ``__init__``; ``/reload`` swaps in the current champion by
replacing one reference, so requests already running finish on the model they started with.
Authorization and body validation happen in :class:`~recommender.service._gate.Gate` before
BentoML parses anything; the work itself is
:class:`~recommender.service._engine.RecommendationEngine`.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import uuid

import bentoml
from fastapi import FastAPI
from starlette.responses import HTMLResponse, JSONResponse, Response

from recommender.errors import InputError, PlanTimeout
from recommender.service._allocation import (
    ALLOCATION_ACCEPTED,
    AllocationPlan,
    AllocationRequest,
    allocate_cohort,
)
from recommender.service._audit import AuditLog, audit_csv, parse_since, resolve_salt
from recommender.service._auth import API_KEYS_ENV, KeyRing, parse_env_keys
from recommender.service._card import read_card
from recommender.service._config import SERVICE_NAME, load_serve_config
from recommender.service._engine import AuditUnavailable, RecommendationEngine, load_champion_model
from recommender.service._gate import Gate
from recommender.service._schemas import (
    as_problems,
    BatchRequest,
    BatchResponse,
    Recommendation,
    ReloadRequest,
    ReloadResponse,
    ServedProfileRequest,
)

__all__ = ["Recommender", "SERVICE_NAME"]

log = logging.getLogger("recommender.service")

# Routes BentoML does not make itself (HTML card, CSV export) live on this small app, mounted
# under the service; its routes are listed in the service's OpenAPI document too.
pages = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@bentoml.asgi_app(pages, path="/")
# BentoML reads worker settings when the class is defined; `recommender serve` passes the
# values of serve.yaml through these variables (reading them has no side effect). The
# fallbacks are the shipped serve.yaml's, for a plain `bentoml serve`.
@bentoml.service(
    name=SERVICE_NAME,
    workers=int(os.environ.get("RECOMMENDER_SERVE_WORKERS", "1")),
    threads=int(os.environ.get("RECOMMENDER_SERVE_THREADS", "16")),
    traffic={"timeout": float(os.environ.get("RECOMMENDER_SERVE_TIMEOUT", "120"))},
)
class Recommender:
    """Recommends a clinician-wellness intervention per person, with intervals and reasons."""

    def __init__(self) -> None:
        from recommender.catalog import load_catalog

        self.config = load_serve_config()
        self.keyring = KeyRing([*self.config.api_keys,
                                *parse_env_keys(os.environ.get(API_KEYS_ENV))])
        if not len(self.keyring):
            log.warning("no API keys configured: every protected route answers 401; set "
                        "%s or auth.keys in serve.yaml", API_KEYS_ENV)
        url = self.config.audit_url or f"sqlite:///{self.config.models_dir / 'audit.db'}"
        self.audit = AuditLog(url, salt=resolve_salt(self.config.audit_salt,
                                                     self.config.models_dir))
        self.catalog = load_catalog()
        self._reload_lock = threading.Lock()
        self.engine = self._load_engine()
        # The loaded libraries and model are hundreds of thousands of long-lived objects; kept
        # out of the cyclic collector, full collections no longer stall large batches. (Done
        # once: after /reload the old model must stay collectable.)
        gc.collect()
        gc.freeze()
        log.info("serving model version %s", self.engine.version)

    def _load_engine(self) -> RecommendationEngine:
        model, version = load_champion_model()
        return self._engine_for(model, version)

    def _engine_for(self, model, version) -> RecommendationEngine:
        try:
            return RecommendationEngine(model, version, catalog=self.catalog,
                                        config=self.config, audit=self.audit)
        except InputError as error:  # the champion exists but this service cannot serve it
            raise _Unservable(f"the champion (version {version}) cannot be served: "
                              f"{error}") from None

    @property
    def body_models(self) -> dict:
        """Per route, the body model the front door checks, its fields and what each accepts.

        A profile is the served model's: the data contract's fields and its extra features
        (which a crisis flag may leave out: it never reaches the model).
        """
        profiles = self.engine.profiles
        return {
            "/recommend": (profiles.front_door, profiles.fields, profiles.accepted),
            "/recommend_batch": (BatchRequest, ("profiles",), {}),
            "/allocate": (AllocationRequest, tuple(AllocationRequest.model_fields),
                          ALLOCATION_ACCEPTED),
            "/reload": (ReloadRequest, (), {}),
        }

    @bentoml.api(route="/recommend")
    def recommend(self, request: ServedProfileRequest, /,
                  ctx: bentoml.Context) -> Recommendation:
        """Rank the offered interventions for one person, with intervals, reasons and safety."""
        engine = self.engine  # one model for the whole request, even if /reload runs meanwhile
        try:
            # Checked against the model that answers (the front door may have seen another,
            # had /reload swapped it in between).
            row = engine.check_row(request.model_dump())
            answer = engine.recommend([row], caller_role=_role(ctx))[0]
        except InputError as error:
            return _error(ctx, 422, str(error), error.problems)
        except AuditUnavailable as error:
            return _error(ctx, 503, f"{error}; nothing was answered, please retry")
        # The response model itself: the documented schema is what is sent. (Batches and
        # plans stay JSON: validating 1,000 nested answers costs more than answering them.)
        return Recommendation.model_validate(answer)

    @bentoml.api(route="/recommend_batch")
    def recommend_batch(self, request: BatchRequest, /, ctx: bentoml.Context) -> BatchResponse:
        """Answer up to 10,000 profiles at once; invalid entries get their own error entries."""
        engine = self.engine
        if len(request.profiles) > self.config.max_batch_rows:
            return self._too_many(ctx, len(request.profiles))
        valid, index, errors = engine.check_rows(request.profiles)
        batch_id = uuid.uuid4().hex
        try:
            answers = engine.recommend(valid, caller_role=_role(ctx), batch_id=batch_id,
                                       compact=True)
        except InputError as error:  # e.g. a category the served model never saw
            return _error(ctx, 422, str(error), error.problems)
        except AuditUnavailable as error:
            return _error(ctx, 503, f"{error}; nothing was answered, please retry")
        return JSONResponse({
            "batch_id": batch_id, "model_version": engine.version, "answered": len(answers),
            "rejected": len(errors), "results": answers, "result_index": index,
            "errors": errors, "arms": engine.arm_facts(answers),
            "disclaimer": self.config.disclaimer,
        })

    @bentoml.api(route="/allocate")
    def allocate(self, request: AllocationRequest, /, ctx: bentoml.Context) -> AllocationPlan:
        """Plan a cohort: who gets which intervention under a budget and capacities."""
        engine = self.engine
        if len(request.profiles) > self.config.max_batch_rows:
            return self._too_many(ctx, len(request.profiles))
        try:
            # Half the request timeout: a plan found by then is answered with its status.
            plan = allocate_cohort(engine, request, caller_role=_role(ctx),
                                   time_limit=self.config.timeout / 2)
        except InputError as error:
            return _error(ctx, 422, str(error), error.problems)
        except PlanTimeout as error:  # not the caller's fault: usual care for all always fits
            return _error(ctx, 503, str(error))
        except AuditUnavailable as error:
            return _error(ctx, 503, f"{error}; nothing was answered, please retry")
        return JSONResponse(plan)

    def _too_many(self, ctx: bentoml.Context, entries: int) -> JSONResponse:
        limit = self.config.max_batch_rows
        return _error(ctx, 413, f"profiles: {entries:,} entries; at most {limit:,} are "
                                "accepted per request",
                      [{"field": "profiles", "value": entries,
                        "accepted": f"at most {limit:,} entries", "message": "too many"}])

    @bentoml.api(route="/reload")
    def reload(self, ctx: bentoml.Context) -> ReloadResponse:
        """Load the registry's current champion without a restart (scientists only)."""
        with self._reload_lock:
            previous = self.engine.version
            try:
                engine = self._load_engine()
            except _Unservable as error:
                return _error(ctx, 409, f"{error}; still serving version {previous}")
            except InputError as error:
                return _error(ctx, 409, f"no champion to load ({error}); still serving "
                                        f"version {previous}")
            except Exception as error:  # noqa: BLE001 - a bad champion must not take the service down
                # The registry unreachable, an artifact missing, or a champion pickled by other
                # code: the old model keeps serving and the caller learns why.
                log.exception("reload failed; still serving version %s", previous)
                return _error(ctx, 503, f"could not load the champion ({type(error).__name__}: "
                                        f"{error}); still serving version {previous}")
            self.engine = engine  # a single reference swap: atomic for readers
        log.info("reloaded: version %s -> %s", previous, engine.version)
        return JSONResponse({"previous_version": previous, "model_version": engine.version})

    @pages.get("/model_card", response_class=HTMLResponse,
               summary="The served model's card as an HTML page (auditors, scientists).")
    def model_card(self):
        version = self.engine.version
        html = read_card(self.config.models_dir, version, "card.html")
        if html is None:
            return _missing_card(version)
        return HTMLResponse(html)

    @pages.get("/model_card.json", summary="The served model's card as JSON.")
    def model_card_json(self):
        version = self.engine.version
        text = read_card(self.config.models_dir, version, "card.json")
        if text is None:
            return _missing_card(version)
        return Response(text, media_type="application/json")

    @pages.get("/audit/export", summary="The audit log as CSV (auditors only).")
    def audit_export(self, since: str | None = None):
        try:
            start = None if since is None else parse_since(since)
        except InputError as error:
            return JSONResponse({"error": str(error), "problems": error.problems},
                                status_code=422)
        try:
            rows = self.audit.export(since=start)
        except Exception as error:  # noqa: BLE001 - the store's failure is not the caller's
            log.exception("audit export failed")
            return JSONResponse({"error": f"the audit store could not be read "
                                          f"({type(error).__name__}); please retry",
                                 "problems": []}, status_code=503)
        return Response(audit_csv(rows), media_type="text/csv")


class _Unservable(InputError):
    """A champion was loaded but cannot be served (e.g. an extra feature named like a field)."""


def _missing_card(version: str) -> JSONResponse:
    return JSONResponse({"error": f"no model card found for version {version}", "problems": []},
                        status_code=404)


def _role(ctx: bentoml.Context) -> str:
    return getattr(ctx.request.state, "caller_role", None) or "unknown"


def _error(ctx: bentoml.Context, status: int, message: str, problems=None) -> JSONResponse:
    # BentoML copies ctx.response.status_code onto whatever the API returns.
    ctx.response.status_code = status
    return JSONResponse({"error": message, "problems": as_problems(problems)}, status_code=status)


Recommender.add_asgi_middleware(Gate, current=bentoml.get_current_service)
