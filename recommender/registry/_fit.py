"""Whether a version about to become the champion fits what will serve it.

Checked by ``promote`` and ``rollback`` (a training run's gate judges its own version): a
version trained under another intervention catalog than the installed one, or needing request
fields the champion it replaces does not, becomes the champion only with ``--force``, and the
promotion log records what was overridden (:attr:`PromotionEvent.overrides`). The champion
already serving is described by :func:`champion_concerns`, for ``recommender champions`` and
``recommender serve``.
"""

from __future__ import annotations

from recommender.errors import InputError

__all__ = ["misfits", "refuse_misfits", "champion_concerns", "run_concern"]


def misfits(model, version: str, champion: str | None, *, name: str) -> list[dict]:
    """What keeps ``model`` (registered ``version``) from fitting the service that would serve
    it instead of ``champion``: ``[{"code", "statement", ...}]``, empty when it fits."""
    from recommender.catalog import load_catalog
    from recommender.model import catalog_difference, new_request_fields, served_under
    from recommender.registry._load import load_model

    found = []
    catalog = load_catalog()
    installed = catalog.version
    # As the service would serve it: an arm the catalog renamed, under its id in force.
    said = catalog_difference(served_under(model, catalog)[0], installed, version=version)
    if said is not None:
        found.append(
            {
                "code": "catalog",
                "statement": said,
                "trained": str(model.catalog_version),
                "installed": str(installed),
            }
        )
    if champion is None or str(champion) == str(version):
        return found
    try:
        served, against = load_model(f"models:/{name}/{champion}"), f"version {champion}"
    except Exception:  # noqa: BLE001 - the champion's files gone: the data contract is the floor
        served, against = None, f"the data contract (version {champion} could not be read)"
    fields = new_request_fields(model, served)
    if fields:
        found.append(
            {
                "code": "request_fields",
                "statement": (
                    f"version {version} needs request fields that {against}, the champion now, "
                    f"does not take: {', '.join(fields)}. Once it serves (after POST /reload or "
                    "a restart), every profile without them (/recommend, each /recommend_batch "
                    "entry, /allocate) is refused 422 naming the field until the callers send "
                    "them; a profile flagged crisis_risk is answered with crisis resources "
                    "all the same"
                ),
                "fields": fields,
            }
        )
    return found


def refuse_misfits(found: list[dict], *, action: str, force_with: str) -> None:
    """Refuse ``action`` naming every misfit (``force_with``: the command that overrides)."""
    if not found:
        return
    raise InputError(
        f"refusing to {action}: "
        + "; and ".join(f["statement"] for f in found)
        + f". To serve it all the same, as a considered decision: {force_with} (the "
        "promotion log records what --force overrode, with the reason). The aliases and the "
        "promotion log are unchanged"
    )


def champion_concerns(name: str, *, mlflow_client) -> list[str]:
    """What is wrong with the registry's champion as it stands, one sentence each (empty when
    nothing is): its training run deleted, no recorded change making it the champion, a
    catalog other than the installed one (the version's ``catalog.version`` tag, then the
    model itself, loaded only then, says what its answers take from which), or arms the
    installed catalog offers that it never learnt (its MLmodel file's arms, then the model).
    The model is judged as the service serves it (:func:`recommender.model.served_under`): an
    arm the catalog renamed is its learnt arm under the new id, and the rename is said, as on
    the served card."""
    from recommender.catalog import load_catalog
    from recommender.model import (
        arms_not_learnt,
        catalog_difference,
        renamed_for,
        renaming_note,
        served_under,
        unlearnt_arms,
    )
    from recommender.registry._aliases import CHAMPION, aliases, champion_event
    from recommender.registry._load import load_model

    champion = aliases(name, mlflow_client=mlflow_client).get(CHAMPION)
    if champion is None:
        return []
    target = mlflow_client.get_model_version(name, champion)
    said = [run_concern(name, champion, mlflow_client=mlflow_client)]
    said = [s for s in said if s is not None]
    if champion_event(champion, name, mlflow_client=mlflow_client) is None:
        said.append(
            f"no recorded change made version {champion} the champion: the alias was moved "
            "outside `recommender train`, `promote` and `rollback`; `recommender promote "
            f"{champion} --reason ...` records a person's decision to keep it"
        )
    try:
        catalog = load_catalog()
    except InputError as error:
        return [*said, f"the installed intervention catalog cannot be loaded: {error}"]
    installed = catalog.version
    uri = f"models:/{name}/{champion}"
    trained = (target.tags or {}).get("catalog.version")
    if trained is not None and trained != installed:
        try:
            model, renamed = served_under(load_model(uri), catalog, version=champion)
        except Exception:  # noqa: BLE001 - the tag says enough to name both catalogs
            said.append(
                f"version {champion} was trained under intervention catalog {trained}, not "
                f"the installed {installed}; train again with the installed catalog"
            )
            return said
        said.append(catalog_difference(model, installed, version=champion))
    else:
        learnt = _learnt_arms(uri) or []
        renames = renamed_for(learnt, catalog)  # an arm renamed is learnt under its new id
        if learnt and not unlearnt_arms(catalog, [renames.get(a, a) for a in learnt]):
            # Every arm learnt: the model itself is loaded only when it may not be.
            renamed = renaming_note(renames, champion)
            return said if renamed is None else [*said, renamed]
        try:
            model, renamed = served_under(load_model(uri), catalog, version=champion)
        except Exception:  # noqa: BLE001 - serve says why it cannot load it
            return said
    unlearnt = arms_not_learnt(model, catalog, version=champion)
    return [*said, *(s for s in (unlearnt, renamed) if s is not None)]


def _learnt_arms(uri: str) -> list[str] | None:
    """The treatment arms the model at ``uri`` records (read from its MLmodel file, not its
    weights); ``None`` when that cannot be told."""
    from recommender.registry._load import readable_uri, resolve_model
    from recommender.registry._store import mlflow_session

    try:
        source = readable_uri(resolve_model(uri))  # a home moved or copied: its own copy
        if source.startswith("file:"):
            # MLflow's Model.load looks for a file:// URI as a path (os.path.exists) and finds
            # none, so a moved or copied home's champion was loaded whole, at every serve.
            from mlflow.utils.file_utils import local_file_uri_to_path

            source = local_file_uri_to_path(source)
        with mlflow_session() as mlflow:
            arms = (mlflow.models.get_model_info(source).metadata or {}).get("arms")
    except Exception:  # noqa: BLE001 - told by loading the model instead
        return None
    return None if arms is None else [str(arm) for arm in arms]


def run_concern(name: str, version: str, *, mlflow_client) -> str | None:
    """Said when ``version``'s training run was deleted (or is gone) after it became the
    champion: MLflow's ``gc`` removes a deleted run's files, from under the service."""
    from mlflow.exceptions import MlflowException

    run_id = mlflow_client.get_model_version(name, str(version)).run_id
    if not run_id:  # registered from files, not from a run
        return None
    try:
        stage = mlflow_client.get_run(run_id).info.lifecycle_stage
    except MlflowException:
        stage = "gone"
    if stage == "active":
        return None
    if stage == "deleted":
        return (
            f"version {version}'s training run {run_id} was deleted: `mlflow gc` would "
            "remove its files from under the service; restore it (`mlflow runs restore "
            f"--run-id {run_id}`, with MLFLOW_TRACKING_URI set to this store) or promote "
            "another version"
        )
    return (
        f"version {version}'s training run {run_id} is no longer in the store: its files "
        "may go with it; promote another version"
    )
