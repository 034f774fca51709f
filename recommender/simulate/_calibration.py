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
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd

from recommender.simulate._measures import (
    HIGH_DP,
    HIGH_EE,
    control_change_mean,
    control_change_sd,
    control_regression_slope,
    control_share_change,
    control_share_of_gap,
    corr,
    high_burnout,
    hours_odds_ratio,
    mean,
    net_change,
    net_share_change,
    role_difference,
    sd,
    share_burnout,
    share_high,
    smd,
    women_minus_men,
)
from recommender.simulate._scenario import Scenario, load_scenario
from recommender.simulate._simulate import simulate_cohort

__all__ = ["Study", "STUDIES", "run_calibration", "with_roles", "DEFAULT_SEED", "DEFAULT_N"]

DEFAULT_SEED = 20190501  # any fixed seed; the month Dyrbye 2019 appeared
DEFAULT_N = 100_000  # rows per simulated study cohort: Monte Carlo SE far below every tolerance
_BATCHES = 20


@dataclass(frozen=True)
class Study:
    """One published figure and how to reproduce it in simulation.

    Parameters
    ----------
    name : str
        Short citation and population, e.g. ``"Dyrbye 2019: coaching, physicians 5-30 y"``.
    quantity : str
        What is measured, in words and units.
    roles : mapping of role -> share, or None
        The simulated cohort's role mix (None: the scenario's own mix).
    design : mapping of arm -> share, or None
        Randomized shares for the simulated trial (None: the scenario's rct shares).
    measure : callable
        ``measure(frame) -> float`` on the simulated (and filtered) cohort.
    target : float
        The published figure (or the bound of a direction check).
    tolerance : float or None
        Half-width of the accepted band; None for a direction check.
    direction : {"<", ">"} or None
        For direction checks: simulated must be below / above ``target``.
    source : str
        Where the figure comes from.
    select : callable or None
        ``select(frame) -> boolean mask`` restricting the cohort (e.g. years in practice).
    """

    name: str
    quantity: str
    roles: Mapping[str, float] | None
    design: Mapping[str, float] | None
    measure: Callable[[pd.DataFrame], float]
    target: float
    tolerance: float | None
    direction: str | None
    source: str
    select: Callable[[pd.DataFrame], np.ndarray] | None = None

    @property
    def kind(self) -> str:
        return "tolerance" if self.tolerance is not None else "direction"

    def check(self) -> str:
        """The acceptance rule in words (``"±1.5"`` or ``"< 0"``)."""
        if self.tolerance is not None:
            return f"±{self.tolerance:g}"
        return f"{self.direction} {self.target:g}"

    def accepts(self, simulated: float) -> bool:
        if self.tolerance is not None:
            return bool(abs(simulated - self.target) <= self.tolerance)
        return (
            bool(simulated < self.target)
            if self.direction == "<"
            else bool(simulated > self.target)
        )


def _years(lo: float, hi: float):
    return lambda f: f["years_in_practice"].between(lo, hi).to_numpy()


# -- the studies -----------------------------------------------------------------------------
_P = MappingProxyType({"physician": 1.0})
_R = MappingProxyType({"resident": 1.0})
_N = MappingProxyType({"nurse": 1.0})
_P_AND_R = MappingProxyType({"physician": 0.77, "resident": 0.23})  # the default mix's doctors
_N_AND_P = MappingProxyType({"nurse": 0.5, "physician": 0.5})
_ALL_ARMS = None  # the scenario's own equal shares
_MID = _years(5, 30)


def _trial(arm: str, *others: str) -> Mapping[str, float]:
    arms = ("none", arm, *others)
    return MappingProxyType({a: 1.0 / len(arms) for a in arms})


_MANUAL = "MBI manual medicine norms; West 2016 Lancet trial baselines"
STUDIES: tuple[Study, ...] = (
    # Baselines -------------------------------------------------------------------------
    Study("Physicians' baseline", "EE mean", _P, _ALL_ARMS, mean("ee"), 23.0, 1.0, None, _MANUAL),
    Study("Physicians' baseline", "EE SD", _P, _ALL_ARMS, sd("ee"), 10.25, 0.75, None, _MANUAL),
    Study("Physicians' baseline", "DP mean", _P, _ALL_ARMS, mean("dp"), 8.0, 1.0, None, _MANUAL),
    Study(
        "Physicians' baseline",
        "DP SD",
        _P,
        _ALL_ARMS,
        sd("dp"),
        5.5,
        0.5,
        None,
        "MBI manual medicine norms",
    ),
    Study(
        "Physicians' baseline",
        "PA mean",
        _P,
        _ALL_ARMS,
        mean("pa"),
        36.5,
        1.5,
        None,
        "MBI manual medicine norms",
    ),
    Study(
        "Physicians' baseline",
        "PA SD",
        _P,
        _ALL_ARMS,
        sd("pa"),
        7.25,
        0.75,
        None,
        "MBI manual medicine norms",
    ),
    Study(
        "Subscale correlations, whole cohort",
        "corr(EE, DP)",
        None,
        _ALL_ARMS,
        corr("ee", "dp"),
        0.5,
        0.1,
        None,
        "Maslach & Jackson 1981",
    ),
    Study(
        "Subscale correlations, whole cohort",
        "corr(EE, PA)",
        None,
        _ALL_ARMS,
        corr("ee", "pa"),
        -0.2,
        0.1,
        None,
        "Maslach & Jackson 1981",
    ),
    Study(
        "Subscale correlations, whole cohort",
        "corr(DP, PA)",
        None,
        _ALL_ARMS,
        corr("dp", "pa"),
        -0.3,
        0.1,
        None,
        "Maslach & Jackson 1981",
    ),
    Study(
        "Physicians' burnout prevalence",
        "% with EE >= 27 or DP >= 10",
        _P,
        _ALL_ARMS,
        share_burnout,
        49.0,
        5.0,
        None,
        "Shanafelt 2012, 2015, 2019 national surveys (44-54 %)",
    ),
    Study(
        "Residents' baseline",
        "% with EE >= 27",
        _R,
        _ALL_ARMS,
        share_high("ee", HIGH_EE),
        46.0,
        6.0,
        None,
        "West 2011 JAMA",
    ),
    Study(
        "Residents' baseline",
        "% with DP >= 10",
        _R,
        _ALL_ARMS,
        share_high("dp", HIGH_DP),
        29.0,
        6.0,
        None,
        "West 2011 JAMA",
    ),
    Study(
        "Women physicians",
        "EE mean, women minus men (points)",
        _P,
        _ALL_ARMS,
        women_minus_men,
        0.0,
        None,
        ">",
        "Hoff & Lee 2021",
    ),
    Study(
        "Nurses' weekly hours",
        "odds ratio of burnout, > 40 h vs <= 40 h",
        _N,
        _ALL_ARMS,
        hours_odds_ratio,
        1.0,
        None,
        ">",
        "Shah 2021 JAMA Netw Open (OR about 3; direction checked)",
    ),
    # Natural course: the usual-care arm of the simulated Dyrbye trial ------------------
    Study(
        "Usual care, physicians 5-30 y",
        "mean 6-month EE change (points)",
        _P,
        _trial("coaching"),
        control_change_mean("ee"),
        1.5,
        1.0,
        None,
        "Dyrbye 2019 JAMA Intern Med, control arm",
        select=_MID,
    ),
    Study(
        "Usual care, physicians 5-30 y",
        "change in % with EE >= 27 (points)",
        _P,
        _trial("coaching"),
        control_share_change(),
        10.0,
        5.0,
        None,
        "Dyrbye 2019, control arm (+9.8 points)",
        select=_MID,
    ),
    Study(
        "Usual care, physicians 5-30 y",
        "SD of 6-month EE change",
        _P,
        _trial("coaching"),
        control_change_sd("ee"),
        8.25,
        0.75,
        None,
        "Dyrbye 2019 (7.5-9)",
        select=_MID,
    ),
    Study(
        "Usual care, physicians 5-30 y",
        "slope of EE change on baseline EE",
        _P,
        _trial("coaching"),
        control_regression_slope,
        -0.05,
        None,
        "<",
        "*assumption* (regression to the mean; coefficient in the scenario)",
        select=_MID,
    ),
    # Interventions -------------------------------------------------------------------
    Study(
        "Dyrbye 2019: coaching, physicians 5-30 y",
        "net EE change (points)",
        _P,
        _trial("coaching"),
        net_change("ee", "coaching"),
        -6.7,
        1.5,
        None,
        "Dyrbye 2019 JAMA Intern Med (-5.2 vs +1.5)",
        select=_MID,
    ),
    Study(
        "Dyrbye 2019: coaching, physicians 5-30 y",
        "net change in % with EE >= 27 (points)",
        _P,
        _trial("coaching"),
        net_share_change("coaching"),
        -29.0,
        8.0,
        None,
        "Dyrbye 2019 JAMA Intern Med",
        select=_MID,
    ),
    Study(
        "Dyrbye 2019: coaching, physicians 5-30 y",
        "net change in % burnout, EE >= 27 or DP >= 10 (points)",
        _P,
        _trial("coaching"),
        net_share_change("coaching", high_burnout),
        -22.0,
        8.0,
        None,
        "Dyrbye 2019 JAMA Intern Med",
        select=_MID,
    ),
    Study(
        "Collett 2025: coaching, physicians and residents",
        "EE SMD",
        _P_AND_R,
        _trial("coaching"),
        smd("ee", "coaching"),
        -0.37,
        0.15,
        None,
        "Collett 2025 Ann Intern Med meta-analysis",
    ),
    Study(
        "Collett 2025: coaching, physicians and residents",
        "DP SMD",
        _P_AND_R,
        _trial("coaching"),
        smd("dp", "coaching"),
        -0.30,
        0.15,
        None,
        "Collett 2025 Ann Intern Med meta-analysis",
    ),
    Study(
        "Mindfulness, nurses",
        "net EE change (points)",
        _N_AND_P,
        _trial("mindfulness"),
        lambda f: net_change("ee", "mindfulness")(f[f["role"] == "nurse"]),
        -4.3,
        1.5,
        None,
        "Wang 2023 Front Psychiatry (nurse RCTs)",
    ),
    Study(
        "Mindfulness, nurses",
        "net DP change (points)",
        _N_AND_P,
        _trial("mindfulness"),
        lambda f: net_change("dp", "mindfulness")(f[f["role"] == "nurse"]),
        -2.9,
        1.0,
        None,
        "Wang 2023 Front Psychiatry",
    ),
    Study(
        "Mindfulness, physicians",
        "EE SMD (small, CI includes 0)",
        _N_AND_P,
        _trial("mindfulness"),
        lambda f: smd("ee", "mindfulness")(f[f["role"] == "physician"]),
        -0.23,
        0.23,
        None,
        "Fendel 2021 Acad Med; Collett 2025 (SMD -0.26 to -0.46, wide CIs)",
    ),
    Study(
        "Mindfulness, nurses vs physicians",
        "net EE change, nurses minus physicians (points)",
        _N_AND_P,
        _trial("mindfulness"),
        role_difference(net_change("ee", "mindfulness"), "nurse", "physician"),
        0.0,
        None,
        "<",
        "Collett 2025; Fendel 2021",
    ),
    Study(
        "Mindfulness, nurses vs physicians",
        "EE SMD, nurses minus physicians",
        _N_AND_P,
        _trial("mindfulness"),
        role_difference(smd("ee", "mindfulness"), "nurse", "physician"),
        0.0,
        None,
        "<",
        "Collett 2025 (nurses pooled SMD -0.90; the raw-point nurse trials imply about -0.4)",
    ),
    Study(
        "West 2021: peer groups, physicians",
        "net change in % burnout (points)",
        _P,
        _trial("peer_group"),
        net_share_change("peer_group", high_burnout),
        -14.6,
        8.0,
        None,
        "West 2021 Mayo Clin Proc (-12.7 % vs +1.9 %)",
    ),
    Study(
        "West 2021: peer groups, physicians",
        "net EE change (points; small)",
        _P,
        _trial("peer_group"),
        net_change("ee", "peer_group"),
        -1.5,
        1.5,
        None,
        "West 2021 Mayo Clin Proc (mean-score changes small)",
    ),
    Study(
        "West 2014/2021: peer groups, physicians",
        "DP SMD minus EE SMD (DP improves more)",
        _P,
        _trial("peer_group"),
        lambda f: smd("dp", "peer_group")(f) - smd("ee", "peer_group")(f),
        0.0,
        None,
        "<",
        "West 2014 JAMA Intern Med; West 2021 Mayo Clin Proc",
    ),
    Study(
        "Sood 2011: resilience training, whole cohort",
        "net EE change (points)",
        None,
        _trial("resilience_training"),
        net_change("ee", "resilience_training"),
        -1.5,
        0.5,
        None,
        "*assumption* (-1 to -2); Sood 2011 reports stress only",
    ),
    Study(
        "Huang 2020: Balint groups, residents",
        "net EE change (points; modest)",
        _R,
        _trial("balint_group"),
        net_change("ee", "balint_group"),
        -1.75,
        1.75,
        None,
        "Huang 2020 Front Psychiatry",
    ),
    Study(
        "Huang 2020: Balint groups, residents",
        "share of the EE gap from usual care worsening",
        _R,
        _trial("balint_group"),
        control_share_of_gap("balint_group"),
        0.5,
        None,
        ">",
        "Huang 2020 Front Psychiatry",
    ),
    Study(
        "Residents, individual interventions",
        "EE SMD",
        _R,
        _trial("coaching", "mindfulness", "resilience_training"),
        smd("ee", "any"),
        -0.25,
        0.10,
        None,
        "2024 meta-analysis of resident interventions",
    ),
    Study(
        "Residents, individual interventions",
        "DP SMD",
        _R,
        _trial("coaching", "mindfulness", "resilience_training"),
        smd("dp", "any"),
        -0.17,
        0.10,
        None,
        "2024 meta-analysis of resident interventions",
    ),
    Study(
        "West 2016: pooled interventions, physicians",
        "net EE change (points)",
        _P,
        _ALL_ARMS,
        net_change("ee", "any"),
        -2.65,
        0.98,
        None,
        "West 2016 Lancet (-2.65, 95 % CI -3.64 to -1.67)",
    ),
    Study(
        "West 2016: pooled interventions, physicians",
        "net DP change (points)",
        _P,
        _ALL_ARMS,
        net_change("dp", "any"),
        -0.64,
        0.5,
        None,
        "West 2016 Lancet (-0.64, 95 % CI about -1.14 to -0.15)",
    ),
    Study(
        "West 2016: pooled interventions, physicians",
        "net change in % burnout (points)",
        _P,
        _ALL_ARMS,
        net_share_change("any", high_burnout),
        -10.0,
        6.0,
        None,
        "West 2016 Lancet (54 % to 44 %)",
    ),
)


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
        Columns ``study, quantity, target, tolerance, check, simulated, mc_se, within, source``,
        one row per study; ``tolerance`` is NaN for direction checks.
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
            }
        )
    return pd.DataFrame(rows)


def _batches(frame: pd.DataFrame):
    edges = np.linspace(0, len(frame), _BATCHES + 1).astype(int)
    for start, stop in zip(edges[:-1], edges[1:]):
        yield frame.iloc[start:stop]
