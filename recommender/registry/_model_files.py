"""Where a registered version's or a run's model files are read, and which one is missing.

A home moved or copied from another folder reads its own copy of the files the store records
in the original's artifact folder (see :mod:`recommender.registry._home`): the location read
for a version (:func:`model_version_source`, :func:`readable_uri`) or for a ``runs:/`` URI. When
the files cannot be loaded, the one found missing is named as the artifact store's path
(:func:`_missing_file`) in a :class:`~recommender.errors.ModelFilesMissing`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from recommender.errors import InputError, ModelFilesMissing
from recommender.registry._home import local_folder, local_location, moved_location
from recommender.registry._store import client

if TYPE_CHECKING:
    from recommender.registry._load import ModelRef

__all__ = ["model_version_source", "readable_uri"]


def _missing_file(error: BaseException, staged: Path, folder: Path | None) -> Path | None:
    """The file of the version's artifact ``folder`` whose absence made loading its copy in
    ``staged`` fail (``MLmodel``, the pickled model, the bundle it opens), or ``None`` when
    none is missing there. Said as the artifact store's path: the staging copy is gone by
    the time anyone reads the message."""
    if folder is None or not folder.is_dir():
        return None
    if not (folder / "MLmodel").is_file():
        return folder / "MLmodel"
    seen = set()
    while error is not None and id(error) not in seen:  # the error and what it wraps
        seen.add(id(error))
        name = getattr(error, "filename", None)
        if isinstance(error, FileNotFoundError) and name:
            with contextlib.suppress(ValueError):
                original = folder / Path(name).relative_to(staged)
                if not original.exists():
                    return original
        error = error.__cause__ or error.__context__
    return None


def _files_missing(ref: ModelRef, source: str, missing: Path, elsewhere: str):
    return ModelFilesMissing(
        f"version {ref.version} of {ref.name} is registered, but its files could not be read "
        f"from {source} ({missing} does not exist){elsewhere}: restore the artifact folder "
        "(from a backup; or point RECOMMENDER_HOME / MLFLOW_TRACKING_URI at the store it "
        "belongs with), or use another version (`recommender promote VERSION`, `recommender "
        "rollback`)",
        version=str(ref.version),
        missing=str(missing),
    )


def model_version_source(ref: ModelRef) -> tuple[str, str]:
    """Where registered version ``ref``'s files are: ``(recorded, read)``, the location the
    store records and the one this home reads, the same unless the home was moved or copied
    from another folder (then its own copy of the files, see :mod:`recommender.registry._home`).
    """
    recorded = client(existing=True).get_model_version_download_uri(ref.name, ref.version)
    return recorded, local_location(recorded)


def readable_uri(ref: ModelRef) -> str:
    """The URI MLflow loads ``ref`` from: ``ref.uri``, or for a registered version or a
    ``runs:/`` URI of a home moved or copied from another folder, this home's copy of its
    files.

    Raises
    ------
    ModelFilesMissing
        For a ``runs:/`` URI whose files are neither where the store records them (another
        home's folder) nor in this home's copy of it.
    """
    if ref.version is None:
        return _run_files(ref.uri) if ref.uri.startswith("runs:/") else ref.uri
    recorded, read = model_version_source(ref)
    return ref.uri if read == recorded else read


def _run_files(uri: str) -> str:
    """Where ``runs:/<run id>/<path>`` is read: the URI itself, unless the store records its
    files in another home's artifact folder (this home was moved or copied, and MLflow would
    read the original's); then this home's copy of them, else the original's while it exists.

    MLflow 3 keeps a model logged by a run apart from the run's other files (a logged model's
    folder, ``mlartifacts/models/m-...``): ``runs:/<run id>/model`` names that one first.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

    try:
        run_id, path = RunsArtifactRepository.parse_runs_uri(uri)
        mlflow_client = client(existing=True)
        run = mlflow_client.get_run(run_id)
        name, _, rest = (path or "").partition("/")
        models = mlflow_client.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"name = '{name}' AND source_run_id = '{run_id}'",
        )
    except (MlflowException, InputError):  # no such run: MLflow says so, as before
        return uri
    recorded = [_joined(model.artifact_location, rest) for model in models]
    recorded.append(_joined(run.info.artifact_uri, path or ""))
    for location in recorded:
        if moved_location(location) is None:
            return uri  # in this home, or not in a home's folder: read as recorded
        read = local_location(location)
        if local_folder(read).exists():
            return read
    here = moved_location(recorded[0])
    raise ModelFilesMissing(
        f"{uri} names files the store records in another home's artifact folder "
        f"({recorded[0]}), and they are not in this home's copy of that folder either "
        f"({here}): this home was moved or copied without them. Copy that run's files into "
        "this home's mlartifacts/ (or point RECOMMENDER_HOME / MLFLOW_TRACKING_URI at the "
        "store it belongs with), or use a registered version",
        version=None,
        missing=str(local_folder(here)),
    )


def _joined(location: str, path: str) -> str:
    return f"{location.rstrip('/')}/{path}" if path else location
