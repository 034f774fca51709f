"""The card's fairness section: whom the model's policy recommends each intervention to, against
whom the catalog makes eligible, per role, gender and setting; which features the model uses;
and how often a protected attribute is among the leading reasons of its explanations.

The per-group table is :func:`recommender.policy.fairness_table`, the same one every allocation
plan reports, here applied to the model's recommendations on the held-out part (no budget or
capacity: what the model would recommend each person). The leading reasons are those the
service gives a person, :func:`recommender.explain.top_contributions` of the recommended arm's
effect against usual care, so the share counted is the share of answers a person would read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.card._facts import json_safe
from recommender.card._format import fmt

__all__ = ["PROTECTED_ATTRIBUTES", "fairness_blocks", "fairness_facts", "protected_reasons"]

# Attributes a recommendation must not turn on without review (age and gender as in EU and US
# non-discrimination law; role and setting are job facts the interventions are designed around).
PROTECTED_ATTRIBUTES = ("gender", "age")
TOP_REASONS = 3  # as many reasons as an answer lists
MAX_EXPLAINED = 2000  # explained answers per card: a share within 2 points at 90 %


def protected_reasons(
    model,
    profiles: pd.DataFrame,
    recommended,
    *,
    top: int = TOP_REASONS,
    sample: int = MAX_EXPLAINED,
    random_state: int = 0,
    attributes=PROTECTED_ATTRIBUTES,
) -> dict:
    """How often each protected attribute is among the ``top`` reasons of an answer.

    Parameters
    ----------
    model : RecommendationModel
    profiles : DataFrame
        Held-out profile rows (data contract columns).
    recommended : array-like of str
        The model's recommendation for each row (same order).
    top : int
        Reasons per answer, as the service lists them.
    sample : int
        At most this many answers that recommend an intervention are explained (drawn with
        ``random_state``); answers that recommend usual care have no effect to explain.

    Returns
    -------
    dict
        ``explained`` (answers explained), ``answers_with_arm`` (held-out answers recommending
        an intervention), ``top`` and ``attributes``: one dict per attribute with ``used``
        (is it a feature of the model), ``share_top`` and ``share_first`` (share of explained
        answers where it is among the top reasons, and the first one; None when not used).
    """
    from recommender.explain import top_contributions

    recommended = pd.Series(np.asarray(recommended, dtype=object), index=profiles.index)
    with_arm = np.flatnonzero((recommended != model.control).to_numpy())
    rng = np.random.default_rng(random_state)
    chosen = np.sort(rng.choice(with_arm, size=min(sample, len(with_arm)), replace=False))
    used = set(model.feature_names)
    counts = {a: [0, 0] for a in attributes}  # among the top reasons, first reason
    rows = profiles.iloc[chosen]
    arms = recommended.iloc[chosen]
    for arm in model.treatment_arms:
        mine = rows[(arms == arm).to_numpy()]
        if not len(mine):
            continue
        parts = model.contributions(mine, arm)
        # Only which features are the reasons counts here, not the person's values of them:
        # no profile row is read (a row lookup per answer was most of this loop's time).
        for contribution in parts.to_dict(orient="records"):
            reasons = [c.feature for c in top_contributions(contribution, {}, top=top)]
            for attribute in attributes:
                if attribute in reasons:
                    counts[attribute][0] += 1
                    counts[attribute][1] += reasons[0] == attribute
    explained = len(chosen)
    summary = []
    for attribute in attributes:
        known = attribute in used and explained > 0
        summary.append(
            {
                "attribute": attribute,
                "used": attribute in used,
                "share_top": counts[attribute][0] / explained if known else None,
                "share_first": counts[attribute][1] / explained if known else None,
            }
        )
    return {
        "explained": explained,
        "answers_with_arm": len(with_arm),
        "top": top,
        "attributes": summary,
    }


def fairness_facts(
    model,
    profiles: pd.DataFrame,
    effects: pd.DataFrame,
    recommended,
    *,
    min_cell: int,
    random_state: int = 0,
    sample: int = MAX_EXPLAINED,
    lower: pd.DataFrame | None = None,
    upper: pd.DataFrame | None = None,
    alpha: float = 0.1,
) -> dict:
    """The fairness section's facts on the held-out part (JSON-safe).

    Parameters
    ----------
    model : RecommendationModel
    profiles : DataFrame
        Held-out profile rows with ``role``, ``gender``, ``setting`` (and the eligibility
        columns the catalog reads).
    effects : DataFrame
        The model's primary (EE) effects, rows x treatment arms, same order as ``profiles``.
    recommended : array-like of str
        The model's recommendation per row.
    min_cell : int
        Groups smaller than this are suppressed.
    lower, upper : DataFrame, optional
        The model's ``1 - alpha`` interval of ``effects`` (same rows and arms). With them each
        group's EE points avoided per person (``arm == "any"``) has ``benefit_lower`` and
        ``benefit_upper``: :func:`recommender.evaluation.predicted_mean`, the model's own
        uncertainty about its estimate, not a measured outcome.
    """
    from recommender.cohort import FEATURE_COLUMNS
    from recommender.policy import fairness_records, fairness_table

    arms = list(model.treatment_arms)
    effects = effects[arms].set_axis(profiles.index)
    eligible = model.eligibility(profiles)
    eligible = (
        pd.DataFrame(True, index=profiles.index, columns=arms)
        if eligible is None
        else eligible[arms].set_axis(profiles.index)
    )
    assignment = pd.Series(np.asarray(recommended, dtype=object), index=profiles.index)
    table = fairness_table(
        assignment, eligible, -effects, profiles, control=model.control, min_cell=min_cell
    )
    records = fairness_records(table)
    if lower is not None and upper is not None:
        bounds = [b[arms].set_axis(profiles.index) for b in (lower, upper)]
        _benefit_intervals(records, profiles, assignment, effects, *bounds, model.control, alpha)
    features = list(model.feature_names)
    return json_safe(
        {
            "n": len(profiles),
            "min_cell": int(min_cell),
            # the hidden groups of an attribute hold min_cell people together (older cards:
            # one hidden group took the next smallest with it, two small ones nothing)
            "suppression": "sets",
            "arms": arms,
            "alpha": alpha if lower is not None and upper is not None else None,
            "groups": records,
            "features": features,
            "excluded": [c for c in FEATURE_COLUMNS if c not in features],
            "reasons": protected_reasons(
                model, profiles, recommended, sample=sample, random_state=random_state
            ),
        }
    )


def _benefit_intervals(records, profiles, assignment, effects, lower, upper, control, alpha):
    """Add ``benefit_lower``/``benefit_upper`` to each shown group's ``any`` record: the
    interval of the EE points the model expects its recommendations to avoid per person."""
    from recommender.evaluation import of_recommended, predicted_mean

    effect, low, high = (
        of_recommended(frame, assignment, control=control) for frame in (effects, lower, upper)
    )
    for record in records:
        if record["arm"] != "any" or record["suppressed"]:
            continue
        members = profiles[record["attribute"]].astype(str).to_numpy() == record["group"]
        est = predicted_mean(effect[members], low[members], high[members], alpha=alpha)
        # points avoided are the effect with its sign turned: the bounds swap
        record["benefit_lower"], record["benefit_upper"] = -est.upper, -est.lower


# ------------------------------------------------------------------------------ rendering
def _share(value) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def _benefit(overall: dict):
    """EE points avoided per person, with its interval as ``4.49 (2.61 to 6.37)`` where the
    facts have one (a card from before they did shows the figure alone, as it was)."""
    value = overall.get("benefit_per_person")
    if "benefit_lower" not in overall:
        return value
    lower, upper = overall.get("benefit_lower"), overall.get("benefit_upper")
    if lower is None or upper is None:
        return f"{fmt(value, 2)} (no interval: the model gave none)"
    return f"{fmt(value, 2)} ({fmt(lower, 2)} to {fmt(upper, 2)})"


def _group_tables(f: dict) -> list:
    records = f.get("groups") or []
    arms = list(f.get("arms") or [])
    blocks = []
    for attribute in dict.fromkeys(r["attribute"] for r in records):
        mine = [r for r in records if r["attribute"] == attribute]
        rows = []
        for group in dict.fromkeys(r["group"] for r in mine):
            cells = {r["arm"]: r for r in mine if r["group"] == group}
            overall = cells.get("any") or {}
            if overall.get("suppressed"):
                rows.append(
                    [group, "suppressed", "suppressed", "suppressed"] + ["suppressed"] * len(arms)
                )
                continue
            rows.append(
                [
                    group,
                    overall.get("people"),
                    f"{_share(overall.get('share_allocated'))} / "
                    f"{_share(overall.get('share_eligible'))}",
                    _benefit(overall),
                ]
                + [
                    f"{_share((cells.get(a) or {}).get('share_allocated'))} / "
                    f"{_share((cells.get(a) or {}).get('share_eligible'))}"
                    for a in arms
                ]
            )
        benefit = "EE points avoided per person" + (
            " (the model's own interval)" if f.get("alpha") is not None else ""
        )
        columns = ["group", "people", "any arm", benefit, *arms]
        blocks.append(
            (
                "table",
                {"columns": columns, "rows": rows},
                f"By {attribute}: share recommended / share eligible, per arm",
            )
        )
    return blocks


def _reason_statements(f: dict) -> list[str]:
    reasons = f.get("reasons") or {}
    explained, top = reasons.get("explained") or 0, reasons.get("top", TOP_REASONS)
    out = []
    for entry in reasons.get("attributes") or []:
        name = entry["attribute"].capitalize()
        if not entry.get("used"):
            out.append(
                f"{name} is not a feature of this model (left out in training), so it "
                "is never among the reasons of an answer."
            )
        elif not explained:
            out.append(
                f"{name} is a feature of this model; no held-out answer recommended an "
                "intervention, so no explanation was examined."
            )
        else:
            share, first = entry["share_top"], entry["share_first"]
            total = reasons.get("answers_with_arm") or explained
            sample = f" (a random sample of the {total:,})" if total > explained else ""
            verdict = (
                f"it is never among the top {top} reasons"
                if share == 0
                else f"it is among the top {top} reasons in {100 * share:.1f}% of them (the "
                f"first reason in {100 * first:.1f}%)"
            )
            out.append(
                f"{name} is a feature of this model. Of {explained:,} held-out answers "
                f"that recommend an intervention{sample}, {verdict}."
            )
    return out


def _benefit_interval_text(f: dict) -> str:
    alpha = f.get("alpha")
    if alpha is None:  # a card from before the figure had an interval
        return ""
    return (
        f" Its {100 * (1 - alpha):.0f}% interval is the model's uncertainty about that "
        "estimate, as for the subgroup table's mean predicted effect: its intervals for each "
        "person, taken as if their errors all leaned the same way, with the spread of its "
        "predictions over the group's people; not a measured outcome."
    )


def fairness_blocks(facts: dict) -> list:
    """The fairness section's blocks; a card from before this section says it is not there."""
    f = facts.get("fairness")
    if f and f.get("why"):  # a model with nothing to break down says why
        return [("p", f["why"])]
    if not f:
        return [
            (
                "p",
                "not available: this card was made before the fairness section existed; "
                "the subgroup table above shows the policy's value by group.",
            )
        ]
    blocks = [
        (
            "p",
            f"For each role, gender and setting on the held-out part ({f['n']:,} "
            "people): the share the model recommends an intervention to, against the "
            "share the catalog makes eligible for it, and the EE points the model "
            "expects its recommendations to avoid per person (its own estimate; the "
            "subgroup table gives the doubly robust one)."
            + _benefit_interval_text(f)
            + " Every plan reports the same table"
            + (" (without the interval)" if f.get("alpha") is not None else "")
            + f". Groups under {f['min_cell']} people are suppressed, and with them "
            + (
                "the next smallest groups of the attribute until the hidden ones hold "
                f"{f['min_cell']} people together, so the total less the shown groups cannot "
                "reveal them."
                if f.get("suppression") == "sets"
                else "the next smallest group of the attribute when only one is hidden, so "
                "the total cannot reveal it (this card was made before two small groups "
                "hidden together were checked: their sum may be read off the total)."
            ),
        )
    ]
    blocks += _group_tables(f)
    blocks.append(
        (
            "p",
            "A gap between groups of one attribute can come from another: where "
            "one gender holds more of the roles an arm is not offered to, it is "
            "recommended that arm less. Read the share recommended against the "
            "share eligible, and the role table beside the gender one.",
        )
    )
    blocks.append(("h3", "Features the model uses"))
    blocks.append(("p", ", ".join(f.get("features") or []) or "not available"))
    excluded = f.get("excluded") or []
    blocks.append(
        (
            "p",
            "Left out at training (exclude_features): "
            + ", ".join(excluded)
            + ". Requests still carry them (the data contract), and the model ignores "
            "them."
            if excluded
            else "No profile feature was left out at training (exclude_features is empty).",
        )
    )
    blocks.append(("h3", "Protected attributes among the reasons"))
    blocks.append(("list", _reason_statements(f)))
    blocks.append(
        (
            "p",
            "A protected attribute among the reasons is not by itself unfair "
            "(effects may truly differ), but it is what a reviewer should check "
            "first. Leaving it out (exclude_features in train.yaml) removes it "
            "from the reasons, not what correlated features carry (years in "
            "practice for age, role or specialty for gender).",
        )
    )
    return blocks
