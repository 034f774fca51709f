"""Loading the one model artifact, by registry alias, version, run or path."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from recommender.errors import InputError
from recommender.registry._aliases import CHAMPION
from recommender.registry._store import MODEL_NAME, client, mlflow_session

__all__ = ["ModelRef", "resolve_model", "load_model", "load_champion", "load_pyfunc"]

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
    """
    from mlflow.exceptions import MlflowException

    text = str(model).strip()
    if Path(text).exists():
        return ModelRef(uri=text)
    if text.isdigit():
        text = f"models:/{MODEL_NAME}/{text}"
    elif re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", text):
        text = f"models:/{MODEL_NAME}@{text}"
    match = _REGISTRY_URI.match(text)
    if not match:
        return ModelRef(uri=text)
    name = match["name"]
    mlflow_client = client()
    try:
        if match["alias"]:
            found = mlflow_client.get_model_version_by_alias(name, match["alias"])
        else:
            found = mlflow_client.get_model_version(name, match["version"])
    except MlflowException:
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
