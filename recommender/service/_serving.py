"""What one worker of the service serves, and how it stays current.

At startup: the settings, the API keys, the audit store, the catalog and the champion's engine
(none, when the champion cannot be loaded: crisis answers need no model). Afterwards: ``/reload``
reads the catalog file again and swaps in the current champion under it by replacing one
reference, so requests already running finish on the model and catalog they started with (a
catalog the checks refuse changes nothing), and a watcher follows the reloads other workers
announce in the audit store (the same version under an edited catalog included). A worker that cannot load the version another worker's /reload announced keeps
serving its own and says so (``stale``: on /readyz, the card's ``serving`` block and the log,
which names the version and the missing file). A part of
:class:`~recommender.service.service.Recommender` (its base class),
which says where the champion comes from (``_load_engine``); nothing here imports BentoML.
Why no champion is served (the refusals, and the reason /readyz gives) is in
:mod:`recommender.service._unservable`; the watcher that follows other workers' reloads (and
retries a missing champion) in :mod:`recommender.service._reload_watcher`.
"""

from __future__ import annotations

import gc
import logging
import threading

from recommender.errors import InputError, ModelFilesMissing, ModelUnreadable
from recommender.model import served_under
from recommender.service._allocation import ALLOCATION_ACCEPTED, AllocationRequest
from recommender.service._audit import AuditLog, AuditSaltMismatch, resolve_salt, salted_hash
from recommender.service._auth import API_KEYS_ENV, KeyRing, secret_api_keys
from recommender.service._catalog_file import catalog_error, catalog_problems
from recommender.service._config import load_serve_config
from recommender.service._context import answer_context
from recommender.service._engine import RecommendationEngine
from recommender.service._profiles import profile_schema
from recommender.service._readiness import Reason, StaleModel
from recommender.service._reload_watcher import ReloadWatcher
from recommender.service._requests import (
    BatchRequest,
    ErasureRequest,
    OutcomesRequest,
    ReloadRequest,
)
from recommender.service._metrics import serving_version
from recommender.service._store_errors import (
    AuditPrivilegeMissing,
    QuotedRowsHidden,
    StoreRefusal,
    shown_location,
)
from recommender.service._unservable import (
    CatalogUnreadable,
    ChampionUnloadable,
    Unservable,
    _no_model_reason,
)

__all__ = ["Serving", "Unservable"]

log = logging.getLogger("recommender.service")


class Serving(ReloadWatcher):
    """A worker's settings, keys, audit store, catalog and served engine (``None`` while no
    champion can be served, with the cause in ``load_error``)."""

    def __init__(self) -> None:
        from recommender.catalog import load_catalog

        self.config = load_serve_config()
        # BentoML's server logging passes only warnings from other loggers; which model a worker
        # serves, when it followed a /reload and which audit rows each answer wrote are what an
        # operator reads the log for (INFO), unless serve.yaml's log_level keeps fewer.
        log.setLevel(self.config.log_level)
        if not any(isinstance(f, QuotedRowsHidden) for f in log.filters):
            log.addFilter(QuotedRowsHidden())
        self.keyring = KeyRing([*self.config.api_keys, *secret_api_keys()])
        if not len(self.keyring):
            log.warning(
                "no API keys configured: every protected route answers 401; set "
                "%s or auth.keys in serve.yaml",
                API_KEYS_ENV,
            )
        # The store is opened now or, when it cannot be (a database not up yet), by the watcher
        # once it can; crisis answers never wait for it.
        # The reload lock makes a swap, and a /reload's announcement with it, one step for the
        # watcher (re-entrant: a /reload's swap takes it inside its own).
        self._reload_lock, self._opening = threading.RLock(), threading.Lock()
        self.audit, self._salt, self._store_problem = None, None, None
        # Why no store is open, when a caller should be told (a salt the store refuses).
        self.store_refusal: str | None = None
        # Why no store is open, for /readyz: a reason and a detail that holds no secret.
        self._store_reason: tuple[Reason, str | None] | None = None
        self._follow_failure = None
        self.engine = None
        # Set while this worker serves another version than the one the newest /reload
        # announced, which it could not load (a single reference: readers read it once).
        self.stale: StaleModel | None = None
        self._stale_announcement = None  # the id of the announcement it could not follow
        self._open_store()
        # Reloads other workers announced before this one started are already in the champion.
        self._reload_seen = self._latest_reload_id()
        # Without a catalog or a champion the service still starts: crisis answers need
        # neither (their resources are serve.yaml's). /readyz then says not ready, other
        # requests get 503 with the cause, and /reload can bring them.
        # ``load_reason``: the same cause, as /readyz names it.
        self.catalog, self.load_error, self.load_reason = None, None, None
        try:
            self.catalog = load_catalog()
        except Exception as error:  # noqa: BLE001 - a broken catalog must not stop crisis answers
            self.load_error = catalog_error(error)
            self.load_reason = Reason.CATALOG_UNREADABLE
            log.error("%s; serving crisis answers only until /reload loads it", self.load_error)
        if self.catalog is not None:
            try:
                self.engine = self._load_engine(catalog=self.catalog)
            except Exception as error:  # noqa: BLE001 - a bad champion must not stop crisis answers
                self.load_error = f"no model is loaded ({type(error).__name__}: {error})"
                self.load_reason = _no_model_reason(error)
                log.exception(
                    "the champion could not be loaded; serving crisis answers only until "
                    "/reload brings a model"
                )
        self.context_without_model = answer_context(self.config)
        self._start_watching()
        # The loaded libraries and model are hundreds of thousands of long-lived objects; kept
        # out of the cyclic collector, full collections no longer stall large batches. (Done
        # once: after /reload the old model must stay collectable.)
        gc.collect()
        gc.freeze()
        self._say_started()

    def _say_started(self) -> None:
        """One line at start: what is served, from where, and where answers are recorded
        (locations without passwords); why not, when no model is loaded."""
        from recommender.registry import tracking_uri

        registry = shown_location(tracking_uri())
        store = shown_location(str(self.config.audit_store))
        if self.engine is None:
            log.warning(
                "started without a model (registry %s; audit store %s): crisis answers only",
                registry,
                store,
            )
            return
        serving_version(self.engine.version)
        log.info(
            "serving model version %s from the registry %s; audit store %s",
            self.engine.version,
            registry,
            store,
        )

    def __is_ready__(self) -> bool:
        """/readyz: ready only with a model loaded and an audit store that can be written
        and answered its last check (crisis answers are given either way)."""
        return not self.not_ready()

    def not_ready(self) -> list[tuple[Reason, str | None]]:
        """Why ``/readyz`` says not ready, each cause as a reason and a detail that holds no
        secret (``None`` mostly); empty when ready. May wait a second for the store's check."""
        causes = []
        if self.engine is None:
            causes.append((self.load_reason or Reason.MODEL_NOT_LOADED, None))
        audit = self.audit
        if audit is None:
            causes.append(self._store_reason or (Reason.AUDIT_STORE_UNAVAILABLE, None))
        else:
            problem = audit.unwritable()
            if problem is not None:
                causes.append(problem)
        return causes

    def _open_store(self) -> bool:
        """Open the audit store if none is open yet and hand it to the served engine; whether
        one is open now.

        Called at start and by the watcher every ``reload_poll_seconds`` until it succeeds: a
        service started before its database gives crisis answers only until then, without a
        restart. Logged once per change (a new cause, the store opened), not once per try.
        """
        if self.audit is not None:
            return True
        with self._opening:  # one try at a time (the watcher, a test calling it meanwhile)
            return self.audit is not None or self._try_store()

    def _try_store(self) -> bool:
        config = self.config
        try:
            # Read again after the store refused it: a secrets folder's file may be corrected.
            if self._salt is None or self.store_refusal is not None:
                self._salt = resolve_salt(
                    config.audit_salt, config.models_dir, store=config.audit_store
                )
            audit = AuditLog(
                config.audit_store, salt=self._salt, durability=config.audit_durability
            )
        except Exception as error:  # noqa: BLE001 - crisis answers must not wait for the store
            problem = f"{type(error).__name__}: {error}"
            # A StoreRefusal names its reason; anything else is a surprise (the log has it).
            refused = isinstance(error, StoreRefusal)
            self._store_reason = (
                error.reason if refused else Reason.AUDIT_STORE_UNAVAILABLE,
                error.missing if isinstance(error, AuditPrivilegeMissing) else None,
            )
            self.store_refusal = None
            if isinstance(error, AuditSaltMismatch):
                self.store_refusal = (
                    f"the audit store was written with another audit salt than this "
                    f"service's; {error.remedy}"
                )
            elif refused and error.lasting:  # retrying alone will not help
                self.store_refusal = str(error)
            if problem != self._store_problem:
                self._store_problem = problem
                log.warning(
                    "the audit store could not be opened (%s): only crisis answers are given "
                    "(recorded in this log) until it can be; trying again every %g s",
                    problem,
                    config.reload_poll_seconds,
                    exc_info=not isinstance(error, InputError),  # a surprise: its traceback
                )
            return False
        # Under the reload lock: a /reload building an engine meanwhile gets this store too.
        with self._reload_lock:
            engine = self.engine
            if engine is not None:
                engine.audit = audit
            self.audit = audit  # a single reference swap: requests read it once
        self.store_refusal, self._store_reason = None, None
        if self._store_problem is not None:
            self._store_problem = None
            log.info("the audit store %r is open now: every answer is given again", audit)
        return True

    def _person_hash(self, person_id: str) -> str | None:
        """The audit store's hash of ``person_id`` (salted HMAC), also while no store is open;
        ``None`` only when no salt could be resolved. Never the raw id."""
        salt = self._salt
        return None if salt is None else salted_hash(salt, person_id)

    def _reload_champion(self, caller_role: str):
        """``/reload``: serve the registry's champion and announce it to the other workers in
        the audit store; returns ``(previous_version, engine, announced)``.

        One step under the reload lock, so that this worker's watcher reads the store before
        the swap or after the announcement, never between (see :meth:`_follow_once`). A load
        that fails raises, and the served model stays; an announcement that fails is logged
        and said (``announced`` false): the other workers keep their version.
        """
        with self._reload_lock:
            previous, engine = self._swap_in_champion()
            try:
                self._reload_seen = self.audit.announce_reload(engine.version, caller_role)
            except Exception:  # noqa: BLE001 - this worker serves the new version regardless
                log.exception(
                    "could not record the reload; other workers keep version %s until "
                    "their next /reload",
                    previous,
                )
                return previous, engine, False
        return previous, engine, True

    def _swap_in_champion(self, version: str | None = None):
        """Read the catalog file again, load the registry's champion (or ``version``) and serve
        both; returns ``(previous_version, engine)``. Either failing raises and changes nothing:
        the engine served, and the catalog it answers with, stay."""
        with self._reload_lock:
            previous = None if self.engine is None else self.engine.version
            catalog = self._read_catalog()
            try:
                engine = self._load_engine(version, catalog=catalog)
            except (ModelFilesMissing, ModelUnreadable) as error:
                # No retry mends these (unlike a registry down): /reload answers 409 with the
                # loader's message, which names the version and the missing file.
                raise ChampionUnloadable(error, reason=_no_model_reason(error)) from error
            self._serve(engine)
        return previous, engine

    def _swap_in_catalog(self, engine: RecommendationEngine) -> RecommendationEngine:
        """Serve ``engine``'s model under the catalog file as it is now (a follower of a
        /reload that kept the version): no download, nothing changed when the file is refused."""
        with self._reload_lock:
            model = getattr(engine.model, "wrapped", engine.model)  # as learnt, not renamed
            new = self._engine_for(model, engine.version, catalog=self._read_catalog())
            self._serve(new)
        return new

    def _read_catalog(self):
        """The catalog file, read and checked now; :class:`CatalogUnreadable` (naming each
        entry, field and value refused) when it does not load. While no engine is served, the
        failure is also the reason nothing is (``load_error``); otherwise the served engine and
        catalog stay and say nothing new."""
        from recommender.catalog import load_catalog

        try:
            return load_catalog()
        except Exception as error:  # noqa: BLE001 - said as the reason nothing loads
            said = catalog_error(error)
            if self.engine is None:
                self.load_error, self.load_reason = said, Reason.CATALOG_UNREADABLE
            raise CatalogUnreadable(said, catalog_problems(error)) from None

    def _serve(self, engine: RecommendationEngine) -> None:
        """Serve ``engine`` and its catalog (under the reload lock)."""
        self.engine = engine  # a single reference swap: atomic for readers
        # What answers without a model (crisis answers, outcome checks) read: the same catalog.
        self.catalog = engine.catalog
        serving_version(engine.version)
        self.load_error, self.load_reason, self.stale = None, None, None
        self._stale_announcement = None

    def _load_engine(self, version: str | None = None, *, catalog) -> RecommendationEngine:
        """The engine of the registry's champion, or of registered ``version``, under
        ``catalog`` (the service class says where they come from)."""
        raise NotImplementedError

    def _engine_for(self, model, version, *, catalog) -> RecommendationEngine:
        # An arm the catalog renamed is served with what the model learnt under its former id.
        served, renamed = served_under(model, catalog, version=version)
        try:
            engine = RecommendationEngine(
                served, version, catalog=catalog, config=self.config, audit=self.audit
            )
        except InputError as error:  # the champion exists but this service cannot serve it
            raise Unservable(
                f"the champion (version {version}) cannot be served: {error}"
            ) from None
        if engine.catalog_note is not None:  # served all the same: a person promoted it
            log.warning("%s", engine.catalog_note)
        if renamed is not None:  # said on the card beside any warning, and in the log
            log.info("%s", renamed)
            engine.catalog_note = "; and ".join(n for n in (engine.catalog_note, renamed) if n)
        return engine

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
            "/outcomes": (OutcomesRequest, tuple(OutcomesRequest.model_fields), {}),
            "/erasures": (ErasureRequest, tuple(ErasureRequest.model_fields), {}),
        }
