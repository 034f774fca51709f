"""Metrics that need the true effects, which only a simulator has.

PEHE (precision in estimating heterogeneous effects) is reported as its root: the root mean
squared error of the predicted effect per arm, in EE points; ``pehe_mean`` averages those roots
over arms. Coverage is the share of people whose true effect lies inside the interval
(bounds included), beside the interval's mean width. Regret and the share of the oracle's value
compare *true* policy values: each policy's value computed from the true effects, not
estimated.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.errors import InputError
from recommender.evaluation._policy_value import best_policy

__all__ = ["oracle_policy", "oracle_effects", "pehe_table", "oracle_summary"]

_PREFIX = "true_effect_"


def oracle_effects(oracle: pd.DataFrame, arms) -> pd.DataFrame:
    """The oracle's effect column for every arm, accepting ``<arm>`` or ``true_effect_<arm>``.

    Raises
    ------
    recommender.errors.InputError
        When an arm has neither column.
    """
    columns = {}
    for arm in arms:
        for name in (arm, f"{_PREFIX}{arm}"):
            if name in oracle.columns:
                columns[arm] = oracle[name].to_numpy(dtype=float)
                break
        else:
            raise InputError(
                f"oracle has no column for arm {arm!r}: expected {arm!r} or "
                f"{_PREFIX + arm!r}; columns are {list(oracle.columns)}"
            )
    return pd.DataFrame(columns, index=oracle.index)


def oracle_policy(
    true_effects: pd.DataFrame, *, control: str = "none", eligible: pd.DataFrame | None = None
) -> np.ndarray:
    """The best arm per person by the true effect (control when no arm truly helps), among
    the arms the catalog offers them when ``eligible`` is given: the service's rule on the
    true effects as they are, unrounded."""
    return best_policy(true_effects.to_numpy(dtype=float), true_effects, control, eligible)


def pehe_table(
    effects: pd.DataFrame,
    true_effects: pd.DataFrame,
    lower: pd.DataFrame | None = None,
    upper: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Root PEHE, bias, interval coverage and mean width per arm.

    Examples
    --------
    >>> pred = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    >>> true = pd.DataFrame({"a": [0.0, 1.0, 2.0, 7.0]})
    >>> lo, hi = pred - 1, pred + 1
    >>> pehe_table(pred, true, lo, hi)[["pehe", "coverage", "mean_width"]].values.tolist()
    [[2.0, 0.75, 2.0]]
    """
    rows = {}
    for arm in effects.columns:
        predicted = effects[arm].to_numpy(dtype=float)
        truth = true_effects[arm].to_numpy(dtype=float)
        error = predicted - truth
        row = {"pehe": float(np.sqrt(np.mean(error**2))), "bias": float(error.mean())}
        if lower is not None and upper is not None:
            lo = lower[arm].to_numpy(dtype=float)
            hi = upper[arm].to_numpy(dtype=float)
            row["coverage"] = float(np.mean((lo <= truth) & (truth <= hi)))
            row["mean_width"] = float(np.mean(hi - lo))
        rows[arm] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "arm"
    return table


def oracle_summary(pehe: pd.DataFrame, policy_values: pd.DataFrame) -> dict[str, float]:
    """Mean PEHE, mean coverage, true values, regret and share of the oracle's value."""
    learned = float(policy_values.loc["learned", "true_value"])
    best = float(policy_values.loc["oracle", "true_value"])
    summary = {
        "pehe_mean": float(pehe["pehe"].mean()),
        "true_value_learned": learned,
        "true_value_oracle": best,
        "regret": best - learned,
        "share_of_oracle": learned / best if best > 0 else float("nan"),
    }
    if "coverage" in pehe.columns:
        summary["coverage_mean"] = float(pehe["coverage"].mean())
        summary["mean_width"] = float(pehe["mean_width"].mean())
    return summary
