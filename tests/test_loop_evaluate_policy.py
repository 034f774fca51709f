"""What `recommender evaluate-policy --from-log` says besides its figures: the effective rows
behind extreme weights, rows where a policy picks an arm the log could not have served there,
and whether personalizing beats the best single arm."""

from __future__ import annotations

import numpy as np
import pytest
from test_loop_carry import COMMON, SETTINGS, _log, catalog, evidence  # noqa: F401 (fixtures)

from pipelines._train_config import config_from_mapping
from pipelines.train import policy_on_log, policy_scores_on_log
from recommender.evaluation import off_policy_values


def _valued(joined, catalog, model):
    """The log's doubly robust scores and the rows' frame, as evaluate-policy builds them."""
    settings = config_from_mapping(SETTINGS)
    frame, scores, change, _ = policy_scores_on_log(joined, settings, catalog)
    return frame, scores, change


def test_a_few_rows_logged_with_tiny_probabilities_are_named_by_their_effective_rows():
    rng = np.random.default_rng(0)
    n = 2000
    logged = rng.choice(["none", "a"], size=n)
    propensity = np.full(n, 0.5)
    propensity[np.flatnonzero(logged == "a")[:3]] = 0.001  # three answers drawn at 1 in 1000
    outcome = rng.normal(size=n)
    values = off_policy_values(logged, propensity, outcome, np.full(n, "a"))
    # about 3 rows carry the policy's weights: its effective rows say so, not n (the smaller
    # of the policy's and usual care's)
    assert values["ips"].n == n and values["ips"].effective_n < 10
    balanced = off_policy_values(logged, np.full(n, 0.5), outcome, np.full(n, "a"))
    fewer = min((logged == "a").sum(), (logged == "none").sum())
    assert balanced["ips"].effective_n == pytest.approx(fewer)


def test_the_notes_name_extreme_weights_and_whether_personalizing_adds_anything(catalog, evidence):
    from pipelines._from_log import off_policy_notes, off_policy_table

    joined = _log(COMMON, n=2000, seed=8)
    # a handful of usual-care answers logged at 1 in 500: they carry usual care's weights
    rows = np.flatnonzero(joined["intervention"].to_numpy() == "none")[:4]
    joined.loc[rows, "propensity"] = 0.002
    frame, scores, change = _valued(joined, catalog, evidence)
    settings = dict(control="none", alpha=0.1, label="champion (version 1)")
    table = off_policy_table(evidence, frame, scores, change, **settings)
    assert all(len(row) == 8 and row[6] < 100 for row in table)
    notes = off_policy_notes(evidence, frame, scores, table, **settings)
    assert any("effective rows of 2,000 (rows logged with small probabilities" in n for n in notes)
    # the log's arms have one effect for everyone: personalizing cannot beat the best one
    said = [n for n in notes if "personalizing" in n]
    assert (
        len(said) == 1
        and "peer_group for everyone it is offered to (the best single arm" in said[0]
    )
    assert "personalizing adds to" not in said[0] and "CI" in said[0]


def test_a_policy_picking_arms_a_greedy_log_never_served_there_is_not_called_measured(
    catalog, evidence
):
    from pipelines._from_log import off_policy_notes, off_policy_table

    joined = _log({"none": 0.3, "coaching": 0.4, "mindfulness": 0.3}, n=2000, seed=9)
    joined["propensity"] = 1.0  # served greedily: each row says nothing about other arms
    frame, scores, change = _valued(joined, catalog, evidence)
    arms, _ = policy_on_log(evidence, frame, scores, control="none")
    picks_other = (arms != frame["intervention"].astype(str).to_numpy()).sum()
    assert picks_other > 100
    settings = dict(control="none", alpha=0.1, label="champion (version 1)")
    table = off_policy_table(evidence, frame, scores, change, **settings)
    notes = off_policy_notes(evidence, frame, scores, table, **settings)
    assert any(
        f"on {picks_other:,} of 2,000 rows it picks an arm the log could not have served" in n
        and "not wholly measured" in n
        for n in notes
    )


def test_few_usual_care_rows_are_named_as_such_not_as_extreme_weights(catalog, evidence):
    from pipelines._from_log import off_policy_notes, off_policy_table

    # a greedy log serves usual care to few: every weight is 1, the rows are simply few
    joined = _log({"none": 0.03, "coaching": 0.5, "mindfulness": 0.47}, n=2000, seed=10)
    joined["propensity"] = 1.0
    frame, scores, change = _valued(joined, catalog, evidence)
    settings = dict(control="none", alpha=0.1, label="version 2")
    table = off_policy_table(evidence, frame, scores, change, **settings)
    notes = off_policy_notes(evidence, frame, scores, table, **settings)
    usual = int((frame["intervention"].astype(str) == "none").sum())
    assert any(f"only {usual:,} rows were served usual care" in n for n in notes)
    assert not any("small probabilities" in n for n in notes)
