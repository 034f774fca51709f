"""Off-policy estimators: unbiased on logs with known probabilities, intervals that cover."""

import numpy as np
import pandas as pd
import pytest

from recommender.errors import InputError
from recommender.evaluation import off_policy_values

ARMS = np.array(["none", "a", "b"])


def _log(seed, n=4000):
    """Arm b is better for x > 0, a for x <= 0; logged probabilities depend on x."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    p = np.where(x[:, None] > 0, [0.2, 0.2, 0.6], [0.3, 0.5, 0.2])
    index = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    arm = ARMS[index]
    propensity = p[np.arange(n), index]
    effect = {"none": 0.0 * x, "a": -2.0 + 0.0 * x, "b": -1.0 - 2.0 * x}
    y = np.choose(index, [effect[k] for k in ARMS]) + rng.normal(scale=2.0, size=n)
    target = np.where(x > 0, "b", "a")
    truth = float(np.mean(np.where(x > 0, effect["b"], effect["a"])))
    # Oracle-free DR scores: per-arm linear outcome models fitted on the log (good enough here).
    scores = {}
    for k in ARMS:
        rows = arm == k
        slope, intercept = np.polyfit(x[rows], y[rows], 1)
        mu = intercept + slope * x
        scores[k] = mu + (arm == k) / np.where(arm == k, propensity, 1.0) * (y - mu)
    return arm, propensity, y, target, truth, pd.DataFrame(scores)


def test_estimators_are_unbiased_and_their_intervals_cover():
    covered = {m: 0 for m in ("dr", "ips", "snips")}
    errors = {m: [] for m in covered}
    repeats = 60
    for seed in range(repeats):
        arm, propensity, y, target, truth, scores = _log(seed)
        values = off_policy_values(arm, propensity, y, target, dr_scores=scores, alpha=0.1)
        for method, value in values.items():
            covered[method] += value.covers(truth)
            errors[method].append(value.estimate - truth)
    for method in covered:
        # Bias well inside the Monte Carlo error; 90 % intervals cover 80-98 % of 60 repeats.
        assert abs(np.mean(errors[method])) < 0.06, (method, np.mean(errors[method]))
        assert 0.80 <= covered[method] / repeats <= 0.98, (method, covered[method])
    # DR (with a decent outcome model) has the smallest error.
    rmse = {m: np.sqrt(np.mean(np.square(e))) for m, e in errors.items()}
    assert rmse["dr"] < rmse["ips"]


def test_bad_inputs_are_named():
    arm, propensity, y, target, _, _ = _log(0, n=50)
    with pytest.raises(InputError, match="propensity"):
        off_policy_values(arm, np.zeros(50), y, target)
    with pytest.raises(InputError, match="outcome"):
        off_policy_values(arm, propensity, np.full(50, np.nan), target)
    with pytest.raises(InputError, match="equally long"):
        off_policy_values(arm, propensity, y, target[:10])
