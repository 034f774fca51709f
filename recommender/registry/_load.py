"""Loading the one model artifact, by registry alias, version, run or path.

A registered version and a run's card are fetched with the store named on each call, without
MLflow's process-wide URIs, so the service's ``/reload`` and ``/model_card`` never wait for a
training run or for each other. Any other URI needs a :func:`mlflow_session`, and waits for one
at most ``READ_TIMEOUT`` seconds before :class:`~recommender.registry.StoreBusy` is raised.
Where a version's or a run's files are read (a home moved or copied reads its own copy), and
which one is missing when they do not load, is in :mod:`recommender.registry._model_files`.
"""

from __future__ import annotations

import contextlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from recommender._locations import shown_location
from recommender.errors import InputError, ModelUnavailable, ModelUnreadable
from recommender.registry._aliases import CHAMPION, registered_versions
from recommender.registry._home import local_folder, local_location, moved_location
from recommender.registry._model_files import (
    _files_missing,
    _missing_file,
    model_version_source,
    readable_uri,
)
from recommender.registry._pending import committed_holder
from recommender.registry._store import MODEL_NAME, _quiet, client, mlflow_session, tracking_uri

__all__ = [
    "ModelRef",
    "resolve_model",
    "run_tags",
    "TrainedVersion",
    "versions_trained_by",
    "load_model",
    "load_champion",
    "load_pyfunc",
    "fetch_card",
]

# Seconds a read waits for another thread's MLflow session before giving up with StoreBusy.
READ_TIMEOUT = 30.0

# MLflow's error codes for a registered model, version or alias that does not exist.
_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")

_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class ModelRef:
    """A model named by the user, resolved against the registry when it is a registered one."""

    uri: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None


def resolve_model(model: str) -> ModelRef:
    """Resolve ``model`` to a loadable URI and, for registered models, its version and run.

    Parameters
    ----------
    model : str
        ``models:/burnout-recommender@champion``, ``models:/burnout-recommender/3``, the short
        forms ``champion`` / ``challenger`` / ``3`` (the project's registered model), or any
        URI or path MLflow can load (``runs:/<id>/model``, ``models:/<model_id>``, a folder).
        Registry forms are tried first; a bare name is a folder only when no alias or
        version of that name exists.
    """
    _quiet()
    from mlflow.exceptions import MlflowException

    given = str(model).strip()
    # Registry forms first: a folder that happens to be called ``champion`` in the working
    # directory must not shadow the champion (write ``./champion`` to mean the folder).
    short = bool(given.isdigit() or re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", given))
    text = given
    if given.isdigit():
        text = f"models:/{MODEL_NAME}/{given}"
    elif short:
        text = f"models:/{MODEL_NAME}@{given}"
    match = _REGISTRY_URI.match(text)
    if not match:
        return ModelRef(uri=given)
    name = match["name"]
    mlflow_client = client(existing=True)
    try:
        if match["alias"]:
            found = mlflow_client.get_model_version_by_alias(name, match["alias"])
            # While a registration is unfinished, the alias still names its earlier holder.
            holder = committed_holder(found, match["alias"])
            if holder != str(found.version):
                found = None if holder is None else mlflow_client.get_model_version(name, holder)
        else:
            found = mlflow_client.get_model_version(name, match["version"])
    except MlflowException as error:
        found = None
        if error.error_code not in _NOT_FOUND:  # the store, not the name: locked, unreachable
            first = str(error).strip().splitlines()[0][:200]
            raise ModelUnavailable(
                f"the MLflow store at {shown_location(mlflow_client.tracking_uri)} could not be read to find "
                f"{model!r} ({first}): another program may hold it locked, or its server is "
                "down; nothing was changed, try again"
            ) from None
    if found is None:
        if short and Path(given).exists():  # no such alias or version: the folder is meant
            return ModelRef(uri=given)
        numbers, held = registered_versions(mlflow_client, name)
        raise InputError(
            f"no registered model version matches {model!r} in the store at "
            f"{shown_location(mlflow_client.tracking_uri)}; accepted: a registered version "
            f"number ({numbers}), "
            f"an alias ({held or 'none set'}), a models:/ or runs:/ URI, or a model folder"
        )
    return ModelRef(
        uri=f"models:/{name}/{found.version}",
        name=name,
        version=str(found.version),
        run_id=found.run_id,
    )


def run_tags(run_id: str) -> dict[str, str]:
    """The tags of training run ``run_id`` (``{}`` for a run the store no longer has)."""
    from mlflow.exceptions import MlflowException

    try:
        return dict(client(existing=True).get_run(run_id).data.tags)
    except MlflowException:
        return {}


@dataclass(frozen=True)
class TrainedVersion:
    """A registered version as its training run and its gate left it."""

    version: str
    run_id: str
    started: str  # when its training run started, "YYYY-MM-DD HH:MM UTC"
    gate_passed: bool | None
    gate_reason: str
    # the champion its gate compared with ("none": there was none; None: not recorded)
    gate_champion: str | None
    params: dict


def versions_trained_by(tag: str, value: str, *, name: str = MODEL_NAME) -> list[TrainedVersion]:
    """The registered versions of ``name`` whose training run has ``tag`` set to ``value``,
    oldest first; a version whose registration has not finished is left out.

    Raises
    ------
    InputError
        When there is no store yet (see :func:`~recommender.registry.client`).
    """
    import datetime

    from mlflow.exceptions import MlflowException

    from recommender.registry._pending import is_pending

    mlflow_client = client(existing=True)
    try:
        registered = {
            str(v.run_id): v
            for v in mlflow_client.search_model_versions(f"name = '{name}'")
            if not is_pending(v)
        }
    except MlflowException:  # no such model yet
        return []
    if not registered:
        return []
    experiments = [e.experiment_id for e in mlflow_client.search_experiments()]
    quoted = value.replace("'", "")
    runs = mlflow_client.search_runs(
        experiments, filter_string=f"tags.`{tag}` = '{quoted}'", max_results=1000
    )
    found = []
    for run in runs:
        version = registered.get(run.info.run_id)
        if version is None:
            continue
        tags = version.tags or {}
        passed = tags.get("gate.passed")
        started = datetime.datetime.fromtimestamp(run.info.start_time / 1000, datetime.timezone.utc)
        found.append(
            TrainedVersion(
                version=str(version.version),
                run_id=run.info.run_id,
                started=started.strftime("%Y-%m-%d %H:%M UTC"),
                gate_passed=None if passed is None else passed == "true",
                gate_reason=tags.get("gate.reason", ""),
                gate_champion=tags.get("gate.champion"),
                params=dict(run.data.params),
            )
        )
    return sorted(found, key=lambda v: int(v.version))


def load_pyfunc(model: str, *, timeout: float | None = READ_TIMEOUT):
    """The MLflow pyfunc model for ``model`` (see :func:`resolve_model` for accepted forms).

    A registered version is downloaded from the store by a per-call URI and needs no session;
    any other URI waits at most ``timeout`` seconds (``None``: for ever) for the session.

    Raises
    ------
    StoreBusy
        When another thread's MLflow session outlasts ``timeout`` (unregistered URIs only).
    """
    ref = resolve_model(model)
    _quiet()
    if ref.version is None:
        from mlflow.exceptions import MlflowException

        source = readable_uri(ref)  # a home moved or copied: its own copy of a run's model
        with mlflow_session(timeout=timeout) as mlflow, _installed_code_first():
            try:
                return mlflow.pyfunc.load_model(source)
            except (MlflowException, OSError, ImportError) as error:
                raise InputError(
                    f"no registered model version, run or model folder matches {model!r} "
                    f"({error}); accepted: a version number or alias of the store at "
                    f"{shown_location(tracking_uri())} (e.g. 3, champion), models:/{MODEL_NAME}@champion, "
                    "runs:/<run id>/model or a folder holding an MLmodel file"
                ) from None
    import tempfile

    import mlflow.artifacts
    import mlflow.pyfunc

    from recommender._files import no_space

    from mlflow.exceptions import MlflowException

    uri = tracking_uri()
    _, source = model_version_source(ref)
    folder = local_folder(source)  # None: an artifact store elsewhere (s3://, a server)
    with tempfile.TemporaryDirectory(prefix="recommender-model-") as staging:
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=staging, tracking_uri=uri, registry_uri=uri
            )
        except (MlflowException, OSError) as error:
            first = str(error).strip().splitlines()[-1][:200]
            here = moved_location(source)
            elsewhere = (
                f"; they are not in this home's copy of that folder either ({here}): this "
                "home was moved or copied without them"
                if here is not None
                else ""
            )
            if folder is not None and not folder.exists():
                raise _files_missing(ref, source, folder, elsewhere) from None
            if no_space(error):
                raise ModelUnavailable(
                    _no_room(f"the files of version {ref.version} of {ref.name}", staging, first)
                ) from None
            raise ModelUnavailable(
                f"version {ref.version} of {ref.name} is registered, but its files could not "
                f"be read from {source} ({type(error).__name__}: {first}){elsewhere}: restore "
                "the artifact folder (or point RECOMMENDER_HOME / MLFLOW_TRACKING_URI at the "
                "store it belongs with), or use another version"
            ) from None
        # load_context reads the joblib bundle now, so the staging folder may go afterwards.
        with _installed_code_first():
            try:
                return mlflow.pyfunc.load_model(local)
            except Exception as error:  # noqa: BLE001 - any failure: this release cannot read it
                missing = _missing_file(error, Path(local), folder)
                if missing is not None:
                    raise _files_missing(ref, source, missing, "") from None
                first = (str(error).strip().splitlines() or [""])[-1][:200]
                raise ModelUnreadable(
                    f"version {ref.version} of {ref.name} is registered and its files were "
                    f"found, but this release could not load them ({type(error).__name__}: "
                    f"{first}): they were written in a model format this release does not "
                    "read (a much older or newer release's) or are damaged. Use another version "
                    "(`recommender promote VERSION`, `recommender rollback`) or train a new one "
                    "(`recommender train`); the version's card and run stay readable"
                ) from error


def _no_room(what: str, staging, error) -> str:
    """A copy out of the artifact store that a full disk stopped: the store is not at fault
    (its files are there), the temporary folder's disk is."""
    return (
        f"{what} could not be copied into the temporary folder {staging}: no space left on the "
        f"device holding it ({error}); free space there (or set TMPDIR to a folder on a disk "
        "with room) and run again"
    )


def require_loadable(name: str, version: str, *, action: str):
    """Load version ``version`` of ``name`` as the service would, or refuse ``action``;
    returns the :class:`~recommender.model.RecommendationModel` loaded.

    Called before ``champion`` moves: an alias on a version whose files are gone makes the
    running service's ``/reload`` answer 409 and leaves its next start without a model.

    Raises
    ------
    ModelUnavailable
        Naming ``action`` (e.g. "make version 3 the champion"), where the files should be and
        what to do; nothing has been changed.
    """
    try:
        return load_model(f"models:/{name}/{version}")
    except ModelUnavailable as error:
        raise ModelUnavailable(
            f"refusing to {action}: {error}. The aliases and the promotion log are unchanged; "
            "--force does not override this (it accepts a version the gate judged worse, not "
            "one the service cannot load: /reload would answer 409 and the next start would "
            "have no model)"
        ) from None


@contextlib.contextmanager
def _installed_code_first():
    """Load without leaving the model's copy of the project on ``sys.path``.

    The model carries the project's code for environments that lack it; MLflow prepends that
    copy to ``sys.path`` for good. Here the project is installed and already running, so a
    module imported later must come from the installed project, not from the copy of whatever
    version trained the model (nor from a staging folder deleted after loading).
    """
    saved = list(sys.path)
    try:
        yield
    finally:
        sys.path[:] = saved


def load_model(model: str, *, timeout: float | None = READ_TIMEOUT):
    """The :class:`~recommender.model.RecommendationModel` inside a logged pyfunc model.

    Parameters
    ----------
    model : str
        E.g. ``models:/burnout-recommender@champion`` (see :func:`resolve_model`).

    Returns
    -------
    RecommendationModel
    """
    return load_pyfunc(model, timeout=timeout).unwrap_python_model().model


def load_champion(name: str = MODEL_NAME):
    """The current champion and its version: ``(RecommendationModel, version)``.

    Raises
    ------
    InputError
        When no version holds the ``champion`` alias yet.
    """
    ref = resolve_model(f"models:/{name}@{CHAMPION}")
    return load_model(ref.uri), ref.version


def fetch_card(model: str, out) -> Path:
    """Copy the model card logged with ``model``'s training run into folder ``out``.

    The card is the one written when the version was registered (the auditable record), not a
    re-rendering.

    Raises
    ------
    InputError
        When ``model`` is not a registered version or its run has no card.
    """
    import contextlib
    import functools
    import shutil
    import tempfile

    from recommender._files import no_space, write_together
    from recommender.card import card_files

    ref = resolve_model(model)
    if ref.run_id is None:
        raise InputError(
            f"{model!r} is not a registered version with a training run; cards "
            "exist for registered versions (e.g. models:/burnout-recommender/3)"
        )
    out = Path(out)
    _quiet()
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    uri = tracking_uri()
    with tempfile.TemporaryDirectory(prefix="recommender-card-") as staging:
        try:
            # The store named per call: no session, so no wait for a training run's.
            recorded = client(existing=True).get_run(ref.run_id).info.artifact_uri
            here = local_location(recorded)
            card = (
                {"run_id": ref.run_id, "artifact_path": "card"}
                if here == recorded
                else {"artifact_uri": f"{here}/card"}  # this home's copy of a moved home's
            )
            local = mlflow.artifacts.download_artifacts(
                **card, dst_path=staging, tracking_uri=uri, registry_uri=uri
            )
        except (MlflowException, OSError) as error:
            if no_space(error):
                raise InputError(_no_room(f"the card of {ref.uri}", staging, error)) from None
            raise InputError(
                f"the run {ref.run_id} of {ref.uri} has no model card: {error}"
            ) from None
        # A card is one record, written whole or not at all (a full disk leaves the earlier
        # card as it was): none of an earlier card's plots stays beside this version's text.
        # Other files in the folder are the user's.
        local = Path(local)
        files = {out / path.relative_to(local): path for path in local.rglob("*")}
        files = {target: path for target, path in files.items() if path.is_file()}
        write_together(
            {target: functools.partial(shutil.copyfile, path) for target, path in files.items()},
            stale=[path for path in card_files(out) if path not in files],
        )
        with contextlib.suppress(OSError):
            (out / "plots").rmdir()  # only if empty
    return out
