"""Whether a model fits what serves it: the intervention catalog installed, the request fields.

A model keeps the version of the catalog it was trained under (``catalog_version``). The
service answers with the catalog installed beside it, so the two may differ after a catalog
correction: what an answer takes from each is said by :func:`catalog_difference`, in words
that are true of the model at hand (an evidence-only model's figures are its catalog's
published ones; a learnt model's effects come from data).

A catalog that offers an arm the model never learnt (an arm added, or renamed without
``renamed_from``: ids are what a model learns) is served all the same, with a warning:
:func:`arms_not_learnt` names them, and the service, ``score`` and ``allocate`` say its sentence
and never rank those arms (each answer names them among its exclusions). An arm the catalog no
longer has is simply not offered. Each of these is asked of the model as the catalog in force
serves it (:func:`~recommender.model.served_under`: an arm it renamed, under its new id).

A model trained with extra features needs them in every request (:func:`new_request_fields`).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["arms_not_learnt", "catalog_difference", "new_request_fields", "unlearnt_arms"]


def catalog_difference(model, installed: str, *, version: str | None = None) -> str | None:
    """What an answer of ``model`` takes from which catalog when the installed catalog
    (version ``installed``) is not the one it was trained under; ``None`` when it is, or when
    the model records no catalog version.

    Parameters
    ----------
    model : RecommendationModel
    installed : str
        The version of the catalog the service answers with.
    version : str, optional
        The model's registered version, to name it.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> model = SimpleNamespace(catalog_version="2026.12-3", metadata={"source": "evidence"})
    >>> print(catalog_difference(model, "2026.12-3"))
    None
    >>> catalog_difference(model, "2026.12-4", version="5").split(":")[0]
    'version 5 was trained under intervention catalog 2026.12-3, not the installed 2026.12-4'
    """
    trained = getattr(model, "catalog_version", None)
    if trained is None or str(trained) == str(installed):  # None: a stand-in that records none
        return None
    trained = str(trained)
    metadata = getattr(model, "metadata", None)
    metadata = metadata if isinstance(metadata, Mapping) else {}
    named = "the model" if version is None else f"version {version}"
    if metadata.get("source") == "evidence":
        own = (
            f"its effects and intervals are catalog {trained}'s published figures, and its "
            "explanations cite that catalog's studies"
        )
    else:
        carried = sorted(
            arm
            for arm, facts in (metadata.get("arm_sources") or {}).items()
            if isinstance(facts, Mapping) and facts.get("citations")
        )
        own = (
            f"its effects were learnt from data with catalog {trained}'s arms and eligibility rules"
        )
        if carried:
            own += (
                f", and its figures for {', '.join(carried)} are carried from catalog "
                f"{trained}'s published evidence, cited in its explanations"
            )
    return (
        f"{named} was trained under intervention catalog {trained}, not the installed "
        f"{installed}: {own}; the evidence quoted beside each ranked arm, the costs, the "
        f"eligibility rules and each answer's catalog_version are catalog {installed}'s, so an "
        "answer may quote figures other than those it ranked by. Train again with the "
        f"installed catalog (`recommender train`, `--evidence-only` for a model of the "
        "evidence alone)"
    )


def arms_not_learnt(model, catalog, *, version: str | None = None) -> str | None:
    """A warning when ``catalog`` (the catalog in force) offers treatment arms that the model's
    own catalog did not have, so the model never learnt them (an arm added, or an arm renamed):
    one sentence naming them, saying that they are not ranked and what to do; ``None`` when
    there are none, or when the model records no catalog (it cannot be told).

    An arm the model learnt that ``catalog`` no longer has is no reason: it is not offered
    (answers and plans rank the catalog's arms only), and is named only beside a new arm, as a
    possible rename.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> trained = NS(treatment_arms=("coaching", "balint_group"), version="1")
    >>> model = NS(catalog=trained, treatment_arms=("coaching", "balint_group"))
    >>> print(arms_not_learnt(model, NS(treatment_arms=("coaching",), version="2")))
    None
    >>> arms_not_learnt(model, NS(treatment_arms=("coaching", "balint"), version="2"),
    ...                 version="4").split(";")[0]
    'the intervention catalog in force (version 2) offers balint, which version 4 never learnt (its catalog 1 had coaching, balint_group)'

    """
    new = _unlearnt_arms(model, catalog)
    if not new:
        return None
    trained = model.catalog
    gone = [str(arm) for arm in model.treatment_arms if arm not in catalog.treatment_arms]
    named = "the model" if version is None else f"version {version}"
    them = "it" if len(new) == 1 else "them"
    said = (
        f"the intervention catalog in force (version {catalog.version}) offers "
        f"{', '.join(new)}, which {named} never learnt (its catalog {trained.version} had "
        f"{', '.join(trained.treatment_arms)}); served all the same, it never ranks, plans or "
        f"scores {them} (no effect is made up), and each recommendation names {them} among its "
        "excluded arms"
    )
    if gone:
        said += (
            f"; the catalog in force no longer has {', '.join(gone)}, which it learnt: an arm "
            "renamed is a new arm to a model, so keep its id (a name can change), or give the "
            "renamed arm `renamed_from: <its former id>` in the catalog"
        )
    return (
        f"{said}. To rank {them}: train a model under this catalog and promote it (`recommender "
        "train`, `--evidence-only` for a model of the evidence alone, then `recommender "
        "promote`)"
    )


def _unlearnt_arms(model, catalog) -> list[str]:
    """The treatment arms of ``catalog`` that ``model`` never learnt, in ``catalog``'s order
    (empty when the model records no catalog: it cannot be told)."""
    trained = getattr(model, "catalog", None)
    if trained is None:
        return []
    return unlearnt_arms(catalog, model.treatment_arms, trained.treatment_arms)


def unlearnt_arms(catalog, arms, trained=()) -> list[str]:
    """The treatment arms ``catalog`` offers that are neither among ``arms`` (those a model
    learnt) nor among ``trained`` (those of the catalog it was trained under), in ``catalog``'s
    order: the one comparison behind :func:`arms_not_learnt`, the service's exclusions and the
    registry's check of its champion (which reads a model's arms from its MLmodel file).

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> unlearnt_arms(NS(treatment_arms=("coaching", "balint", "peer")), ["coaching"], ["peer"])
    ['balint']
    """
    known = {*map(str, arms), *map(str, trained)}
    return [arm for arm in catalog.treatment_arms if arm not in known]


def new_request_fields(model, served=None) -> list[str]:
    """The request fields ``model`` needs that ``served`` (the model serving now; ``None``:
    the data contract alone) does not: its extra features beyond the data contract.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> new = SimpleNamespace(extra_features=["unit", "night_shifts"])
    >>> new_request_fields(new, SimpleNamespace(extra_features=["unit"]))
    ['night_shifts']
    """
    taken = set() if served is None else set(served.extra_features)
    return [name for name in model.extra_features if name not in taken]
