"""The carry stage: arms too few rows support keep an earlier estimate instead of disappearing
(see :mod:`recommender.model._carried`). In a run from the log they keep the served model's;
in a run from a file (a small program, some of whose arms were taken by few), the published
trials' (the evidence-only model's): a file's arms are learnt from that file alone, never
from the registry's champion, which may have been trained on other data.

An arm served to fewer rows than a fit needs (``fit_min_arm_rows``) is not learnt. Dropping
it would stop the service from ever offering it again, so the log could never learn it; here
it keeps the estimate of the model being served (the champion), ultimately the evidence-only
model's, from the catalog's published trials. The run says which arms were carried, from
where, and why; the card lists them; answers say their figures are not the program's.

Policies that pick a carried arm for some people are still judged on the log:
:func:`scores_with_estimates` gives an arm that the log cannot score a column of doubly
robust scores built from usual care's and the model's estimate (the direct method), so the
gate and the off-policy estimates value every arm a policy can pick, and value a carried arm
by what the served model believes of it until the log holds its own rows.
"""

from __future__ import annotations

import pandas as pd

from pipelines._train_cohort import Cohort

__all__ = ["carry_stage", "scores_with_estimates"]


def carry_stage(model, cohort: Cohort, config: dict, *, previous=None, previous_label=None):
    """``model`` with the arms left out for too few rows carried over.

    Parameters
    ----------
    model : RecommendationModel
        The fit stage's model.
    cohort : Cohort
        A cohort from the log (``cohort.loop`` as :func:`pipelines.train.log_summary` makes
        it) or a file with small arms (``cohort.small_arms``); any other cohort is returned
        unchanged. ``cohort.carry`` gains ``carried_arms`` (arm, rows, rows needed, where the
        estimate comes from, and ``formerly``: the id the source learnt it under, for an arm
        the catalog renamed since) and ``arms_not_carried`` (left out: no earlier model has an
        estimate for them).
    config : dict
    previous : RecommendationModel, optional
        The model carried from. From the log, default the model being served (the registry's
        champion, else the evidence-only model); from a file, the evidence-only model.
    previous_label : str, optional
        How the card names ``previous`` (default: from its metadata).
    """
    from recommender.model import arm_source, carry_arms, served_under

    loop = cohort.carry
    if loop is None or not loop.get("arms_without_overlap"):
        return model
    catalog = cohort.catalog
    if previous is None:
        previous, previous_label = _served_model(config, catalog, champion=cohort.loop is not None)
    candidates = [(previous, previous_label or _label(previous, None))]
    carried, not_carried = {}, []
    for arm in loop["arms_without_overlap"]:
        for source_model, label in _with_evidence(candidates, catalog):
            # As the service serves it: an arm the catalog renamed, under its new id, with what
            # the model learnt under the former one.
            source_model, _ = served_under(source_model, catalog)
            source = arm_source(source_model, model.primary, arm)
            if source is None or not set(source.features) <= set(model.feature_names):
                continue
            facts = {
                "rows": int(loop["rows_per_arm"].get(arm, 0)),
                "min_rows": int(loop["min_arm_rows"]),
                **_origin(source_model, arm, label),
            }
            if source.learnt_as is not None:
                facts["formerly"] = source.learnt_as
            carried[arm] = (source_model, facts)
            break
        else:
            not_carried.append(arm)
    loop["carried_arms"] = [
        {
            "arm": arm,
            "rows": f["rows"],
            "min_rows": f["min_rows"],
            "from": f["from"],
            **({"formerly": f["formerly"]} if "formerly" in f else {}),
        }
        for arm, (_, f) in carried.items()
    ]
    loop["arms_not_carried"] = not_carried
    return carry_arms(model, carried, arm_order=catalog.treatment_arms)


def _with_evidence(candidates, catalog):
    """The served model, then the evidence-only model (built only when needed)."""
    yield from candidates
    from recommender.errors import InputError
    from recommender.model import evidence_model

    try:
        evidence = evidence_model(catalog)
    except InputError:  # a catalog without converted evidence: nothing more to carry from
        return
    yield evidence, _label(evidence, None)


def _served_model(config: dict, catalog, *, champion: bool = True):
    """The registry's champion and its label, else (or without ``champion``) the
    evidence-only model."""
    from recommender.model import evidence_model
    from recommender.registry import aliases, load_model

    name = config["registry"]["model_name"]
    version = aliases(name).get("champion") if champion else None
    if version is not None:
        try:
            return load_model(f"models:/{name}/{version}"), _label(None, version)
        except Exception:  # noqa: BLE001 - an unreadable champion: carry the evidence instead
            pass
    evidence = evidence_model(catalog)
    return evidence, _label(evidence, None)


def _label(model, version) -> str:
    if version is not None:
        return f"the champion, version {version}"
    metadata = getattr(model, "metadata", None) or {}
    if metadata.get("source") == "evidence":
        return "published trials (the evidence-only model)"
    return "the model being served"


def _origin(source_model, arm: str, label: str) -> dict:
    """``from`` and, for published evidence, ``citations`` (per role) of a carried arm."""
    metadata = getattr(source_model, "metadata", None) or {}
    earlier = (metadata.get("arm_sources") or {}).get(arm) or {}
    if earlier.get("source") == "carried":  # carried before: keep where it first came from
        out = {"from": earlier.get("from", label)}
        if earlier.get("citations"):
            out["citations"] = dict(earlier["citations"])
        return out
    if metadata.get("source") == "evidence":
        return {
            "from": "published trials (the evidence-only model)",
            "citations": dict((metadata.get("evidence_citations") or {}).get(arm, {})),
        }
    return {"from": label}


def scores_with_estimates(scores: pd.DataFrame, effects: pd.DataFrame, *, control: str):
    """``scores`` with a column for every arm of ``effects`` they lack.

    Doubly robust scores exist only for arms the log served often enough; for another arm a
    policy may pick (a carried one), its column is usual care's score plus the model's
    estimate of the arm's effect (the direct method): the arm is valued by that estimate
    until the log holds enough of its own rows.

    Raises
    ------
    InputError
        When ``effects`` and ``scores`` have different numbers of rows.
    """
    from recommender.errors import InputError

    missing = [arm for arm in effects.columns if arm not in scores.columns]
    if not missing:
        return scores
    if len(effects) != len(scores):
        raise InputError(f"effects have {len(effects)} rows but the scores have {len(scores)}")
    out = scores.copy()
    base = scores[control].to_numpy(dtype=float)
    for arm in missing:
        out[arm] = base + effects[arm].to_numpy(dtype=float)
    return out
