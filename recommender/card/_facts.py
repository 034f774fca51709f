"""Facts for the model card computed from a fitted model and its held-out data.

Every function returns plain, JSON-safe values; tables are ``{"columns": [...], "rows": [...]}``
so the card renders them the same way in JSON, Markdown and HTML.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from recommender._json import json_safe

__all__ = [
    "table",
    "json_safe",
    "policy_summary",
    "readable_rules",
    "recommendation_mix",
    "evidence_facts",
    "complement_facts",
    "arm_counts",
    "outside_counts",
    "learner_choice",
]


def table(frame: pd.DataFrame, *, index: str | None = None) -> dict:
    """A DataFrame as ``{"columns", "rows"}``; ``index`` names the index column when kept."""
    if index is not None:
        frame = frame.rename_axis(index).reset_index()
    return {
        "columns": [str(c) for c in frame.columns],
        "rows": [json_safe(list(row)) for row in frame.itertuples(index=False, name=None)],
    }


def recommendation_mix(recommended, arms) -> dict:
    """How many people are recommended each arm, and what share, in catalog order."""
    values = pd.Series(np.asarray(recommended, dtype=object))
    counts = values.value_counts()
    n = max(len(values), 1)
    frame = pd.DataFrame({"arm": list(arms), "people": [int(counts.get(a, 0)) for a in arms]})
    frame["share"] = frame["people"] / n
    return table(frame)


def arm_counts(treatment_train, treatment_holdout, arms) -> dict:
    """Rows per arm in the training and held-out parts."""
    train = pd.Series(np.asarray(treatment_train, dtype=object)).value_counts()
    holdout = pd.Series(np.asarray(treatment_holdout, dtype=object)).value_counts()
    frame = pd.DataFrame(
        {
            "arm": list(arms),
            "training": [int(train.get(a, 0)) for a in arms],
            "held_out": [int(holdout.get(a, 0)) for a in arms],
        }
    )
    frame["total"] = frame["training"] + frame["held_out"]
    return table(frame)


def outside_counts(model, X: pd.DataFrame) -> dict | None:
    """Held-out rows outside the data the model learnt from, per field (see
    :func:`recommender.model.support_check`): ``{"rows", "outside", "fields": table}``, the
    table one line per field with any row outside; None when the model records no support."""
    from recommender.model import support_check

    check = support_check(model)
    if check is None:
        return None
    outside = check.outside(X)
    fields = pd.Series([item["field"] for row in outside for item in row], dtype=object)
    counts = fields.value_counts(sort=False)
    n = max(len(X), 1)
    frame = pd.DataFrame(
        {
            "field": [str(f) for f in counts.index],
            "held_out_rows": [int(c) for c in counts],
            "share": [int(c) / n for c in counts],
        }
    )
    return {"rows": int(len(X)), "outside": int(sum(map(bool, outside))), "fields": table(frame)}


def policy_summary(
    X: pd.DataFrame, recommended, *, max_depth: int = 3, random_state: int = 0
) -> dict:
    """A shallow decision tree that mimics the recommendations, printed as rules.

    The tree is a readable summary, not the model: its ``fidelity`` (share of people for whom
    the tree gives the model's recommendation) says how much of the policy the rules capture.

    Parameters
    ----------
    X : DataFrame
        Profiles' features (categoricals are one-hot encoded for the tree).
    recommended : array-like of str
        The model's recommendation per row.
    max_depth : int, default 3

    Returns
    -------
    dict
        ``rules`` (in ``sklearn.tree.export_text``'s layout, a split whose branches all give
        the same recommendation shown as that recommendation), ``fidelity``, ``max_depth``,
        ``n``.
    """
    from sklearn.tree import DecisionTreeClassifier

    target = np.asarray(recommended, dtype=object).astype(str)
    encoded = pd.get_dummies(X, prefix_sep="=", dtype=float)
    tree = DecisionTreeClassifier(
        max_depth=max_depth, min_samples_leaf=max(11, len(X) // 100), random_state=random_state
    )
    tree.fit(encoded, target)
    fidelity = float(np.mean(tree.predict(encoded) == target))
    rules = _tree_rules(tree, [str(c) for c in encoded.columns])
    return {
        "rules": readable_rules(rules, categorical=_categorical_levels(X)),
        "fidelity": fidelity,
        "max_depth": max_depth,
        "n": int(len(X)),
    }


def _tree_rules(tree, names: list[str], *, decimals: int = 1) -> str:
    """The fitted tree's rules in ``export_text``'s layout, each split whose leaves all give
    one recommendation written as that leaf: the gini criterion splits a node whose branches
    differ only in how mixed they are, and ``age <= 62.5: coaching / age > 62.5: coaching``
    would read as if age decided something."""
    nodes = tree.tree_
    classes = tree.classes_
    left, right = nodes.children_left, nodes.children_right

    def outcomes(node: int) -> set[str]:
        if left[node] == right[node]:  # a leaf
            return {str(classes[int(np.argmax(nodes.value[node][0]))])}
        return outcomes(left[node]) | outcomes(right[node])

    lines: list[str] = []

    def walk(node: int, depth: int) -> None:
        indent = "|   " * depth + "|--- "
        leaves = outcomes(node)
        if len(leaves) == 1:
            lines.append(f"{indent}class: {leaves.pop()}")
            return
        name, threshold = names[nodes.feature[node]], f"{nodes.threshold[node]:.{decimals}f}"
        lines.append(f"{indent}{name} <= {threshold}")
        walk(left[node], depth + 1)
        lines.append(f"{indent}{name} >  {threshold}")
        walk(right[node], depth + 1)

    walk(0, 0)
    return "\n".join(lines) + "\n"


def _categorical_levels(X: pd.DataFrame) -> set[str]:
    return {
        f"{column}={level}"
        for column in X.columns
        if not pd.api.types.is_numeric_dtype(X[column])
        for level in X[column].unique()
    }


_SPLIT = re.compile(r"^(?P<indent>[| ]*--- )(?P<name>.+?) +(?P<op><=|>) +(?P<value>\S+)$")


def readable_rules(rules: str, *, categorical: set[str] = frozenset()) -> str:
    """``export_text`` rules with one-hot splits in words: ``role is nurse`` (or ``is not``).

    Examples
    --------
    >>> print(readable_rules("|--- role=nurse <= 0.5\\n|--- role=nurse >  0.5\\n"
    ...                      "|   |--- ee >  19.5", categorical={"role=nurse"}))
    |--- role is not nurse
    |--- role is nurse
    |   |--- ee > 19.5
    """
    lines = []
    for line in rules.splitlines():
        match = _SPLIT.match(line)
        if match:
            name, op = match["name"], match["op"]
            if name in categorical:
                column, level = name.split("=", 1)
                text = f"{column} is not {level}" if op == "<=" else f"{column} is {level}"
            else:
                text = f"{name} {op} {match['value']}"
            line = match["indent"] + text
        lines.append(line)
    return "\n".join(lines) + ("\n" if rules.endswith("\n") else "")


def evidence_facts(catalog, arms=None) -> list[dict]:
    """The catalog's published evidence for each arm (all arms when ``arms`` is None), with
    its cost and capacity in words, labelled where they are assumptions."""
    from recommender.catalog import cost_and_capacity

    wanted = list(arms) if arms is not None else list(catalog.arm_ids)
    out = []
    for arm_id in wanted:
        try:
            arm = catalog.arm(arm_id)
        except Exception:  # noqa: BLE001 - an arm missing from the catalog is reported, not fatal
            out.append(
                {"arm": arm_id, "name": arm_id, "description": "not in the catalog", "items": []}
            )
            continue
        cost, capacity = cost_and_capacity(arm)
        out.append(
            {
                "arm": arm.id,
                "name": arm.name,
                "description": " ".join(str(arm.description).split()),
                "cost_per_person": json_safe(arm.cost_per_person),
                # most costs and capacities are assumptions: the figure never goes without
                # the label (the JSON gave 1400 bare, and the page gave nothing)
                "cost_is_assumption": bool(arm.cost_is_assumption),
                "cost": cost,
                "capacity": json_safe(arm.capacity),
                "capacity_is_assumption": bool(arm.capacity_is_assumption),
                "capacity_text": capacity,
                "items": [json_safe(e.as_dict()) for e in arm.evidence],
            }
        )
    return out


def complement_facts(catalog) -> list[dict]:
    """The measures the model does not rank, with their evidence (citation and certainty)."""
    from recommender.explain import complements_for

    return json_safe(complements_for(catalog))


def learner_choice(model, requested: str) -> dict:
    """Why each outcome's learner: ``{"rule", "outcomes": {outcome: {arm: [candidates]}}}``.

    With ``learner: auto`` the rule is the cross-validated doubly robust criterion and each
    arm lists the candidates it averaged (the run's ``learners/<outcome>_selection.json``
    holds every candidate's loss); with a fixed learner, the config chose it.
    """
    from recommender.model import chosen_candidates

    if requested != "auto":
        return {"rule": f"set by the training config (learner.learner: {requested})"}
    return {
        "rule": (
            "chosen by learner: auto, per arm, among the T-, X- and DR-learners' candidates: "
            "those of lowest cross-validated doubly robust loss are averaged (none clearly "
            "worse than the best), or one effect for everyone when no personalised DR "
            "candidate beats it by more than heterogeneity_z standard errors; every candidate's loss is in the MLflow run's "
            "artifacts learners/<outcome>_selection.json"
        ),
        "outcomes": {
            outcome: chosen_candidates(learner)
            for outcome, learner in model.outcome_models.items()
            if chosen_candidates(learner)
        },
    }
