"""What the model and the catalog say of the rows an engine ranks: each arm's figures, the
fields the eligibility rules read, and the contributions the explanations need."""

from __future__ import annotations

from collections import defaultdict
from math import copysign

import numpy as np

from recommender.policy import ranked_figures

__all__ = ["arm_figures", "explanation_contributions", "rule_fields"]


def arm_figures(prediction, n: int, modelled) -> tuple[dict, dict]:
    """Per arm, each row's figures as a tuple in :class:`~recommender.policy.RankedArm`'s
    order (``effect, lower, upper, effect_dp, effect_pa, lower_dp, upper_dp, lower_pa,
    upper_pa``; NaN where the model lacks an outcome or its interval), and whether each row's
    EE effect and interval are finite (an estimate to rank).

    Indexing a list is what the per-row loop does a thousand times. Rounded as the ranking
    reads them (:func:`~recommender.policy.ranked_figures`, 0.001 points) here, vectorized,
    rather than figure by figure in every answer.
    """
    missing = [float("nan")] * n
    columns = {arm: j for j, arm in enumerate(prediction.arms)}
    lower, upper = prediction.secondary_lower, prediction.secondary_upper
    kinds = [
        prediction.effect,
        prediction.lower,
        prediction.upper,
        prediction.secondary.get("dp"),
        prediction.secondary.get("pa"),
        lower.get("dp"),
        upper.get("dp"),
        lower.get("pa"),
        upper.get("pa"),
    ]
    kinds = [None if table is None else ranked_figures(table) for table in kinds]
    # effect + lower + upper, as the figures' own sum (inf - inf is not finite either).
    finite = np.isfinite(kinds[0] + kinds[1] + kinds[2]).T.tolist()
    kinds = [None if table is None else table.T.tolist() for table in kinds]
    figures = {
        arm: list(
            zip(
                *(
                    missing if table is None or arm not in columns else table[columns[arm]]
                    for table in kinds
                )
            )
        )
        for arm in modelled
    }
    estimated = {arm: finite[columns[arm]] if arm in columns else [False] * n for arm in modelled}
    return figures, estimated


def explanation_contributions(model, control, encoded, ranked_rows, rankings) -> tuple:
    """What the explanations of every ranked row need of the model, in one contributions
    call: ``(stacked, best, second, none)``, each row's best and runner-up arm's
    contributions as rows ``best[k]`` and ``second[k]`` of ``stacked`` (``none``: usual
    care's, all zero).

    The learners explain ``effect[a] - effect[b]`` as the difference of each arm's
    contributions against usual care (usual care's own being zero), so the contributions of
    every arm a row needs (its best and its runner-up) against usual care give both
    comparisons: recommended vs usual care, and recommended vs runner-up.
    """
    needs = defaultdict(list)  # arm -> positions k (in frame) of rows that need it
    # Per row, where its best and its runner-up are among their arm's rows: (arm, r), or
    # None for usual care (or no runner-up).
    slots = []
    for k, i in enumerate(ranked_rows):
        pair = [None, None]
        for j, arm in enumerate(rankings[i].arms[:2]):
            if arm.arm != control:
                rows_of_arm = needs[arm.arm]
                pair[j] = arm.arm, len(rows_of_arm)
                rows_of_arm.append(k)
        slots.append(pair)
    names = [f["name"] for f in model.features]
    # Every part the model gives, stacked: an arm's rows start at ``start[arm]``.
    parts, start = [], {}
    for arm, part in model.explain(encoded, needs).items():
        start[arm] = sum(len(p) for p in parts)
        parts.append(np.asarray(part, dtype=float))
    # A last row of zeros stands for usual care's own contributions (index ``none``).
    stacked = np.concatenate([*parts, np.zeros((1, len(names) + 1))])
    none = len(stacked) - 1
    best, second = [], []
    for pair in slots:
        for out, slot in zip((best, second), pair):
            out.append(none if slot is None or slot[0] not in start else start[slot[0]] + slot[1])
    return stacked, best, second, none


def rule_fields(catalog):
    """``row -> key`` of the fields the catalog's eligibility rules read (role always)."""
    rules = [catalog.arm(arm).eligibility for arm in catalog.treatment_arms]
    specialty = any(rule.specialties is not None for rule in rules)
    years = any(
        rule.min_years_in_practice is not None or rule.max_years_in_practice is not None
        for rule in rules
    )

    def read(row):
        key = [row.get("role")]
        if specialty:
            key.append(row.get("specialty"))
        if years:
            value = row.get("years_in_practice")
            sign = copysign(1.0, value) if type(value) is float else None
            key.append((type(value), value, sign))
        return tuple(key)

    if not specialty and not years:
        return lambda row: row.get("role")
    return read
