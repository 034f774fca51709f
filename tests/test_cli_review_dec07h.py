"""Defects a data scientist's and an auditor's review of the CLI and the model card found
(session dec07h), each reproduced here before it was fixed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.card import policy_summary


def _physicians_mixed_after_55(n: int = 2000) -> tuple[pd.DataFrame, np.ndarray]:
    """Nurses get mindfulness, physicians coaching; among physicians over 55 three in ten get
    mindfulness, so a gini split on age lowers impurity while both its sides stay coaching."""
    rng = np.random.default_rng(0)
    profiles = pd.DataFrame(
        {
            "role": rng.choice(["nurse", "physician"], n),
            "age": rng.integers(25, 70, n).astype(float),
        }
    )
    recommended = np.where(profiles["role"] == "nurse", "mindfulness", "coaching").astype(object)
    older = (profiles["role"] == "physician") & (profiles["age"] > 55)
    recommended[older & (rng.random(n) < 0.3)] = "mindfulness"
    return profiles, recommended


def test_policy_summary_shows_no_split_whose_branches_recommend_the_same():
    # The card's policy summary read `age <= 55.5: coaching / age > 55.5: coaching` (and in a
    # trained card `age <= 62.5 / > 62.5`, both coaching): an auditor reads that age decides.
    profiles, recommended = _physicians_mixed_after_55()
    summary = policy_summary(profiles, recommended, max_depth=3)
    assert summary["rules"] == (
        "|--- role is not nurse\n"
        "|   |--- class: coaching\n"
        "|--- role is nurse\n"
        "|   |--- class: mindfulness\n"
    )
    # the same tree, only written shorter: what it reproduces is unchanged
    expected = np.where(profiles["role"] == "nurse", "mindfulness", "coaching")
    assert summary["fidelity"] == float(np.mean(expected == recommended))


def test_policy_summary_keeps_a_split_that_changes_the_recommendation():
    profiles, _ = _physicians_mixed_after_55()
    recommended = np.where(
        profiles["role"] == "nurse",
        "mindfulness",
        np.where(profiles["age"] > 55, "peer_group", "coaching"),
    )
    summary = policy_summary(profiles, recommended, max_depth=3)
    assert "age <= 55.5" in summary["rules"] and "age > 55.5" in summary["rules"]
    assert "class: peer_group" in summary["rules"]
    assert summary["fidelity"] == 1.0
