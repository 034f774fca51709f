"""What a served model can say about itself: the data it learned from, and which arms it gives
one effect for everyone.

The training pipeline records both in the model's metadata (``data_source``,
``one_effect_arms``); for models trained before it did, both are worked out from what the model
carries (the description of its data, the primary learner's model-selection table).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["DATA_SOURCES", "data_source", "model_facts", "one_effect_arms"]

# "program": the program's own data (a file it supplied, or its log of answers and outcomes);
# "evidence": no data at all, the catalog's published effects (`train --evidence-only`).
DATA_SOURCES = ("simulated", "program", "evidence", "not recorded")

# The label of the learners' one-effect-for-everyone candidate in a model-selection table
# (``UpliftModel.selection_``, column ``settings``); see recommender.uplift's select_learner.
_CONSTANT_SETTINGS = "constant (no heterogeneity)"


def data_source(description: str | None) -> str:
    """``simulated`` or ``program`` from a cohort's description; ``not recorded`` without one."""
    if not description:
        return "not recorded"
    return "simulated" if "simulated" in str(description).lower() else "program"


def one_effect_arms(learner) -> list[str]:
    """Arms a fitted uplift learner gives one effect for everyone, in its arm order.

    An arm is one when its heterogeneity gate kept only the constant candidate: the model
    found no measurable benefit in personalising it. A learner without a selection table (a
    T- or X-learner alone has no constant candidate) personalises every arm.
    """
    table = getattr(learner, "selection_", None)
    if table is None or len(table) == 0 or "chosen" not in table:
        return []
    chosen = table[table["chosen"].astype(bool)]
    arms = []
    for arm in getattr(learner, "arms_", list(dict.fromkeys(table["arm"]))):
        settings = set(chosen.loc[chosen["arm"].astype(str) == str(arm), "settings"])
        if settings and settings <= {_CONSTANT_SETTINGS}:
            arms.append(str(arm))
    return arms


def model_facts(model) -> dict:
    """``{"data_source", "data", "one_effect_arms"}`` of a served model.

    Read from the model's metadata; older models without those keys get them worked out from
    what they carry, and anything that cannot be known says ``not recorded`` (data) or is left
    empty (arms).
    """
    metadata = getattr(model, "metadata", None)
    metadata = metadata if isinstance(metadata, Mapping) else {}
    description = metadata.get("data")
    source = metadata.get("data_source")
    if source not in DATA_SOURCES and metadata.get("source") == "evidence":
        source = "evidence"  # the evidence-only model records its source under this key
        catalog = getattr(model, "catalog_version", None)
        description = description or f"the published evidence of intervention catalog {catalog}"
    if source not in DATA_SOURCES:
        # The evidence-only model records its source under "source" and has no data to describe.
        source = "evidence" if metadata.get("source") == "evidence" else data_source(description)
    arms = metadata.get("one_effect_arms")
    if arms is None:
        outcome_models = getattr(model, "outcome_models", None) or {}
        primary = outcome_models.get(getattr(model, "primary", "ee"))
        arms = one_effect_arms(primary) if primary is not None else []
    return {
        "data_source": source,
        "data": None if description is None else str(description),
        "one_effect_arms": [str(a) for a in arms],
    }
