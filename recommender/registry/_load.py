"""Loading the one model artifact, by registry alias, version, run or path."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from recommender.errors import InputError
from recommender.registry._aliases import CHAMPION
from recommender.registry._store import MODEL_NAME, client, mlflow_session

__all__ = ["ModelRef", "resolve_model", "load_model", "load_champion", "load_pyfunc",
           "fetch_card"]

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
    mlflow_client = client()
    try:
        if match["alias"]:
            found = mlflow_client.get_model_version_by_alias(name, match["alias"])
        else:
            found = mlflow_client.get_model_version(name, match["version"])
    except MlflowException:
        if short and Path(given).exists():  # no such alias or version: the folder is meant
            return ModelRef(uri=given)
        raise InputError(f"no registered model version matches {model!r} in the store at "
                         f"{mlflow_client.tracking_uri}") from None
    return ModelRef(uri=f"models:/{name}/{found.version}", name=name,
                    version=str(found.version), run_id=found.run_id)


def load_pyfunc(model: str):
    """The MLflow pyfunc model for ``model`` (see :func:`resolve_model` for accepted forms)."""
    ref = resolve_model(model)
    with mlflow_session() as mlflow:
        return mlflow.pyfunc.load_model(ref.uri)


def load_model(model: str):
    """The :class:`~recommender.model.RecommendationModel` inside a logged pyfunc model.

    Parameters
    ----------
    model : str
        E.g. ``models:/burnout-recommender@champion`` (see :func:`resolve_model`).

    Returns
    -------
    RecommendationModel
    """
    return load_pyfunc(model).unwrap_python_model().model


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
    import shutil
    import tempfile

    ref = resolve_model(model)
    if ref.run_id is None:
        raise InputError(f"{model!r} is not a registered version with a training run; cards "
                         "exist for registered versions (e.g. models:/burnout-recommender/3)")
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="recommender-card-") as staging, \
            mlflow_session() as mlflow:
        from mlflow.exceptions import MlflowException

        try:
            local = mlflow.artifacts.download_artifacts(run_id=ref.run_id, artifact_path="card",
                                                        dst_path=staging)
        except (MlflowException, OSError) as error:
            raise InputError(f"the run {ref.run_id} of {ref.uri} has no model card: "
                             f"{error}") from None
        out.mkdir(parents=True, exist_ok=True)
        shutil.copytree(local, out, dirs_exist_ok=True)
    return out
