"""Where MLflow keeps runs, models and artifacts, resolved when asked and never at import.

``MLFLOW_TRACKING_URI`` wins, unchanged (a tracking server, PostgreSQL behind it), and such a
shared store keeps its own artifact root. Otherwise the embedded default is a SQLite file
``<models_dir>/mlflow.db`` with artifacts under ``<models_dir>/mlartifacts``. MLflow itself is
imported lazily, after its telemetry has been switched off, so that importing this package stays
cheap and silent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from urllib.parse import urlparse

from recommender.paths import models_dir

__all__ = ["tracking_uri", "artifact_location", "mlflow_session", "client", "ensure_experiment",
           "MODEL_NAME", "EXPERIMENT_NAME"]

MODEL_NAME = "burnout-recommender"
EXPERIMENT_NAME = "burnout-recommender"

# Stores in a file on this machine, the only ones whose experiments may keep their artifacts
# in a folder on this machine: a database or tracking server is shared, and a path under our
# models/ would be one the other machines cannot read. "" is a bare path.
_LOCAL_STORE_SCHEMES = ("", "file", "sqlite")

# MLflow keeps its tracking and registry URIs in module globals (and exports them to the
# environment), so a session owns them for the whole process while it lasts. Re-entrant: a
# training run's own thread loads the champion inside the run's session.
_SESSION_LOCK = threading.RLock()


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
    return f"sqlite:///{(models_dir() / 'mlflow.db').resolve().as_posix()}"


def artifact_location() -> str | None:
    """Artifact root for a new experiment: ``<models_dir>/mlartifacts`` for a store in a file.

    Returns
    -------
    str or None
        A ``file:`` URI when :func:`tracking_uri` is SQLite (the embedded default or another
        ``sqlite:///`` file) or a ``file:`` store; ``None`` for any other store (PostgreSQL,
        MySQL, a tracking server, Databricks), which then applies its own default artifact
        root (a server's ``--default-artifact-root``, say).
    """
    if _store_scheme(tracking_uri()) not in _LOCAL_STORE_SCHEMES:
        return None
    return _artifact_folder().as_uri()


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
def mlflow_session():
    """Point MLflow's fluent API at :func:`tracking_uri` for the duration of the block.

    The previous URIs are restored afterwards, so a caller's own MLflow setup is left alone.
    MLflow's URIs are process-wide, so a session in another thread waits until this one ends
    (a session nested in the same thread does not); enter and leave it in the same thread, and
    do not wait inside it for another thread that opens a session. MLflow 3.17 offers no
    per-call URI for logging a model or loading a ``models:/`` URI (its models artifact
    repository resolves names through the global registry URI), so the global it must be;
    everything that only talks to the store uses :func:`client` and needs no session.

    Yields
    ------
    module
        The imported ``mlflow`` module.
    """
    _quiet()
    with _SESSION_LOCK:
        # Resolved under the lock: another thread's session exports its URI to the environment.
        uri = tracking_uri()
        if uri.startswith("sqlite:///") and "MLFLOW_TRACKING_URI" not in os.environ:
            models_dir().mkdir(parents=True, exist_ok=True)
        import mlflow
        from mlflow.tracking import _model_registry, _tracking_service

        # set_tracking_uri also exports MLFLOW_TRACKING_URI; restore both the globals and the
        # environment so nothing leaks past the block (tests switch RECOMMENDER_HOME between
        # runs).
        saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        saved_tracking = _tracking_service.utils._tracking_uri
        saved_registry = _model_registry.utils._registry_uri
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            yield mlflow
        finally:
            _tracking_service.utils._tracking_uri = saved_tracking
            _model_registry.utils._registry_uri = saved_registry
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def client():
    """An ``MlflowClient`` on :func:`tracking_uri` for tracking and registry alike."""
    _quiet()
    uri = tracking_uri()
    if uri.startswith("sqlite:///") and "MLFLOW_TRACKING_URI" not in os.environ:
        models_dir().mkdir(parents=True, exist_ok=True)
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
    if location is not None:
        _artifact_folder().mkdir(parents=True, exist_ok=True)
    # Without the kind tag MLflow 3's UI opens a new experiment on its GenAI overview; this one
    # holds training runs, so it opens on them and runs sit side by side.
    return mlflow_client.create_experiment(
        name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: "custom_model_development"})
