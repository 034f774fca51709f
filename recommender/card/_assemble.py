"""Turning an evaluation report and run facts into the card's sections (plain dicts)."""

from __future__ import annotations

import pandas as pd

from recommender.card._facts import json_safe, table

__all__ = ["evaluation_facts", "subgroup_facts", "training_card_facts", "PLOT_CAPTIONS"]

PLOT_CAPTIONS = {
    "policy_values": "Policy value with intervals: learned policy, each one-arm-for-all "
    "policy and random assignment (EE points avoided per person).",
    "qini": "Qini curves per arm on the held-out part.",
    "calibration": "Calibration: predicted effect against the doubly robust effect by "
    "quantile of prediction.",
    # no number: the minimum cell is the config's, and a cell hidden because it would give a
    # small one away by subtraction is larger
    "subgroups": "Learned policy value by subgroup (suppressed cells left out).",
}


def _policy_label(name: str, control: str, offered_only: bool = False) -> str:
    # offered_only: the one-arm policies and the oracle gave arms only where the catalog
    # offers them (see recommender.evaluation.single_arm_policy)
    if name.startswith("all:"):
        arm = name[4:]
        if arm == control:
            return "usual care for all"
        return f"{arm} for all it is offered to" if offered_only else f"{arm} for all"
    return {
        "learned": "learned policy (this model)",
        "random": "random assignment",
        "oracle": "oracle (true best offered arm)" if offered_only else "oracle (true best arm)",
    }.get(name, name)


def evaluation_facts(
    report,
    *,
    secondary: pd.DataFrame | None = None,
    plots=("policy_values", "qini", "calibration"),
    carried=(),
) -> dict:
    """The evaluation section from an :class:`~recommender.evaluation.EvaluationReport`.

    Parameters
    ----------
    report : EvaluationReport
    secondary : DataFrame, optional
        Effect of the learned policy on secondary outcomes (``outcome, direction, estimate,
        lower, upper``).
    plots : sequence of str
        Names of the report's figures to show in this section.
    carried : sequence of str
        Arms the model carries over from an earlier one (a run from the log): the report
        measures the learnt arms only, so its learned policy is labelled as such.
    """
    control = report.control
    values = report.policy_values.copy()
    columns = [c for c in ("estimate", "lower", "upper", "true_value") if c in values.columns]
    values = values[columns]
    offered_only = bool(getattr(report, "offered_only", False))
    values.index = [_policy_label(str(i), control, offered_only) for i in values.index]
    if carried:
        values.index = [
            "learned policy among the learnt arms" if i == _policy_label("learned", control) else i
            for i in values.index
        ]
    gain = report.personalization_gain
    facts = {
        "alpha": report.alpha,
        "n": int(report.n),
        "statement": report.statement,
        "personalization": {
            "estimate": gain.estimate,
            "lower": gain.lower,
            "upper": gain.upper,
            "best_single_arm": report.best_single_arm,
            "adds_value": bool(report.personalization_adds_value),
        },
        "policy_values": table(values, index="policy"),
        "average_effects": table(report.average_effects, index="arm"),
        "qini": table(report.qini, index="arm"),
        "calibration": _calibration(report),
        "oracle": None,
        "secondary": None if secondary is None else table(secondary),
        "notes": [str(n) for n in report.notes],
        "plots": list(plots),
    }
    if getattr(report, "pehe", None) is not None:
        oracle = report.pehe.copy()
        facts["oracle"] = table(oracle, index="arm")
        summary = {
            k: v
            for k, v in (report.oracle or {}).items()
            if isinstance(v, (int, float)) or v is None
        }
        facts["oracle_summary"] = json_safe(summary)
    return json_safe(facts)


def _calibration(report) -> dict:
    # Per-arm slopes keep the card readable; the bins themselves are in the calibration plot
    # and in the run's evaluation/report.json.
    slopes = report.calibration_slopes
    if slopes is None or not len(slopes):
        return None
    keep = [c for c in ("estimate", "lower", "upper") if c in slopes.columns]
    frame = slopes[keep].rename(columns={"estimate": "slope"})
    return table(frame, index="arm")


def _no_arm_personalised(learner) -> bool:
    """Whether a fitted learner's selection gave every one of its arms one effect for everyone
    (:func:`recommender.model.one_effect_arms`, read from its model-selection table)."""
    from recommender.model import one_effect_arms

    arms = {str(a) for a in getattr(learner, "arms_", ())}
    return bool(arms) and set(one_effect_arms(learner)) == arms


def _propensity_text(data: dict) -> str:
    if data.get("loop"):
        return "logged: the probability with which the service drew the arm it recommended"
    if not data.get("propensity_logged"):
        return "estimated by a regularized multinomial model"
    if str(data.get("design", "")).startswith("randomized"):
        return "logged in the data (the design's shares in a trial)"
    return "logged in the data"


def subgroup_facts(report, *, min_cell: int = 11, training=None, thin_arms=None) -> dict:
    """The subgroup section: the report's table with suppressed cells marked as such.

    ``training`` (the training part's profile rows) adds ``not_held_out``: the cells of the
    training data with no one held out, which no table shows (``[grouping, cell]`` pairs).
    ``thin_arms`` (role -> arms it had fewer than ``min_cell`` training rows of) adds
    ``thin_arms_by_role``: the model's figures for those are extrapolated from other roles.
    """
    frame = getattr(report, "subgroups", None)
    if frame is None or not len(frame):
        return {"min_cell": min_cell, "table": None, "plots": []}
    missing = None if training is None else _not_held_out(frame, training)
    columns = [c for c in frame.columns if c != "suppressed"]
    rows = []
    for record in frame.to_dict(orient="records"):
        hidden = bool(record.get("suppressed", False))
        row = []
        for column in columns:
            value = record[column]
            if hidden and column not in ("grouping", "cell"):
                value = "suppressed"
            elif column == "n" and not pd.isna(value):
                value = int(value)  # a count; float only because suppressed cells hold NaN
            row.append(value)
        rows.append(row)
    shown = {"columns": [str(c) for c in columns], "rows": json_safe(rows)}
    # sets: no set of hidden cells that the published totals determine holds fewer than
    # min_cell people (older cards guarded single cells only, and say so)
    facts = {"min_cell": min_cell, "table": shown, "plots": ["subgroups"], "suppression": "sets"}
    if missing is not None:
        facts["not_held_out"] = missing
    if thin_arms:
        facts["thin_arms_by_role"] = {role: list(arms) for role, arms in thin_arms.items()}
    return facts


def _not_held_out(frame: pd.DataFrame, training: pd.DataFrame) -> list[list[str]]:
    """Cells of the training rows that the held-out table has no row for (no one held out):
    the out-of-scope list reads a group absent from the tables as absent from the data."""
    from recommender.evaluation import subgroup_frame, subgroup_labels

    held = set(zip(frame["grouping"].astype(str), frame["cell"].astype(str)))
    out = []
    for grouping, labels in subgroup_labels(subgroup_frame(training)).items():
        for cell in sorted(set(map(str, labels))):
            if (grouping, cell) not in held:
                out.append([grouping, cell])
    return out


def training_card_facts(
    *,
    model,
    report,
    recommended,
    secondary,
    holdout_features,
    treatment_train,
    treatment_holdout,
    catalog,
    data: dict,
    config: dict,
    gate,
    run_id,
    git_commit: str,
    versions: dict,
    previous_champion: str | None = None,
    created: str | None = None,
    version: str | None = None,
    aliases=None,
    fairness: dict | None = None,
    training_profiles: pd.DataFrame | None = None,
    reproduction: dict | None = None,
) -> dict:
    """Every fact of a freshly trained model's card, as a JSON-safe dict.

    Parameters
    ----------
    model : RecommendationModel
    report : EvaluationReport
        On the held-out part.
    recommended : array-like of str
        The model's recommendation for each held-out row.
    secondary : DataFrame
        The learned policy's effect on every outcome (see the training pipeline).
    holdout_features : DataFrame
        Held-out features, for the policy-summary tree.
    treatment_train, treatment_holdout : array-like of str
        Arms received, for the arm counts.
    catalog : Catalog
        For the evidence section.
    data : dict
        ``source``, ``description``, ``design``, ``sha256``, ``propensity_logged``, ``n_rows``.
    config : dict
        The training config.
    gate : GateDecision
    fairness : dict, optional
        The fairness section (:func:`recommender.card.fairness_facts` on the held-out part).
    training_profiles : DataFrame, optional
        The training part's rows, to name the groups it holds that no one was held out from.
    reproduction : dict, optional
        What retrains the model: ``command``, ``how``, ``config_sha256``, ``catalog_sha256``
        (see the training pipeline's lineage).
    """
    from recommender.card._facts import (
        arm_counts,
        learner_choice,
        complement_facts,
        evidence_facts,
        outside_counts,
        policy_summary,
        recommendation_mix,
    )
    from recommender.card._sections import DEFAULT_TEXT
    from recommender.model import model_facts, thin_arms_by_role

    arms = list(model.arms)
    caveats = [report.statement, *DEFAULT_TEXT["caveats"]]
    if "simulated" in str(data.get("source", "")):
        caveats.append(
            "This version was trained on a SIMULATED cohort: it demonstrates the "
            "method and must not be used to advise real clinicians."
        )
    # A catalog arm with no rows in the cohort: the model has no estimate for it (an answer
    # lists it as excluded), which the arm counts alone leave unsaid.
    unlearnt = [a for a in catalog.treatment_arms if a not in arms]
    if unlearnt:
        caveats.append(
            f"Catalog arm{'s' if len(unlearnt) > 1 else ''} {', '.join(unlearnt)} had no rows "
            "in the training data: the model has no estimate for "
            f"{'them' if len(unlearnt) > 1 else 'it'} and never recommends "
            f"{'them' if len(unlearnt) > 1 else 'it'} (an answer lists "
            f"{'them' if len(unlearnt) > 1 else 'it'} as excluded)."
        )
    learners = {
        o: str(getattr(m, "learner_", type(m).__name__)) for o, m in model.outcome_models.items()
    }
    n_train, n_holdout = len(treatment_train), len(treatment_holdout)
    loop = data.get("loop")
    carry = loop or data.get("small_arms") or {}
    carried = [c["arm"] for c in carry.get("carried_arms") or []]
    return json_safe(
        {
            "schema_version": 1,
            "model": {
                "name": config["registry"]["model_name"],
                "version": version,
                "aliases": list(aliases or []),
                "created": created,
                "run_id": run_id,
                "experiment": config["registry"]["experiment"],
                "git_commit": git_commit,
                "data_sha256": data.get("sha256"),
                "catalog_version": model.catalog_version,
                "learners": learners,
                # how auto chose them, per arm: an auditor's "why this learner"
                "learner_choice": learner_choice(model, config["learner"]["learner"]),
                # the arms answers say have one effect for everyone: the card says so too
                "one_effect_arms": model_facts(model)["one_effect_arms"],
                # ... in the outcome that ranks the arms; the others' are in learner_choice
                "one_effect_outcome": model.primary,
                # outcomes whose every arm got one effect for everyone: no learner personalises
                # them, whatever the learner's name says
                "one_effect_outcomes": [
                    o for o, m in model.outcome_models.items() if _no_arm_personalised(m)
                ],
                "seed": config["seed"],
                "previous_champion": previous_champion,
                "gate": gate.to_dict(),
                "package_versions": versions,
            },
            "training_data": {
                "source": data.get("source"),
                "description": data.get("description"),
                "design": data.get("design"),
                "propensity": _propensity_text(data),
                "n_rows": data.get("n_rows"),
                "n_train": n_train,
                "n_holdout": n_holdout,
                "holdout_share": config["split"]["holdout_share"],
                "split": (
                    f"by person, seed {config['seed']}: a person is held out when a draw from "
                    "their salted hash and the seed falls below the held-out share, so all of "
                    "a person's answers fall on one side"
                    if loop
                    else f"stratified by arm, seed {config['seed']}"
                ),
                "outcomes": ", ".join(f"{o} (follow-up minus baseline)" for o in model.outcomes),
                "arm_counts": arm_counts(treatment_train, treatment_holdout, arms),
                "outside": outside_counts(model, holdout_features),
                "loop": data.get("loop"),
                "reproduction": reproduction,
                "small_arms": data.get("small_arms"),
            },
            "evaluation": evaluation_facts(report, secondary=secondary, carried=carried),
            "subgroups": subgroup_facts(
                report,
                min_cell=config["card"]["min_cell"],
                training=training_profiles,
                thin_arms=thin_arms_by_role(
                    getattr(model, "metadata", None) or {}, config["card"]["min_cell"]
                ),
            ),
            "fairness": fairness,
            "recommendation_mix": recommendation_mix(recommended, arms),
            "policy_summary": policy_summary(
                holdout_features,
                recommended,
                max_depth=config["card"]["policy_tree_depth"],
                random_state=config["seed"],
            ),
            "evidence": evidence_facts(catalog, arms),
            "complements": complement_facts(catalog),
            "caveats": caveats,
        }
    )
