"""The gate on a log that cannot measure the difference between challenger and champion.

A greedy log serves every person one arm with probability 1: it holds no outcome for the arm
a challenger would serve instead. The doubly robust difference there is the outcome model's
extrapolation, with an interval as narrow as a measured one; the gate used to pass it (in the
simulator it then promoted challengers truly worse than the champion). It now keeps the
champion and says why; a log with exploration still promotes."""

from __future__ import annotations

import re

import numpy as np
import pytest

from test_loop_carry import SETTINGS, _retrain, catalog, evidence  # noqa: F401 (fixtures)

from bench._program import staff_cohort
from bench.rollout_cycle import _log_rows, serve_cycle
from pipelines._train_config import config_from_mapping
from pipelines.train import Cohort, gate_stage
from recommender.registry import gate_decision
from recommender.service import load_serve_config


def _served_log(evidence, catalog, policy: str, *, seed: int):
    cohort = staff_cohort("default", 2000, seed=seed)
    served, probability, _, candidates = serve_cycle(
        evidence, cohort, catalog, load_serve_config(), policy=policy, cycle=0, salt="s"
    )
    return _log_rows(
        cohort,
        served,
        probability,
        0,
        catalog.control,
        salt="s",
        policy=policy,
        candidates=candidates,
    )


def _gate(joined, catalog, evidence, monkeypatch):
    """The product's from-log stages, then its gate against ``evidence`` as the champion."""
    import recommender.registry as registry

    model, cohort, split, evaluation = _retrain(joined, catalog, evidence)
    monkeypatch.setattr(registry, "aliases", lambda name: {"champion": "1"})
    monkeypatch.setattr(registry, "load_model", lambda uri: evidence)
    decision = gate_stage(evaluation, split, cohort, config_from_mapping(SETTINGS), model=model)
    return decision, split, evaluation, model


def test_a_greedy_log_cannot_promote_a_challenger_that_serves_other_arms(
    catalog, evidence, monkeypatch
):
    joined = _served_log(evidence, catalog, "greedy", seed=101)
    assert np.allclose(joined["propensity"], 1.0)
    decision, split, evaluation, _ = _gate(joined, catalog, evidence, monkeypatch)
    print(decision.reason)
    champion_arms = evidence.recommend(
        evidence.predict_effect(split.holdout)[list(evidence.treatment_arms)],
        eligible=evidence.eligibility(split.holdout),
    ).to_numpy()
    assert (evaluation.recommended != champion_arms).sum() > 50  # it does serve other arms
    assert not decision.passed
    assert "cannot measure" in decision.reason and "--force" in decision.reason
    assert "with probability 1" in decision.reason
    # the figures are still given, named as extrapolation
    assert decision.difference is not None and "extrapolation" in decision.reason


def test_judged_on_the_whole_log_a_greedy_log_cannot_promote_either(catalog, evidence, monkeypatch):
    """A run trained on a file is judged on the service's log (``_gate_on_log``)."""
    import pipelines._from_log as from_log
    from pipelines.train import policy_scores_on_log

    joined = _served_log(evidence, catalog, "greedy", seed=102)
    _, split, evaluation, challenger = _gate(joined, catalog, evidence, monkeypatch)
    settings = config_from_mapping(SETTINGS)
    frame, scores, change, _ = policy_scores_on_log(joined, settings, catalog)
    monkeypatch.setattr(from_log, "log_policy_frame", lambda *a, **k: (frame, scores, change))
    cohort = Cohort(
        frame=split.holdout,
        catalog=catalog,
        source="file",
        description="a file",
        sha256="-",
        design="randomized",
    )
    decision = gate_stage(evaluation, split, cohort, settings, model=challenger)
    print(decision.reason)
    assert not decision.passed
    assert "cannot measure" in decision.reason and "Judged on the service's log" in decision.reason


def test_a_log_with_exploration_is_still_judged_on_its_difference(catalog, evidence, monkeypatch):
    joined = _served_log(evidence, catalog, "thompson", seed=101)
    decision, split, evaluation, _ = _gate(joined, catalog, evidence, monkeypatch)
    assert "cannot measure" not in decision.reason
    assert decision.difference is not None
    # Thompson sampling draws among the arms in equipoise only: where the challenger picks an
    # arm outside a row's candidates, the log could not have served it there either, though
    # the row's probability is below 1; the reason counts those rows too
    certain = np.isclose(split.holdout["propensity"], 1.0)
    differs = (
        evaluation.recommended
        != evidence.recommend(
            evidence.predict_effect(split.holdout)[list(evidence.treatment_arms)],
            eligible=evidence.eligibility(split.holdout),
        ).to_numpy()
    )
    counted = re.search(r"on ([\d,]+) of the ([\d,]+) rows where", decision.reason)
    assert int(counted[2].replace(",", "")) == differs.sum()
    assert int(counted[1].replace(",", "")) > (differs & certain).sum()
    # the difference is judged where the log measures it; the outcome model's figure for the
    # other rows is given apart, and the two add up to the whole doubly robust difference
    assert decision.extrapolated is not None
    whole = decision.challenger.estimate - decision.champion.estimate
    assert decision.difference.estimate + decision.extrapolated.estimate == pytest.approx(whole)
    assert "difference where the log measures it" in decision.reason
    assert "an extrapolation, not a measurement" in decision.reason


def test_unmeasured_rows_are_those_a_log_could_not_have_served_either_way():
    import pandas as pd

    from pipelines.train import unmeasured_rows

    frame = pd.DataFrame(
        {
            "intervention": ["a", "a", "b", "none", "b"],
            "propensity": [1.0, 0.5, 0.5, 1.0, 0.4],
        }
    )
    challenger = np.array(["b", "b", "a", "none", "c"])
    champion = np.array(["a", "a", "b", "none", "b"])
    differs, unmeasured = unmeasured_rows(frame, challenger, champion)
    assert differs.tolist() == [True, True, True, False, True]
    # row 0: served "a" with certainty, so "b" had probability 0; row 4: "c" never served
    assert unmeasured.tolist() == [True, False, False, False, True]
    # with every candidate's logged probability (as the log keeps them): row 1 was drawn
    # between "a" and "none" only, so "b" had probability 0 there too
    frame["probabilities"] = [
        '{"a": 1.0}',
        '{"a": 0.5, "none": 0.5}',
        '{"a": 0.5, "b": 0.5}',
        '{"none": 1.0}',
        '{"b": 0.4, "c": 0.6}',
    ]
    differs, unmeasured = unmeasured_rows(frame, challenger, champion)
    assert unmeasured.tolist() == [True, True, False, False, True]


def test_gate_fails_when_no_row_where_the_policies_differ_is_measured():
    rng = np.random.default_rng(4)
    champion = rng.normal(2, 3, 400)
    challenger = champion + 0.5  # clearly "better", by the outcome model alone
    differs = np.arange(400) < 150
    decision = gate_decision(
        challenger, champion, champion_version="3", differs=differs, unmeasured=differs
    )
    assert not decision.passed and decision.difference.lower > 0
    assert "cannot measure how the challenger differs from champion version 3" in decision.reason
    assert "on 150 of the 150 rows" in decision.reason
    # some rows measured: judged on the difference, and the reason says how many were not
    partly = differs & (np.arange(400) < 100)
    decision = gate_decision(
        challenger, champion, champion_version="3", differs=differs, unmeasured=partly
    )
    assert decision.passed and "on 100 of the 150 rows" in decision.reason
    assert "outcome model alone" in decision.reason
    # no row differs: nothing to measure, nothing said
    same = gate_decision(champion, champion.copy(), differs=~differs & False, unmeasured=differs)
    assert same.passed and "rows where" not in same.reason
    with pytest.raises(Exception, match="one per row"):
        gate_decision(challenger, champion, differs=differs[:3], unmeasured=differs[:3])


def test_the_evidence_only_gate_tells_measured_from_unmeasured_rows_too(
    catalog, evidence, monkeypatch
):
    """``train --evidence-only`` against a champion learnt from a greedy log: the evidence
    model's arms were served with probability 1, the champion's other arms never there, so
    nothing about their difference is measured. The evidence gate judged it on the outcome
    model's extrapolation like any measured difference."""
    import pipelines._from_log as from_log
    import recommender.registry as registry
    from pipelines._train_evidence import evidence_gate
    from pipelines.train import policy_scores_on_log

    joined = _served_log(evidence, catalog, "greedy", seed=103)
    champion, *_ = _retrain(joined, catalog, evidence)
    settings = config_from_mapping(SETTINGS)
    frame, scores, change, _ = policy_scores_on_log(joined, settings, catalog)
    monkeypatch.setattr(from_log, "log_policy_frame", lambda *a, **k: (frame, scores, change))
    monkeypatch.setattr(registry, "aliases", lambda name: {"champion": "4"})
    monkeypatch.setattr(registry, "load_model", lambda uri: champion)
    decision = evidence_gate(evidence, catalog, settings)
    print(decision.reason)
    assert not decision.passed
    assert "cannot measure how the challenger differs from champion version 4" in decision.reason
    assert "Judged on the service's log" in decision.reason
