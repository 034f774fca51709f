"""Simulate a cohort: profiles, baseline scores, assignment, follow-up and the oracle."""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np
import pandas as pd

from recommender.errors import InputError
from recommender.simulate._assignment import ASSIGNMENTS, assign, resolve_rct_shares
from recommender.simulate._baseline import draw_baseline
from recommender.simulate._course import draw_followup
from recommender.simulate._effects import arm_effects
from recommender.simulate._population import draw_people
from recommender.simulate._scenario import (
    GENDERS,
    ROLES,
    SCORES,
    SETTINGS,
    SPECIALTIES,
    Scenario,
    load_scenario,
)

__all__ = ["simulate_cohort", "oracle_columns", "MAX_PEOPLE", "MAX_SEED"]

# Past these numpy fails with a ValueError instead of a MemoryError (rows), and person_id
# ("s<seed>-<row>") outgrows the contract's 64 characters (seed), so both are refused up front.
MAX_PEOPLE = 10**12
MAX_SEED = 2**63 - 1


def oracle_columns(arms) -> list[str]:
    """Names of the oracle columns for the given non-control arms (EE first, then DP, PA)."""
    return (
        [f"true_effect_{arm}" for arm in arms]
        + [f"true_effect_dp_{arm}" for arm in arms]
        + [f"true_effect_pa_{arm}" for arm in arms]
    )


def simulate_cohort(
    scenario: Scenario | str,
    n: int,
    *,
    seed: int,
    assignment: str = "rct",
    rct_shares: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Simulate ``n`` clinicians with baseline and follow-up MBI scores and their true effects.

    Parameters
    ----------
    scenario : Scenario or str
        A loaded scenario, or a name or path for :func:`load_scenario`.
    n : int
        Number of people (rows), from 1 to :data:`MAX_PEOPLE`.
    seed : int
        Seed of the single ``numpy.random.Generator`` that draws everything, from 0 to
        :data:`MAX_SEED`; the same seed, scenario and arguments give the same table.
    assignment : {"rct", "observational"}
        ``"rct"``: arms drawn independently of the profile with ``rct_shares``;
        ``"observational"``: the scenario's confounded multinomial logit.
    rct_shares : mapping of arm -> share, optional
        Design shares under ``"rct"`` (arms not named get 0; shares sum to 1). Default: the
        scenario's ``assignment.rct_shares``.

    Returns
    -------
    pandas.DataFrame
        One row per person: ``person_id`` (``"s<seed>-000001"``), the contract's profile
        columns, ``intervention``, ``ee_followup``, ``dp_followup``, ``pa_followup`` (integers
        in range), ``propensity`` (probability of the arm received: the design share under rct,
        the true confounded probability under observational) and the oracle columns
        ``true_effect_<arm>``, ``true_effect_dp_<arm>``, ``true_effect_pa_<arm>`` for every
        non-control arm: the expected latent follow-up score under the arm minus under the
        control, before rounding and clipping (negative = better for EE and DP, positive =
        better for PA).

    Examples
    --------
    >>> cohort = simulate_cohort("default", 1000, seed=7)
    >>> cohort.shape[0], cohort["person_id"].iloc[0]
    (1000, 's7-000001')
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= MAX_PEOPLE:
        raise InputError(
            f"n: the number of people must be a whole number from 1 to {MAX_PEOPLE:,}, got {n!r}"
        )
    if (
        isinstance(seed, bool)
        or not isinstance(seed, numbers.Integral)
        or not 0 <= seed <= MAX_SEED
    ):
        raise InputError(f"seed: must be a whole number from 0 to {MAX_SEED:,}, got {seed!r}")
    if assignment not in ASSIGNMENTS:
        raise InputError(f"assignment: must be one of {', '.join(ASSIGNMENTS)}, got {assignment!r}")
    if rct_shares is not None:
        if assignment != "rct":
            raise InputError(
                "rct_shares: only used with assignment='rct'; the observational design has its own probabilities"
            )
        resolve_rct_shares(scenario, rct_shares)  # check before spending time on the draw
    n = int(n)

    rng = np.random.default_rng(seed)
    people = draw_people(rng, scenario, n)
    expected, baseline = draw_baseline(rng, scenario, people)
    received, propensity = assign(
        rng, scenario, people, baseline, assignment=assignment, rct_shares=rct_shares
    )
    effects = arm_effects(scenario, people, baseline)  # treatment arms x n x 3
    # The control's effect is 0; index the received arm's effect without an n x arms loop.
    with_control = np.concatenate([np.zeros((1, n, 3)), effects], axis=0)
    treatment_index = np.array(
        [
            0 if arm == scenario.control else 1 + scenario.treatment_arms.index(arm)
            for arm in scenario.arms
        ]
    )
    received_effect = with_control[treatment_index[received], np.arange(n)]
    followup = draw_followup(rng, scenario, people, expected, baseline, received_effect)

    columns = {
        "person_id": _person_ids(seed, n).to_numpy(),
        "age": people.age,
        "gender": pd.Categorical.from_codes(people.gender, categories=GENDERS),
        "role": pd.Categorical.from_codes(people.role, categories=ROLES),
        "specialty": pd.Categorical.from_codes(people.specialty, categories=SPECIALTIES),
        "setting": pd.Categorical.from_codes(people.setting, categories=SETTINGS),
        "years_in_practice": people.years_in_practice,
        "weekly_hours": people.weekly_hours,
    }
    for k, score in enumerate(SCORES):
        columns[score] = baseline[:, k]
    columns["intervention"] = pd.Categorical.from_codes(received, categories=scenario.arms)
    for k, score in enumerate(SCORES):
        columns[f"{score}_followup"] = followup[:, k]
    columns["propensity"] = propensity
    for k, prefix in enumerate(("true_effect_", "true_effect_dp_", "true_effect_pa_")):
        for index, arm in enumerate(scenario.treatment_arms):
            columns[f"{prefix}{arm}"] = effects[index, :, k]
    return pd.DataFrame(columns)


def _person_ids(seed: int, n: int) -> pd.Series:
    width = max(6, len(str(n)))
    return f"s{seed}-" + pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(width)
