"""The gate stage: the challenger against the current champion on the same held-out rows."""

from __future__ import annotations

import dataclasses

import numpy as np

from pipelines._train_cohort import Cohort, Split
from pipelines._train_evaluate import Evaluation
from pipelines._train_key import key_fingerprint, person_hashes, training_key

__all__ = ["gate_stage"]

# Fewest held-out rows unseen by the champion on which the gate compares (else all rows).
_GATE_MIN_ROWS = 200


def gate_stage(evaluation: Evaluation, split: Split, cohort: Cohort, config: dict):
    """Compare with the current champion on the same held-out rows and scores.

    No champion: the challenger passes. A champion that cannot be loaded or scored on these
    rows fails the gate closed (a person can still promote by hand after review).
    """
    from recommender.registry import (
        aliases,
        gate_decision,
        load_model,
        policy_value_scores,
    )

    alpha = config["gate"]["alpha"]
    control = cohort.catalog.control
    note = ""
    challenger = policy_value_scores(evaluation.dr_scores, evaluation.recommended, control=control)
    name = config["registry"]["model_name"]
    version = aliases(name).get("champion")
    if version is None:
        return gate_decision(challenger, alpha=alpha)
    try:
        champion_model = load_model(f"models:/{name}/{version}")
        champion_effects = champion_model.predict_effect(split.holdout)
        champion_recommended = champion_model.recommend(
            champion_effects, eligible=champion_model.eligibility(split.holdout)
        ).to_numpy()
        champion = policy_value_scores(evaluation.dr_scores, champion_recommended, control=control)
        # A champion trained on some of these rows would be graded on data it has fitted,
        # which flatters it; compare on the rows neither model has seen when enough remain.
        seen = champion_model.metadata.get("training_person_hashes")
        key = training_key(create=False)
        if seen is not None and "person_id" in split.holdout.columns:
            if key is None or (
                champion_model.metadata.get("training_key_id") != key_fingerprint(key)
            ):
                # Hashes under another key (another machine, an older model) match nothing.
                note = (
                    " The champion's training rows could not be recognised (its person "
                    "hashes use a training key this machine does not hold), so the gate "
                    "compared on all held-out rows, some of which the champion may have "
                    "been trained on."
                )
            else:
                unseen = ~np.isin(person_hashes(split.holdout["person_id"], key), np.asarray(seen))
                if unseen.sum() >= max(_GATE_MIN_ROWS, 0.25 * len(unseen)):
                    challenger, champion = challenger[unseen], champion[unseen]
    except Exception as error:  # noqa: BLE001 - any failure means "not comparable": fail closed
        from recommender.registry import GateDecision, estimate

        return GateDecision(
            passed=False,
            alpha=alpha,
            challenger=estimate(challenger, alpha=alpha),
            champion_version=str(version),
            reason=(
                f"champion version {version} could not be valued on this run's held-out "
                f"data ({type(error).__name__}: {error}); the challenger stays challenger "
                "until a person promotes it"
            ),
        )
    decision = gate_decision(challenger, champion, alpha=alpha, champion_version=str(version))
    return dataclasses.replace(decision, reason=decision.reason + note) if note else decision
