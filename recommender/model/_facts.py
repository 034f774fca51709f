"""What a served model can say about itself: the data it learned from, and which arms it gives
one effect for everyone.

The training pipeline records both in the model's metadata (``data_source``,
``one_effect_arms``); for models trained before it did, both are worked out from what the model
carries (the description of its data, the primary learner's model-selection table).

And the smallest group it may report on (:func:`model_min_cell`): its training config's
``card.min_cell``, which its card suppresses cells under, so that a plan made with the model
suppresses the same cells.
"""

from __future__ import annotations

from collections.abc import Mapping

from recommender.model._support import MIN_LEVEL_ROWS, SUPPORT_KEY

__all__ = [
    "CARRIED_CHOICE",
    "DATA_SOURCES",
    "MIN_CELL_KEY",
    "data_source",
    "model_facts",
    "model_min_cell",
    "one_effect_arms",
]

# "program": the program's own data (a file it supplied, or its log of answers and outcomes);
# "evidence": no data at all, the catalog's published effects (`train --evidence-only`).
DATA_SOURCES = ("simulated", "program", "evidence", "not recorded")

# The metadata key of the training config's ``card.min_cell``.
MIN_CELL_KEY = "min_cell"

# The label of the learners' one-effect-for-everyone candidate in a model-selection table
# (``UpliftModel.selection_``, column ``settings``); see recommender.uplift's select_learner.
_CONSTANT_SETTINGS = "constant (no heterogeneity)"
# What a retrained model's carried arm "chose": no candidate was fitted for it (too few logged
# rows); an empty entry read as a blank in the card's lineage table.
CARRIED_CHOICE = "carried over (too few logged rows to learn; the previous model's estimate)"


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


def chosen_candidates(learner) -> dict[str, list[str]]:
    """Per arm, the candidates an ``auto`` uplift learner averaged, as ``"<learner> <settings>"``
    (``"one effect for everyone"`` for the constant), in its arm order; ``{}`` for a learner
    without a selection table (one fitted with a fixed learner). An arm the table does not
    hold was not fitted: a model retrained from the log carried it over (:data:`CARRIED_CHOICE`)."""
    table = getattr(learner, "selection_", None)
    if table is None or len(table) == 0 or "chosen" not in table:
        return {}
    chosen = table[table["chosen"].astype(bool)]
    fitted = set(table["arm"].astype(str))
    out = {}
    for arm in getattr(learner, "arms_", list(dict.fromkeys(table["arm"]))):
        if str(arm) not in fitted:
            out[str(arm)] = [CARRIED_CHOICE]
            continue
        rows = chosen[chosen["arm"].astype(str) == str(arm)]
        out[str(arm)] = [
            "one effect for everyone" if settings == _CONSTANT_SETTINGS else f"{name} {settings}"
            for name, settings in zip(rows["learner"], rows["settings"])
        ]
    return out


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


def model_min_cell(model) -> int:
    """The smallest group a served model's plans may report on: its training ``card.min_cell``.

    The one answer to "which min_cell applies" to a model: the training config's
    ``card.min_cell``, recorded in the model's metadata (``min_cell``); for a model trained
    before it was recorded, the ``min_rows`` of its recorded training support, which was that
    same setting; for a model recording neither (an earlier release's evidence-only model),
    the card's default. Never under that default (11), the privacy floor ``card.min_cell``
    accepts.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> model_min_cell(SimpleNamespace(metadata={"min_cell": 20}))
    20
    >>> model_min_cell(SimpleNamespace(metadata={"training_support": {"min_rows": 15}}))
    15
    >>> model_min_cell(SimpleNamespace(metadata={"min_cell": 5}))
    11
    >>> model_min_cell(SimpleNamespace(metadata={}))
    11
    """
    metadata = getattr(model, "metadata", None)
    metadata = metadata if isinstance(metadata, Mapping) else {}
    recorded = metadata.get(MIN_CELL_KEY)
    if recorded is None:
        support = metadata.get(SUPPORT_KEY)
        recorded = support.get("min_rows") if isinstance(support, Mapping) else None
    try:
        value = int(recorded)
    except (TypeError, ValueError):
        value = MIN_LEVEL_ROWS
    return max(value, MIN_LEVEL_ROWS)
