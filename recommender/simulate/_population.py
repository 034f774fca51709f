"""Who is in a simulated cohort: role, demographics, specialty, setting and weekly hours."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommender.simulate._scenario import GENDERS, ROLES, SETTINGS, SPECIALTIES, Scenario

__all__ = ["People", "draw_people", "draw_categories"]


@dataclass(frozen=True)
class People:
    """Profile arrays of one cohort; categories are integer codes into the contract's tuples."""

    role: np.ndarray  # codes into ROLES
    gender: np.ndarray  # codes into GENDERS
    specialty: np.ndarray  # codes into SPECIALTIES
    setting: np.ndarray  # codes into SETTINGS
    years_in_practice: np.ndarray
    age: np.ndarray
    weekly_hours: np.ndarray

    def __len__(self) -> int:
        return len(self.role)


def draw_categories(
    rng: np.random.Generator, probabilities: np.ndarray, groups: np.ndarray | None = None
) -> np.ndarray:
    """Draw one category code per row by inverse CDF.

    ``probabilities`` is a vector (same for everyone) or a matrix whose row ``groups[i]`` (or
    row ``i`` when ``groups`` is None and the matrix has one row per person) holds person i's
    probabilities.
    """
    probabilities = np.asarray(probabilities, dtype=float)
    cumulative = np.cumsum(probabilities, axis=-1)
    cumulative /= cumulative[..., -1:]  # exact 1 at the end, whatever the rounding
    if probabilities.ndim == 1:
        n = len(groups) if groups is not None else None
        return np.minimum(
            np.searchsorted(cumulative, rng.random(n), side="right"), len(cumulative) - 1
        )
    last = cumulative.shape[1] - 1
    if groups is None:
        uniform = rng.random(len(cumulative))
        return np.minimum((uniform[:, None] >= cumulative).sum(axis=1), last)
    # One searchsorted per group instead of an n x categories comparison.
    uniform = rng.random(len(groups))
    codes = np.empty(len(groups), dtype=np.int64)
    for group in range(len(cumulative)):
        members = groups == group
        codes[members] = np.searchsorted(cumulative[group], uniform[members], side="right")
    return np.minimum(codes, last)


def _table(mapping, rows, columns) -> np.ndarray:
    """Probability matrix rows x columns from a nested mapping (absent entries are 0).

    A row absent from the scenario (a role it never draws) gets all its mass on the first
    column, so that its CDF is defined; no person ever uses it.
    """
    matrix = np.zeros((len(rows), len(columns)))
    for i, row in enumerate(rows):
        if row in mapping:
            matrix[i] = [mapping[row].get(c, 0.0) for c in columns]
        else:
            matrix[i, 0] = 1.0
    return matrix


def draw_people(rng: np.random.Generator, scenario: Scenario, n: int) -> People:
    population = scenario.population
    role_shares = np.array([population.roles.get(r, 0.0) for r in ROLES])
    role = draw_categories(rng, role_shares, groups=np.empty(n))
    gender = draw_categories(rng, _table(population.gender, ROLES, GENDERS), role)
    specialty = draw_categories(rng, _table(population.specialty, ROLES, SPECIALTIES), role)
    setting = draw_categories(
        rng, np.array([population.setting.get(s, 0.0) for s in SETTINGS]), groups=np.empty(n)
    )

    years = _by_role(role, population.years_in_practice, "mean")
    spread = _by_role(role, population.years_in_practice, "sd")
    varies = (spread > 0) & (years > 0)
    # Gamma with the role's mean and SD: skewed to the right like a workforce's tenure.
    shape = np.where(varies, (years / np.where(varies, spread, 1.0)) ** 2, 1.0)
    scale = np.where(varies, spread**2 / np.where(varies, years, 1.0), 0.0)
    years = np.where(varies, rng.gamma(shape, 1.0) * scale, years)
    years = np.round(np.clip(years, 0.0, _by_role(role, population.years_in_practice, "max")), 1)

    entry = _by_role(role, population.age_at_entry, "mean") + _by_role(
        role, population.age_at_entry, "sd"
    ) * rng.standard_normal(n)
    # Reflected above the role's minimum rather than redrawn, so that every later draw is the
    # one it was (a redraw shifts the stream), and rather than clipped, which would pile a
    # tenth of the nurses on the minimum itself.
    lowest = _by_role(role, population.age_at_entry, "min")
    entry = np.where(entry < lowest, 2 * lowest - entry, entry)
    age = np.clip(np.rint(entry + years), 18, 90).astype(np.int64)

    hours = _by_role(role, population.weekly_hours, "mean") + _by_role(
        role, population.weekly_hours, "sd"
    ) * rng.standard_normal(n)
    hours = np.round(
        np.clip(
            hours,
            _by_role(role, population.weekly_hours, "min"),
            _by_role(role, population.weekly_hours, "max"),
        ),
        1,
    )
    return People(role, gender, specialty, setting, years, age, hours)


def _by_role(role: np.ndarray, table, key: str) -> np.ndarray:
    values = np.array([table[r][key] if r in table else 0.0 for r in ROLES])
    return values[role]
