"""One cycle of ``bench.rollout``'s simulated program: serve a cohort (the shipped policy, or
uniformly), log it as the service's audit store would with the follow-up answered, read the
truth the simulator keeps (true effects, each person's truly best arm), and retrain on the log
through the product's from-log path and promotion gate.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from bench._program import followup_under

__all__ = ["serve_cycle", "oracle_arms", "oracle_value", "retrain"]

_LEARNER = {"learner": "t", "n_folds": 2}


def _settings(seed: int) -> dict:
    from pipelines.train import config_from_mapping

    return config_from_mapping(
        {
            "seed": seed,
            "outcomes": ["ee"],
            "primary": "ee",
            "learner": _LEARNER,
            "split": {"holdout_share": 0.3},
        }
    )


def _profiles(cohort: pd.DataFrame) -> list[dict]:
    from recommender.cohort import PROFILE_COLUMNS

    records = cohort[list(PROFILE_COLUMNS)].astype(object).to_dict(orient="records")
    return [
        {
            k: (str(v) if k in ("gender", "role", "specialty", "setting", "person_id") else v)
            for k, v in r.items()
        }
        for r in records
    ]


def _hash(person_id: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}|{person_id}".encode()).hexdigest()


def serve_cycle(model, cohort, catalog, serve, *, policy: str, cycle: int, salt: str):
    """Serve one cycle: (served arm, its probability, the model's best arm, every candidate's
    probability as the audit store keeps it) per person."""
    import dataclasses

    from recommender.policy import assign, offered_arms, rank_arms, triage

    rule = dataclasses.replace(
        serve.exploration, policy=policy if policy != "uniform" else "greedy", cycle=cycle
    )
    profiles = _profiles(cohort)
    modelled = set(model.treatment_arms)
    scores = model.score(cohort, alpha=serve.alpha)
    served, probability, best, candidates = [], [], [], []
    for k, row in enumerate(profiles):
        arms, _ = offered_arms(catalog, row, modelled=modelled)
        if policy == "uniform":
            eligible, _ = offered_arms(catalog, row)
            choices = [catalog.control, *eligible]
            u = (
                int(
                    hashlib.sha256(f"{_hash(row['person_id'], salt)}|{cycle}".encode()).hexdigest()[
                        :15
                    ],
                    16,
                )
                / 16**15
            )
            served.append(choices[int(u * len(choices))])
            probability.append(1.0 / len(choices))
            best.append(served[-1])
            candidates.append(json.dumps(dict.fromkeys(choices, 1.0 / len(choices))))
            continue
        effects = {}
        for arm in arms:
            values = [scores[f"{kind}_{arm}"].iloc[k] for kind in ("effect", "lower", "upper")]
            if np.isfinite(values).all():
                effects[arm] = (*values, 0.0, 0.0)
        ranking = rank_arms(effects, control=catalog.control, coverage=serve.coverage)
        routine = triage(row, serve.safety).level == "routine"
        given = assign(
            ranking, _hash(row["person_id"], salt), rule, explore=routine, control=catalog.control
        )
        served.append(given.arm)
        probability.append(given.probability)
        candidates.append(json.dumps(given.probabilities))
        best.append(ranking.recommended)
    return (
        np.array(served, dtype=object),
        np.array(probability),
        np.array(best, dtype=object),
        candidates,
    )


def _true_effects(cohort, served, control):
    effect = np.zeros(len(cohort))
    for arm in set(served) - {control}:
        rows = served == arm
        effect[rows] = cohort[f"true_effect_{arm}"].to_numpy(dtype=float)[rows]
    return effect


def oracle_arms(cohort, catalog) -> np.ndarray:
    """Each person's truly best eligible arm (usual care when no arm truly helps)."""
    from recommender.policy import offered_arms

    best = []
    for k, row in enumerate(_profiles(cohort)):
        arms, _ = offered_arms(catalog, row)
        options = [(0.0, catalog.control)]
        options += [(float(cohort[f"true_effect_{a}"].iloc[k]), a) for a in arms]
        best.append(min(options, key=lambda o: o[0])[1])
    return np.array(best, dtype=object)


def oracle_value(cohort, catalog) -> float:
    """Mean true effect of each person's truly best eligible arm (usual care counts as 0)."""
    return float(_true_effects(cohort, oracle_arms(cohort, catalog), catalog.control).mean())


def _log_rows(cohort, served, probability, cycle, control, *, salt, policy, candidates):
    """One cycle's log as :func:`recommender.service.logged_cohort` returns it (everyone
    takes the arm recommended, and answers the follow-up survey)."""
    from recommender.cohort import PROFILE_COLUMNS

    follow = followup_under(cohort, served, control=control)
    frame = cohort[list(PROFILE_COLUMNS)].copy().reset_index(drop=True)
    frame["person_id"] = [_hash(str(p), salt) for p in frame["person_id"]]
    frame["intervention"] = served
    frame["propensity"] = probability
    for column in follow.columns:
        frame[column] = follow[column].to_numpy()
    frame["probabilities"] = candidates
    frame["arm_taken"] = served
    frame["cycle"] = cycle
    frame["policy"] = policy
    frame["request_id"] = [f"c{cycle}-{k}" for k in range(len(frame))]
    return frame


def retrain(log: pd.DataFrame, catalog, seed: int, champion, *, forced: bool = False):
    """Retrain on the whole log through the product's from-log path and gate the result.

    ``log`` holds what the service's audit store would return joined with outcomes
    (:func:`recommender.service.logged_cohort`). The training table (arms without overlap left
    out, no run without usual-care rows) comes from :func:`pipelines.train.log_training_frame`,
    then the pipeline's own split, fit, carry (arms too rarely served to learn keep
    ``champion``'s estimates) and evaluate stages run, and the challenger replaces
    ``champion`` only if it passes the promotion gate on the held-out part of the log (the
    product's :func:`recommender.registry.gate_decision` on the same doubly robust scores; all
    held-out rows, as the product does when it cannot tell which rows the champion saw). This
    is ``recommender train --from-log`` without MLflow, the card and the registry.

    A challenger the log cannot measure against the champion (it serves other arms only on
    rows the log served with probability 1, as in a greedy log) fails the product's gate;
    ``forced`` promotes it anyway when it would otherwise pass, as a person does with
    ``recommender promote VERSION --force``.

    Returns ``(model, status)``: the model to serve next and ``"promoted"``, ``"gate"`` (the
    challenger failed the gate, or the champion could not be valued on the log: fails closed) or ``"refused"`` (the product would refuse to train: too few
    usual-care rows or an arm too small for its fit or its held-out evaluation).
    """
    from pipelines.train import Cohort, carry_stage, evaluate_stage, fit_min_arm_rows, fit_stage
    from pipelines.train import log_training_frame, policy_on_log, split_stage, unmeasured_rows
    from recommender.cohort import typed_cohort
    from recommender.errors import InputError
    from recommender.registry import gate_decision, policy_value_scores

    settings = _settings(seed)
    try:
        frame, summary = log_training_frame(log, catalog, min_arm_rows=fit_min_arm_rows(settings))
        frame = typed_cohort(frame, arms=catalog.arm_ids, control=catalog.control)
        cohort = Cohort(
            frame=frame,
            catalog=catalog,
            source="service log",
            description="bench log",
            sha256="-",
            design="observational (the service's logged probabilities of the recommended arm)",
            loop=summary,
        )
        split = split_stage(cohort, settings)
        model = fit_stage(split, cohort, settings)
        model = carry_stage(model, cohort, settings, previous=champion)
        evaluation = evaluate_stage(model, split, cohort, settings)
    except InputError:
        return champion, "refused"
    control = catalog.control
    challenger = policy_value_scores(evaluation.dr_scores, evaluation.recommended, control=control)
    try:
        arms, scores = policy_on_log(champion, split.holdout, evaluation.dr_scores, control=control)
        held = policy_value_scores(scores, arms, control=control)
    except InputError:
        # The champion recommends an arm this log cannot score (left out for too few rows):
        # the product's gate fails closed then, and the champion stays (pipelines' gate_stage).
        return champion, "gate"
    differs, unmeasured = (
        (None, None) if forced else unmeasured_rows(split.holdout, evaluation.recommended, arms)
    )
    decision = gate_decision(
        challenger,
        held,
        alpha=settings["gate"]["alpha"],
        differs=differs,
        unmeasured=unmeasured,
    )
    return (model, "promoted") if decision.passed else (champion, "gate")
