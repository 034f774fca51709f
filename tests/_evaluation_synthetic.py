"""A small randomized trial with known effects, for the evaluation tests (no learners needed).

Arms ``none``, ``steady`` (helps everyone by 1 EE point) and ``targeted`` (helps people with
x > 0, harms those with x < 0: effect -slope * x). Doubly robust scores use the true outcome means
plus the inverse-propensity residual, so they are unbiased and their noise is realistic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ARMS = ("none", "steady", "targeted")


def synthetic_trial(n: int, *, seed: int, noise: float = 2.0, slope: float = 2.0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    truth = pd.DataFrame({"steady": np.full(n, -1.0), "targeted": -slope * x})
    means = pd.DataFrame(
        {"none": x, "steady": x + truth["steady"], "targeted": x + truth["targeted"]}
    )
    arm = rng.choice(np.array(ARMS, dtype=object), size=n)
    observed = means.to_numpy()[np.arange(n), pd.Index(ARMS).get_indexer(arm)]
    y = observed + rng.normal(0, noise, n)
    share = 1 / len(ARMS)
    scores = means.copy()
    for a in ARMS:
        got = arm == a
        scores.loc[got, a] += (y[got] - means.loc[got, a]) / share
    return {"x": x, "truth": truth, "arm": arm, "y": y, "scores": scores}
