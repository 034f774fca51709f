"""Where MLflow keeps runs, models and artifacts, resolved when asked and never at import.

``MLFLOW_TRACKING_URI`` wins, unchanged. Otherwise the embedded default is a SQLite file
``<models_dir>/mlflow.db`` with artifacts under ``<models_dir>/mlartifacts``. Where a new
experiment keeps its artifacts depends on the store:

* a SQLite file or a ``file:`` store (this machine only): ``<models_dir>/mlartifacts``;
* a tracking server (``http(s)://``) or Databricks: the server's own artifact root;
* a database reached directly (``postgresql://``, ``mysql://``, ``mssql://`` ...): the root named
  by ``RECOMMENDER_ARTIFACT_ROOT`` (e.g. ``s3://bucket/mlflow`` or a folder every machine
  mounts), which must be set; MLflow's own fallback would be ``./mlruns`` in the trainer's
  current folder, which no other machine can read. Alternatively run ``mlflow server
  --backend-store-uri <database> --artifacts-destination <root>`` and point
  ``MLFLOW_TRACKING_URI`` at its ``http://`` address.

A SQLite store is created only by a client that writes, never by one that reads (see
:mod:`recommender.registry._sqlite`). A home moved or copied elsewhere reads and writes its own
artifact folder, not the original's (see :mod:`recommender.registry._home`).

MLflow itself is imported lazily, after its telemetry has been switched off, so that importing
this package stays cheap and silent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from urllib.parse import urlparse

from recommender.errors import InputError
from recommender.paths import models_dir
from recommender.registry._sqlite import (
    check_sqlite_store,
    require_sqlite_store,
    set_up_sqlite_store,
    sqlite_uri,
)

__all__ = [
    "tracking_uri",
    "artifact_location",
    "mlflow_session",
    "client",
    "ensure_experiment",
    "StoreBusy",
    "few_retries",
    "MODEL_NAME",
    "EXPERIMENT_NAME",
    "ARTIFACT_ROOT_ENV",
]

MODEL_NAME = "burnout-recommender"
EXPERIMENT_NAME = "burnout-recommender"

# Stores in a file on this machine, the only ones whose experiments may keep their artifacts
# in a folder on this machine: a database or tracking server is shared, and a path under our
# models/ would be one the other machines cannot read. "" is a bare path.
_LOCAL_STORE_SCHEMES = ("", "file", "sqlite")
# Stores that decide the artifact root themselves (a tracking server, Databricks).
_SERVER_STORE_SCHEMES = ("http", "https", "databricks")

# The artifact root for a store that is a database reached directly (PostgreSQL, MySQL, ...).
ARTIFACT_ROOT_ENV = "RECOMMENDER_ARTIFACT_ROOT"

# MLflow keeps its tracking and registry URIs in module globals (and exports them to the
# environment), so a session owns them for the whole process while it lasts. Re-entrant: a
# training run's own thread loads the champion inside the run's session.
_SESSION_LOCK = threading.RLock()


class StoreBusy(RuntimeError):
    """Another thread held the MLflow session longer than a caller was willing to wait."""


def tracking_uri() -> str:
    """The MLflow tracking (and registry) URI in force.

    Returns
    -------
    str
        ``MLFLOW_TRACKING_URI`` when set, unchanged; else ``sqlite:///<models_dir>/mlflow.db``.
    """
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    # SQLAlchemy percent-decodes the database part of the URL and cuts it at "?": quote those
    # two so that a RECOMMENDER_HOME holding "%41" names the very folder it says. Nothing else
    # is quoted: MLflow also creates the URL's path as given, so a space quoted as "%20" would
    # leave an empty "my%20home" folder beside the real one.
    return sqlite_uri((models_dir() / "mlflow.db").resolve())


def artifact_location() -> str | None:
    """Artifact root for a new experiment, by the kind of store :func:`tracking_uri` names.

    Returns
    -------
    str or None
        A ``file:`` URI of ``<models_dir>/mlartifacts`` for a SQLite file (the embedded default
        or another ``sqlite:///`` file) or a ``file:`` store; ``None`` for a tracking server or
        Databricks, which applies its own artifact root; ``RECOMMENDER_ARTIFACT_ROOT`` for a
        database reached directly (PostgreSQL, MySQL, SQL Server, ...).

    Raises
    ------
    InputError
        For a database reached directly when ``RECOMMENDER_ARTIFACT_ROOT`` is not set: MLflow
        would put the artifacts in ``./mlruns`` of whatever folder the trainer runs in.
    """
    uri = tracking_uri()
    scheme = _store_scheme(uri)
    if scheme in _LOCAL_STORE_SCHEMES:
        return _artifact_folder().as_uri()
    if scheme in _SERVER_STORE_SCHEMES:
        return None
    root = os.environ.get(ARTIFACT_ROOT_ENV, "").strip()
    if root:
        return root
    raise InputError(
        f"MLFLOW_TRACKING_URI names a database reached directly ({scheme}://...), which keeps "
        f"no artifacts itself; set {ARTIFACT_ROOT_ENV} to an artifact root every machine can "
        "read (e.g. s3://bucket/mlflow, gs://..., or a shared folder as file:///...), or run "
        "`mlflow server --backend-store-uri <database> --artifacts-destination <root>` and set "
        "MLFLOW_TRACKING_URI to its http(s):// address"
    )


def _artifact_folder() -> Path:
    return (models_dir() / "mlartifacts").resolve()


def _store_scheme(uri: str) -> str:
    """``postgresql`` for ``postgresql+psycopg2://...``; ``""`` for a path, Windows ones too."""
    if uri == "databricks":  # MLflow's name for the default Databricks workspace, not a path
        return "databricks"
    scheme = urlparse(uri).scheme.lower().split("+", 1)[0]
    return "" if len(scheme) == 1 else scheme


def _quiet() -> None:
    # Set before mlflow is first imported: its telemetry client is configured at import.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # Against a tracking server MLflow prints "View run ... at: <url>" on stdout as each run
    # ends, into the output `train --quiet` keeps to its one result line; `train` says the
    # server's address itself.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    for name in ("mlflow", "alembic", "alembic.runtime.migration", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def quiet_pyfunc_logger():
    """Silence ``mlflow.pyfunc``'s advice for the duration of a call that does not need it.

    Logging our pyfunc (it holds no state, so the cloudpickle warning does not apply) and building
    the Spark UDF with ``env_manager="local"`` (executors share the driver's environment, so the
    advice to rebuild it with conda does not apply) would otherwise only confuse a reader.
    """
    logger = logging.getLogger("mlflow.pyfunc")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def mlflow_session(*, timeout: float | None = None):
    """Point MLflow's fluent API at :func:`tracking_uri` for the duration of the block.

    Parameters
    ----------
    timeout : float, optional
        Seconds to wait for another thread's session to end; ``None`` (the default) waits as
        long as it takes.

    Raises
    ------
    StoreBusy
        When another thread still holds its session after ``timeout`` seconds.

    The previous URIs are restored afterwards, so a caller's own MLflow setup is left alone.
    MLflow's URIs are process-wide, so a session in another thread waits until this one ends
    (a session nested in the same thread does not); enter and leave it in the same thread, and
    do not wait inside it for another thread that opens a session. MLflow 3.17 offers no
    per-call URI for logging a model or loading a ``models:/`` URI (its models artifact
    repository resolves names through the global registry URI), so the global it must be;
    everything that only talks to the store uses :func:`client` and needs no session, and so do
    the service's reads (a registered version and a run's card are downloaded by a per-call
    URI, see :mod:`recommender.registry._load`).

    Yields
    ------
    module
        The imported ``mlflow`` module.
    """
    _quiet()
    if timeout is None:
        _SESSION_LOCK.acquire()
    elif not _SESSION_LOCK.acquire(timeout=max(float(timeout), 0.0)):
        raise StoreBusy(
            f"the MLflow session is held by another thread (a training run or a "
            f"model download, say) and was not free within {timeout:g} s; "
            "retry later"
        )
    try:
        # Resolved under the lock: another thread's session exports its URI to the environment.
        uri = tracking_uri()
        if uri.startswith("sqlite:///") and "MLFLOW_TRACKING_URI" not in os.environ:
            models_dir().mkdir(parents=True, exist_ok=True)
        check_sqlite_store(uri)
        import mlflow

        # set_tracking_uri also exports MLFLOW_TRACKING_URI; restore the environment so
        # nothing leaks past the block (tests switch RECOMMENDER_HOME between runs).
        saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        try:
            mlflow.set_tracking_uri(uri)
            mlflow.set_registry_uri(uri)
            yield mlflow
        finally:
            try:
                # Back to no URI set in the process (MLflow's public setters take None for
                # that; its private globals are not ours to save), then the environment as it
                # was: MLflow resolves an unset URI from it, so an outer session's URI, or a
                # caller's own set_tracking_uri (which exported its URI), is found again.
                mlflow.set_tracking_uri(None)
                mlflow.set_registry_uri(None)
            finally:
                for key, value in saved_env.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
    finally:
        _SESSION_LOCK.release()


@contextlib.contextmanager
def few_retries():
    """For the block, MLflow tries a tracking server's request twice, 1 s apart, instead of
    its default 7 times over about 4 minutes (a caller's own settings win)."""
    defaults = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
    saved = {key: os.environ.get(key) for key in defaults}
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)


def client(*, existing: bool = False):
    """An ``MlflowClient`` on :func:`tracking_uri` for tracking and registry alike.

    ``existing=True`` (reading or moving what was registered: resolving a model, promoting,
    rolling back) refuses, by name, a SQLite store whose file does not exist (instead of letting
    MLflow create an empty one wherever a mistyped ``RECOMMENDER_HOME`` points) or is not set up
    yet, and never creates or migrates one. Otherwise (a training run writing) a SQLite store
    is set up first, holding the store's lock, and a home's store copied or moved from another
    folder is made to name this home's artifact folder (:mod:`recommender.registry._home`).
    Other stores (a database, a server, ``file:``) are left to MLflow.
    """
    _quiet()
    uri = tracking_uri()
    if existing:
        require_sqlite_store(uri)
    else:
        set_up_sqlite_store(uri, artifact_root=_artifact_folder().as_uri())
        # Imported here: that module imports this one.
        from recommender.registry._home import adopt_moved_home

        adopt_moved_home(uri)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


EXPERIMENT_KIND_TAG = "mlflow.experimentKind"


def ensure_experiment(name: str = EXPERIMENT_NAME) -> str:
    """The id of experiment ``name``, created with :func:`artifact_location` if missing."""
    mlflow_client = client()
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = artifact_location()
    if location is not None and location == _artifact_folder().as_uri():
        _artifact_folder().mkdir(parents=True, exist_ok=True)  # a shared root is not ours to make
    from mlflow.exceptions import MlflowException

    try:
        # Without the kind tag MLflow 3's UI opens a new experiment on its GenAI overview; this
        # one holds training runs, so it opens on them and runs sit side by side.
        return mlflow_client.create_experiment(
            name,
            artifact_location=location,
            tags={EXPERIMENT_KIND_TAG: "custom_model_development"},
        )
    except MlflowException as error:
        # Two first training runs: the other one created it since the look above.
        experiment = mlflow_client.get_experiment_by_name(name)
        if error.error_code != "RESOURCE_ALREADY_EXISTS" or experiment is None:
            raise
        return experiment.experiment_id
