"""Follow-up scores: natural course under usual care plus the received arm's effect.

follow-up (latent) = baseline + drift(role) - regression_to_mean * (baseline - expected level)
                     + effect(received arm) + noise,
then rounded and clipped to the subscale ranges. The expected level is the person's latent mean
given role, gender, hours, specialty and setting, so people measured far from their own usual
level move back toward it (the regression-to-the-mean assumption of calibration.md).
"""

from __future__ import annotations

import numpy as np

from recommender.simulate._baseline import clip_scores, correlated_normal
from recommender.simulate._population import People
from recommender.simulate._scenario import ROLES, Scenario

__all__ = ["draw_followup"]


def draw_followup(
    rng: np.random.Generator,
    scenario: Scenario,
    people: People,
    expected: np.ndarray,
    baseline: np.ndarray,
    effect: np.ndarray,
) -> np.ndarray:
    """Integer follow-up scores (n x 3) given the effect of the arm each person received."""
    course = scenario.course
    drift = np.array(
        [course.drift[r].as_array() if r in course.drift else np.zeros(3) for r in ROLES]
    )[people.role]
    noise = correlated_normal(
        rng, len(people), course.noise_sd.as_array(), course.noise_correlation.matrix()
    )
    latent = baseline + drift - course.regression_to_mean * (baseline - expected) + effect + noise
    return clip_scores(latent)
