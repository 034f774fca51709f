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
    features = list(model.feature_names)
    return json_safe(
        {
            "n": len(profiles),
            "min_cell": int(min_cell),
            "arms": arms,
            "groups": fairness_records(table),
            "features": features,
            "excluded": [c for c in FEATURE_COLUMNS if c not in features],
            "reasons": protected_reasons(
                model, profiles, recommended, sample=sample, random_state=random_state
            ),
        }
    )


# ------------------------------------------------------------------------------ rendering
def _share(value) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


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
                    overall.get("benefit_per_person"),
                ]
                + [
                    f"{_share((cells.get(a) or {}).get('share_allocated'))} / "
                    f"{_share((cells.get(a) or {}).get('share_eligible'))}"
                    for a in arms
                ]
            )
        columns = ["group", "people", "any arm", "EE points avoided per person", *arms]
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
            "subgroup table gives the doubly robust one). Every plan reports the same "
            f"table. Groups under {f['min_cell']} people are suppressed, and with them "
            "the next smallest group of the attribute so the total cannot reveal them.",
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
