"""The rollout bench's retraining does what the product does when the champion recommends an
arm the log served too rarely to learn: the retrained model carries that arm over with the
champion's estimate, and the gate values both models on the log (the carried arm by that
estimate) instead of failing closed."""

from __future__ import annotations

import pandas as pd

from bench._program import staff_cohort
from bench.rollout_cycle import _log_rows, retrain, serve_cycle
from recommender.catalog import load_catalog
from recommender.model import evidence_model
from recommender.service import load_serve_config


def test_a_champion_recommending_an_arm_the_log_cannot_learn_is_valued_not_failed_closed():
    from pipelines.train import policy_on_log

    catalog, serve = load_catalog(), load_serve_config()
    evidence = evidence_model(catalog)
    # A uniform first cycle of 800 staff: coaching (not offered to nurses) is served too
    # rarely to be learnt, while the evidence-only champion recommends it to physicians.
    cohort = staff_cohort("local", 800, seed=10_000)
    served, probability, _, candidates = serve_cycle(
        evidence, cohort, catalog, serve, policy="uniform", cycle=0, salt="bench-0"
    )
    counts = pd.Series(served).value_counts()
    assert counts["coaching"] < 101 and counts[catalog.control] >= 101
    log = _log_rows(
        cohort,
        served,
        probability,
        0,
        catalog.control,
        salt="bench-0",
        policy="uniform",
        candidates=candidates,
    )
    # The champion's coaching picks have no doubly robust column on this log (its rows are
    # left out); they get one from the estimate, so the champion can be valued.
    kept = log[log["intervention"] != "coaching"].reset_index(drop=True)
    scores = pd.DataFrame({"none": 0.0}, index=kept.index)
    arms, valued = policy_on_log(evidence, kept, scores, control=catalog.control)
    assert "coaching" in set(arms) and "coaching" in valued.columns
    # The gate valued that champion on the log's held-out people (a champion that cannot be
    # valued fails closed and is never replaced) and found the challenger learnt from 800
    # uniform rows not worse: it serves next.
    model, status = retrain(log, catalog, seed=0, champion=evidence)
    assert status == "promoted" and model is not evidence
    assert "coaching" in model.treatment_arms
