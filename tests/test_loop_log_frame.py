"""The training table from the log: arms without overlap are left out, and the probabilities of
the rows kept are taken given that no left-out arm was served."""

import json

import numpy as np
import pandas as pd
import pytest

from bench._program import staff_cohort
from pipelines.train import log_training_frame
from recommender.catalog import load_catalog
from recommender.cohort import PROFILE_COLUMNS
from recommender.evaluation import off_policy_values

SHARES = {"none": 0.3, "coaching": 0.5, "peer_group": 0.2}


def _joined(n=4000, seed=3):
    """A log where every routine profile was served from SHARES; coaching's true effect -2."""
    staff = staff_cohort("default", n, seed=seed)
    # not the staff cohort's own stream: the arms would follow the roles it drew
    rng = np.random.default_rng([seed, 1])
    arms = np.array(list(SHARES))
    served = rng.choice(arms, size=n, p=list(SHARES.values()))
    joined = staff[list(PROFILE_COLUMNS)].copy()
    joined["intervention"] = served
    joined["propensity"] = [SHARES[a] for a in served]
    joined["probabilities"] = json.dumps(SHARES)
    # Follow-ups without noise: usual care keeps the baseline, coaching lowers EE by 2 (not
    # below 0, the scale's least, as the service records outcomes and the contract reads them).
    joined["ee_followup"] = np.clip(joined["ee"] - np.where(served == "coaching", 2, 0), 0, None)
    joined["dp_followup"] = joined["dp"]
    joined["pa_followup"] = joined["pa"]
    joined["arm_taken"] = served
    joined["request_id"] = [f"r{k}" for k in range(n)]
    joined["person_id"] = [f"{k:064x}" for k in range(n)]
    joined["cycle"], joined["policy"] = 0, "thompson"
    return joined


def test_left_out_arms_take_their_probability_out_of_the_kept_rows():
    joined = _joined()
    rare = int((joined["intervention"] == "peer_group").sum())
    frame, summary = log_training_frame(joined, load_catalog(), min_arm_rows=rare + 1)
    assert "peer_group" in summary["arms_without_overlap"]
    assert len(frame) == len(joined) - rare
    expected = {arm: share / (1 - SHARES["peer_group"]) for arm, share in SHARES.items()}
    assert frame["propensity"].to_numpy() == pytest.approx(
        [expected[a] for a in frame["intervention"]]
    )
    # So inverse-probability weights on the kept rows stay unbiased: coaching for all is worth
    # -2 EE points against usual care (with the raw probabilities it would read -2 / 0.8).
    change = (frame["ee_followup"] - frame["ee"]).to_numpy(dtype=float)
    value = off_policy_values(
        frame["intervention"].to_numpy(), frame["propensity"], change, ["coaching"] * len(frame)
    )["ips"]
    assert value.estimate == pytest.approx(-2.0, abs=0.1)  # sd of the estimate 0.03
    raw = off_policy_values(
        frame["intervention"].to_numpy(),
        [SHARES[a] for a in frame["intervention"]],
        change,
        ["coaching"] * len(frame),
    )["ips"]
    assert raw.estimate < -2.3


def test_without_left_out_arms_or_logged_candidates_the_logged_probability_stays():
    joined = _joined(n=600)
    frame, summary = log_training_frame(joined, load_catalog(), min_arm_rows=1)
    assert summary["arms_without_overlap"] == [
        a for a in load_catalog().treatment_arms if a not in SHARES
    ]
    assert frame["propensity"].to_numpy() == pytest.approx(joined["propensity"].to_numpy())
    rare = int((joined["intervention"] == "peer_group").sum())
    no_candidates = joined.drop(columns=["probabilities"])
    frame, _ = log_training_frame(no_candidates, load_catalog(), min_arm_rows=rare + 1)
    kept = no_candidates[no_candidates["intervention"] != "peer_group"]
    assert frame["propensity"].to_numpy() == pytest.approx(kept["propensity"].to_numpy())
    assert isinstance(frame, pd.DataFrame)
