"""Baseline MBI scores: a latent multivariate normal around a mean set by the profile."""

from __future__ import annotations

import numpy as np

from recommender.simulate._population import People
from recommender.simulate._scenario import (
    GENDERS,
    ROLES,
    SCORE_RANGES,
    SCORES,
    SETTINGS,
    SPECIALTIES,
    Scenario,
)

__all__ = ["expected_scores", "draw_baseline", "clip_scores", "LOW", "HIGH"]

LOW = np.array([SCORE_RANGES[s][0] for s in SCORES], dtype=float)
HIGH = np.array([SCORE_RANGES[s][1] for s in SCORES], dtype=float)


def _score_table(table, keys) -> np.ndarray:
    return np.array([table[k].as_array() if k in table else np.zeros(3) for k in keys])


def expected_scores(scenario: Scenario, people: People) -> np.ndarray:
    """Each person's latent mean (n x 3): role mean plus gender, hours, specialty, setting shifts.

    Hours count from the role's own mean hours, so ``role_means`` stays the mean of a typical
    member of the role; the hours slope then says how burnout rises with hours within a role.
    """
    baseline = scenario.baseline
    hours_mean = np.array(
        [
            (
                scenario.population.weekly_hours[r]["mean"]
                if r in scenario.population.weekly_hours
                else 0.0
            )
            for r in ROLES
        ]
    )
    extra_tens = (people.weekly_hours - hours_mean[people.role]) / 10.0
    return (
        _score_table(baseline.role_means, ROLES)[people.role]
        + _score_table(baseline.gender_shift, GENDERS)[people.gender]
        + _score_table(baseline.specialty_shift, SPECIALTIES)[people.specialty]
        + _score_table(baseline.setting_shift, SETTINGS)[people.setting]
        + extra_tens[:, None] * baseline.hours_slope.as_array()
    )


def correlated_normal(
    rng: np.random.Generator, n: int, sd: np.ndarray, correlation: np.ndarray
) -> np.ndarray:
    """n x 3 draws with the given SDs and correlation matrix."""
    covariance = correlation * np.outer(sd, sd)
    # Cholesky of a PSD matrix with a zero SD fails; a jitter that small changes no score.
    factor = np.linalg.cholesky(covariance + 1e-12 * np.eye(3))
    standard = rng.standard_normal((n, 3))
    # Column by column instead of `standard @ factor.T`: a 3-wide matmul over a million rows goes
    # through threaded BLAS, which is slower than this on a shared machine.
    out = standard[:, :1] * factor[:, 0]
    out += standard[:, 1:2] * factor[:, 1]
    out += standard[:, 2:] * factor[:, 2]
    return out


def clip_scores(latent: np.ndarray) -> np.ndarray:
    """Round latent scores to whole points and clip them to the subscale ranges (int64)."""
    return np.clip(np.rint(latent), LOW, HIGH).astype(np.int64)


def draw_baseline(
    rng: np.random.Generator, scenario: Scenario, people: People
) -> tuple[np.ndarray, np.ndarray]:
    """Return (expected latent means, observed integer scores), both n x 3 in SCORES order."""
    mean = expected_scores(scenario, people)
    baseline = scenario.baseline
    latent = mean + correlated_normal(
        rng, len(people), baseline.sd.as_array(), baseline.correlation.matrix()
    )
    return mean, clip_scores(latent)
