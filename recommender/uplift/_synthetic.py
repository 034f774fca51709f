"""A small multi-arm cohort with known effects, for tests and doctests of the learners.

Not a calibrated simulator (that is ``recommender.simulate``): just numeric and categorical
features, any arm names, heterogeneous effects the learners should recover, and the oracle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["make_uplift_cohort"]

ROLES = ("physician", "resident", "nurse", "app")


def make_uplift_cohort(
    n,
    *,
    arms=("none", "coaching", "mindfulness", "peer_group", "resilience_training", "balint_group"),
    seed=0,
    assignment="rct",
    noise=3.0,
):
    """Return ``X, treatment, y, propensity, oracle`` (oracle: one column per non-control arm).

    The first arm is the control. Effects of the others cycle through five shapes: strong and
    role-dependent with severity, nurse-specific, constant, hours-dependent, and zero.
    """
    rng = np.random.default_rng(seed)
    role = rng.choice(ROLES, size=n, p=[0.35, 0.15, 0.35, 0.15])
    X = pd.DataFrame(
        {
            "age": rng.integers(24, 66, size=n).astype(float),
            "role": pd.Categorical(role, categories=ROLES),
            "gender": pd.Categorical(
                rng.choice(["female", "male"], size=n), categories=["female", "male", "nonbinary"]
            ),
            "ee": np.clip(rng.normal(23, 10, size=n), 0, 54).round(),
            "weekly_hours": np.clip(rng.normal(50, 10, size=n), 20, 90),
            "unrelated": rng.normal(size=n),
        }
    )
    ee, hours = X["ee"].to_numpy(), X["weekly_hours"].to_numpy()
    physician, nurse = role == "physician", role == "nurse"
    shapes = [
        np.where(physician, -3.0 - 0.1 * (ee - 23), -1.0),
        np.where(nurse, -2.0, -0.5) - 0.05 * (ee - 23),
        np.full(n, -1.5),
        -0.5 + 0.05 * (hours - 50),
        np.zeros(n),
    ]
    treated = list(arms[1:])
    oracle = pd.DataFrame({a: shapes[k % len(shapes)] for k, a in enumerate(treated)})
    k = len(arms)
    if assignment == "rct":
        probabilities = np.full((n, k), 1.0 / k)
    else:
        logits = np.zeros((n, k))
        logits[:, 1:] = 0.06 * (ee[:, None] - 23) + np.where(nurse, 0.8, -0.4)[:, None] * (
            np.arange(1, k)[None, :] % 2 == 0
        )
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    codes = (probabilities.cumsum(axis=1) > rng.random(n)[:, None]).argmax(axis=1)
    treatment = np.asarray(arms, dtype=object)[codes]
    baseline = 1.5 - 0.15 * (ee - 23) + 0.03 * (hours - 50) + np.where(nurse, 0.5, 0.0)
    effect = np.zeros(n)
    for j, a in enumerate(treated, start=1):
        effect[codes == j] = oracle[a].to_numpy()[codes == j]
    y = baseline + effect + rng.normal(0, noise, size=n)
    propensity = probabilities[np.arange(n), codes]
    return X, treatment, y, propensity, oracle
