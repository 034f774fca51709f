"""One base for the learners' shared steps changed no output.

Predictions of a fixed fit match those saved from the learners before the change
(tests/fixtures, made once by the code of commit 9fa4a91 with ``_predictions`` below for each
learner, saved by ``np.savez_compressed``)."""

from pathlib import Path

import numpy as np
import pytest

from recommender.uplift import UpliftModel
from recommender.uplift._synthetic import make_uplift_cohort

FIXTURE = Path(__file__).parent / "fixtures" / "uplift_main_predictions.npz"
ARMS = ("none", "coaching", "mindfulness", "peer_group")


def _predictions(learner: str) -> dict:
    X, t, y, p, _ = make_uplift_cohort(
        1500, arms=ARMS, seed=5, noise=3.0, assignment="observational"
    )
    fresh, *_ = make_uplift_cohort(200, arms=ARMS, seed=6)
    model = UpliftModel(learner=learner, random_state=3, calibrate_intervals=False).fit(
        X, t, y, propensity=p
    )
    M = model.encoder_.transform(fresh)
    return {
        "effect": model.predict_effect(fresh).to_numpy(),
        "fold_effects": model.estimator_.fold_effects(M),
        "contrib": model.contributions(fresh, "coaching").to_numpy(),
    }


@pytest.mark.parametrize("learner", ["auto", "t", "x", "dr"])
def test_same_seed_same_model_as_before_the_shared_base(learner):
    saved = np.load(FIXTURE)
    for key, value in _predictions(learner).items():
        np.testing.assert_allclose(
            value, saved[f"{learner}_{key}"], rtol=1e-12, atol=1e-12, err_msg=f"{learner} {key}"
        )
