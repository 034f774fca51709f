"""Calibration as data: each published figure the simulator must reproduce, as a :class:`Study`.

A study names its population (a role mix for the simulated cohort plus an optional row filter),
its design (randomized shares over arms), the quantity it reports, the target with its
tolerance, and the source. :func:`run_calibration` simulates every study with the default
scenario and returns target versus simulated; the tests assert that every study lands within
tolerance, and ``recommender calibration`` writes the table to ``docs/calibration.md``.

Two kinds of check: ``tolerance`` (hard: ``|simulated - target| <= tolerance``) and
``direction`` (the sign or order the evidence supports: ``simulated < target`` or ``> target``).
Each row also carries a Monte Carlo standard error from batch means (the simulated rows are
independent, so the spread of the estimate over 20 equal batches, divided by sqrt(20), is the
standard error of the full-sample estimate), so a reader can see that a pass is not luck.

The studies live in :mod:`recommender.simulate._calibration_untreated` (baselines and the
natural course) and :mod:`recommender.simulate._calibration_interventions`; :class:`Study` in
:mod:`recommender.simulate._calibration_study`. This module runs them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import pandas as pd

from recommender.simulate._calibration_interventions import INTERVENTION_STUDIES
from recommender.simulate._calibration_study import Study
from recommender.simulate._calibration_untreated import UNTREATED_STUDIES
from recommender.simulate._scenario import Scenario, load_scenario
from recommender.simulate._simulate import simulate_cohort

__all__ = ["Study", "STUDIES", "run_calibration", "with_roles", "DEFAULT_SEED", "DEFAULT_N"]

DEFAULT_SEED = 20190501  # any fixed seed; the month Dyrbye 2019 appeared
DEFAULT_N = 100_000  # rows per simulated study cohort: Monte Carlo SE far below every tolerance
_BATCHES = 20

STUDIES: tuple[Study, ...] = UNTREATED_STUDIES + INTERVENTION_STUDIES


# -- running ---------------------------------------------------------------------------------
def with_roles(scenario: Scenario, roles: Mapping[str, float] | None) -> Scenario:
    """The scenario with its role mix replaced (shares renormalized); other parameters kept."""
    if roles is None:
        return scenario
    total = float(sum(roles.values()))
    population = dataclasses.replace(
        scenario.population, roles=MappingProxyType({r: s / total for r, s in roles.items()})
    )
    return dataclasses.replace(scenario, population=population)


def _key(mapping):
    return None if mapping is None else tuple(sorted(mapping.items()))


def run_calibration(
    *,
    seed: int = DEFAULT_SEED,
    n: int = DEFAULT_N,
    scenario: Scenario | str = "default",
    studies: tuple[Study, ...] = STUDIES,
) -> pd.DataFrame:
    """Simulate every study and compare with its target.

    Parameters
    ----------
    seed : int
        Seed for every simulated study cohort.
    n : int
        Rows per simulated study cohort (before a study's row filter).
    scenario : Scenario or str
        The scenario to calibrate (the default scenario is the one the targets describe).
    studies : tuple of Study
        The studies to run (default: all of :data:`STUDIES`).

    Returns
    -------
    pandas.DataFrame
        Columns ``study, quantity, target, tolerance, check, simulated, mc_se, within, source,
        gap``, one row per study; ``tolerance`` is NaN for direction checks; ``gap`` says why a
        sourced figure is not reproduced ("" for the ones that must be).
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    cohorts: dict = {}
    rows = []
    for study in studies:
        key = (_key(study.roles), _key(study.design))
        if key not in cohorts:
            cohorts[key] = simulate_cohort(
                with_roles(scenario, study.roles), n, seed=seed, rct_shares=study.design
            )
        frame = cohorts[key]
        if study.select is not None:
            frame = frame[study.select(frame)]
        simulated = study.measure(frame)
        batches = [study.measure(part) for part in _batches(frame)]
        rows.append(
            {
                "study": study.name,
                "quantity": study.quantity,
                "target": study.target,
                "tolerance": study.tolerance if study.tolerance is not None else float("nan"),
                "check": study.check(),
                "simulated": simulated,
                "mc_se": float(np.std(batches, ddof=1) / np.sqrt(len(batches))),
                "within": study.accepts(simulated),
                "source": study.source,
                "gap": study.gap,
            }
        )
    return pd.DataFrame(rows)


def _batches(frame: pd.DataFrame):
    edges = np.linspace(0, len(frame), _BATCHES + 1).astype(int)
    for start, stop in zip(edges[:-1], edges[1:]):
        yield frame.iloc[start:stop]
