"""The rollout bench's retraining does what the product does when the champion cannot be
valued on the log: the gate fails closed and the champion keeps serving (it used to crash)."""

from __future__ import annotations

import pandas as pd

from bench._program import staff_cohort
from bench.rollout import _log_rows, retrain, serve_cycle
from recommender.catalog import load_catalog
from recommender.model import evidence_model
from recommender.service import load_serve_config


def test_a_champion_recommending_an_arm_the_log_cannot_score_keeps_serving():
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
    model, status = retrain(log, catalog, seed=0, champion=evidence)
    assert (model, status) == (evidence, "gate")
