"""Calibrated cohort simulator with oracle effects.

No individual-level trial data on clinician burnout is public, so the project learns and is
measured on simulated cohorts whose every assumption is a named scenario parameter and whose
sourced figures are checked against the published studies (:func:`run_calibration`).
"""

from recommender.simulate._assignment import (
    ASSIGNMENTS,
    observational_probabilities,
    parse_shares,
    resolve_rct_shares,
)
from recommender.simulate._calibration import DEFAULT_N as CALIBRATION_N
from recommender.simulate._calibration import DEFAULT_SEED as CALIBRATION_SEED
from recommender.simulate._calibration import STUDIES, Study, run_calibration
from recommender.simulate._calibration_report import calibration_markdown, heterogeneity_markdown
from recommender.simulate._scenario import Scenario, load_scenario, scenario_names
from recommender.simulate._simulate import MAX_PEOPLE, MAX_SEED, oracle_columns, simulate_cohort

__all__ = [
    "ASSIGNMENTS",
    "CALIBRATION_N",
    "CALIBRATION_SEED",
    "MAX_PEOPLE",
    "MAX_SEED",
    "STUDIES",
    "Scenario",
    "Study",
    "calibration_markdown",
    "heterogeneity_markdown",
    "load_scenario",
    "observational_probabilities",
    "oracle_columns",
    "parse_shares",
    "resolve_rct_shares",
    "run_calibration",
    "scenario_names",
    "simulate_cohort",
]
