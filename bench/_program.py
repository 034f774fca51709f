"""A simulated wellness program for the learning loop: staff, and their follow-up scores under
whatever arm the service served them.

The simulator draws everyone's follow-up under usual care (a cohort assigned 100 % to the
control arm) and their true effect of every arm; the follow-up under a served arm is the
usual-care follow-up plus that arm's true effect on each subscale, rounded and clipped to the
subscale's range. The loop sees only profiles and these follow-ups, never the true effects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["staff_cohort", "followup_under", "true_value"]

_RANGES = {"ee": 54, "dp": 30, "pa": 48}
_PREFIX = {"ee": "true_effect_", "dp": "true_effect_dp_", "pa": "true_effect_pa_"}


def staff_cohort(scenario: str, n: int, *, seed: int) -> pd.DataFrame:
    """``n`` staff with baseline profiles, usual-care follow-ups and (hidden) true effects."""
    from recommender.simulate import load_scenario, simulate_cohort

    loaded = load_scenario(scenario)
    return simulate_cohort(loaded, n, seed=seed, assignment="rct", rct_shares={loaded.control: 1.0})


def followup_under(cohort: pd.DataFrame, served, *, control: str = "none") -> pd.DataFrame:
    """Follow-up EE, DP and PA of each person under the arm ``served`` them (integers)."""
    served = np.asarray(served, dtype=object)
    out = {}
    for score, top in _RANGES.items():
        shift = np.zeros(len(cohort))
        for arm in np.unique(served):
            if arm == control:
                continue
            rows = served == arm
            shift[rows] = cohort[f"{_PREFIX[score]}{arm}"].to_numpy(dtype=float)[rows]
        value = cohort[f"{score}_followup"].to_numpy(dtype=float) + shift
        out[f"{score}_followup"] = np.clip(np.rint(value), 0, top).astype(int)
    return pd.DataFrame(out, index=cohort.index)


def true_value(cohort: pd.DataFrame, served, *, control: str = "none") -> float:
    """Mean true EE effect of the served arms (EE points against usual care; lower is better)."""
    served = np.asarray(served, dtype=object)
    effect = np.zeros(len(cohort))
    for arm in np.unique(served):
        if arm != control:
            rows = served == arm
            effect[rows] = cohort[f"true_effect_{arm}"].to_numpy(dtype=float)[rows]
    return float(effect.mean())
