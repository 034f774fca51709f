"""The gate stage reads the champion's files once: the comparison on the held-out rows and the
check of the request fields it needs use the same loaded model (each load is a download and an
unpickling, about a second for a small model)."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pandas as pd
from test_model_fakes import fake_model, profiles

import pipelines._train_gate as train_gate
import recommender.registry as registry
from recommender.catalog import load_catalog

CONFIG = {"gate": {"alpha": 0.1}, "registry": {"model_name": "burnout-recommender"}}


def _gate_inputs(n=200):
    holdout = profiles(n, seed=1)
    rng = np.random.default_rng(0)
    # The challenger's arm avoids 10 EE points per person; every other arm loses some.
    scores = pd.DataFrame(
        {
            "none": rng.normal(0, 1, n),
            "coaching": rng.normal(5, 1, n),
            "mindfulness": rng.normal(-10, 1, n),
            "peer_group": rng.normal(5, 1, n),
        },
        index=holdout.index,
    )
    evaluation = NS(dr_scores=scores, recommended=np.array(["mindfulness"] * n, dtype=object))
    return evaluation, NS(holdout=holdout), NS(catalog=load_catalog(), loop=None)


def test_a_passing_gate_reads_the_champion_once(monkeypatch):
    champion = fake_model(intercepts={"coaching": -5.0, "mindfulness": 0.0, "peer_group": 0.0})
    challenger = fake_model()
    asked = []

    def load_model(uri):
        asked.append(uri)
        return champion

    monkeypatch.setattr(registry, "aliases", lambda name: {"champion": "4"})
    monkeypatch.setattr(registry, "load_model", load_model)
    monkeypatch.setattr(train_gate, "gate_on_log", lambda *a, **k: (None, ""))
    evaluation, split, cohort = _gate_inputs()
    decision = train_gate.gate_stage(evaluation, split, cohort, CONFIG, model=challenger)
    # passed: so the request fields were checked against the champion too
    assert decision.passed, decision.reason
    assert decision.champion_version == "4"
    assert asked == ["models:/burnout-recommender/4"]


def test_a_champion_that_cannot_be_read_is_tried_again_by_the_next_gate(monkeypatch):
    """A failed load is not kept: the gate fails closed, and the next gate reads the store."""
    champion = fake_model(intercepts={"coaching": -5.0, "mindfulness": 0.0, "peer_group": 0.0})
    asked = []

    def load_model(uri):
        asked.append(uri)
        if len(asked) == 1:
            raise OSError("disk")
        return champion

    monkeypatch.setattr(registry, "aliases", lambda name: {"champion": "4"})
    monkeypatch.setattr(registry, "load_model", load_model)
    monkeypatch.setattr(train_gate, "gate_on_log", lambda *a, **k: (None, ""))
    evaluation, split, cohort = _gate_inputs()
    first = train_gate.gate_stage(evaluation, split, cohort, CONFIG, model=fake_model())
    assert not first.passed and "could not be valued" in first.reason
    second = train_gate.gate_stage(evaluation, split, cohort, CONFIG, model=fake_model())
    assert second.passed, second.reason
    assert len(asked) == 2
