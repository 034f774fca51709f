"""The oracle: each person's expected effect of every arm on EE, DP and PA.

An arm's effect for a person is the role's reference effect (``effects.<arm>.by_role``) times
three multipliers: career stage, baseline severity (per subscale) and weekly hours, clipped to
``effect_modifiers.effect_bound`` (per subscale, either sign) so that no person's expected effect
goes beyond the largest single trial's estimate however the multipliers combine. It is the
difference in the *latent, continuous* expected follow-up score under the arm versus under
``none``, before rounding and clipping: because the natural course adds the same drift,
regression and noise whatever the arm, this is exactly E[change | arm] - E[change | none].
"""

from __future__ import annotations

import numpy as np

from recommender.simulate._population import People
from recommender.simulate._scenario import CAREER_STAGES, ROLES, Scenario

__all__ = ["career_stage", "arm_effects"]

_TRAINEE, _EARLY, _MID, _LATE = range(4)


def career_stage(scenario: Scenario, people: People) -> np.ndarray:
    """Codes into CAREER_STAGES: residents are trainees, others by years in practice."""
    modifiers = scenario.effect_modifiers
    years = people.years_in_practice
    stage = np.where(
        years < modifiers.early_career_below,
        _EARLY,
        np.where(years > modifiers.late_career_above, _LATE, _MID),
    )
    return np.where(people.role == ROLES.index("resident"), _TRAINEE, stage)


def severity_distance(scenario: Scenario, baseline: np.ndarray) -> np.ndarray:
    """n x 3: baseline distance from the reference in scale units, positive = more severe."""
    modifiers = scenario.effect_modifiers
    distance = (
        baseline - modifiers.severity_reference.as_array()
    ) / modifiers.severity_scale.as_array()
    distance[:, 2] *= -1.0  # low PA is severe
    return distance


def severity_multiplier(scenario: Scenario, distance: np.ndarray, slope: float) -> np.ndarray:
    """n x 3: more room to improve, larger effect."""
    modifiers = scenario.effect_modifiers
    return np.clip(1.0 + slope * distance, modifiers.severity_floor, modifiers.severity_cap)


def hours_multiplier(scenario: Scenario, hours: np.ndarray, time_demand: float) -> np.ndarray:
    """n: long weeks leave less time for an arm that needs it."""
    modifiers = scenario.effect_modifiers
    extra_tens = np.maximum(hours - modifiers.hours_threshold, 0.0) / 10.0
    return np.clip(1.0 - time_demand * extra_tens, modifiers.time_floor, 1.0)


def arm_effects(scenario: Scenario, people: People, baseline: np.ndarray) -> np.ndarray:
    """Array (arms x n x 3) of effects for ``scenario.treatment_arms`` in order, SCORES order."""
    stage = career_stage(scenario, people)
    distance = severity_distance(scenario, baseline.astype(float))
    bound = scenario.effect_modifiers.effect_bound.as_array()
    out = np.empty((len(scenario.treatment_arms), len(people), 3))
    for index, arm in enumerate(scenario.treatment_arms):
        spec = scenario.effects[arm]
        by_role = np.array(
            [spec.by_role[r].as_array() if r in spec.by_role else np.zeros(3) for r in ROLES]
        )
        career = np.array([spec.career[s] for s in CAREER_STAGES])
        scale = career[stage] * hours_multiplier(scenario, people.weekly_hours, spec.time_demand)
        out[index] = np.clip(
            by_role[people.role]
            * scale[:, None]
            * severity_multiplier(scenario, distance, spec.severity_slope),
            -bound,
            bound,
        )
    return out
