"""Who receives which arm: a randomized design or a confounded observational program."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from recommender.errors import InputError
from recommender.simulate._population import People, draw_categories
from recommender.simulate._scenario import ROLES, Scenario

__all__ = [
    "ASSIGNMENTS",
    "parse_shares",
    "resolve_rct_shares",
    "observational_probabilities",
    "assign",
]

ASSIGNMENTS = ("rct", "observational")
_SHARE_SLACK = 1e-3


def parse_shares(text: str, *, field: str = "--rct-shares") -> dict[str, float]:
    """Parse ``"none=0.5,coaching=0.5"`` into a mapping; InputError names ``field``."""
    shares = {}
    for item in filter(None, (part.strip() for part in str(text).split(","))):
        arm, sep, value = item.partition("=")
        try:
            shares[arm.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not arm.strip():
            raise InputError(
                f"{field}: entry {item!r} is not ARM=SHARE; accepted: e.g. 'none=0.5,coaching=0.5'"
            )
    if not shares:
        raise InputError(f"{field}: no shares given; accepted: e.g. 'none=0.5,coaching=0.5'")
    return shares


def resolve_rct_shares(
    scenario: Scenario, rct_shares: Mapping[str, float] | None, *, field: str = "rct_shares"
) -> np.ndarray:
    """Design shares as a vector over ``scenario.arms``; arms not named get 0."""
    if rct_shares is None:
        return np.array([scenario.assignment.rct_shares.get(arm, 0.0) for arm in scenario.arms])
    if not isinstance(rct_shares, Mapping):
        raise InputError(f"{field}: expected a mapping of arm -> share, got {rct_shares!r}")
    problems = []
    for arm, share in rct_shares.items():
        if arm not in scenario.arms:
            problems.append(
                f"arm {arm!r} is not in scenario {scenario.name!r} (arms: {', '.join(scenario.arms)})"
            )
        elif (
            isinstance(share, bool)
            or not isinstance(share, (int, float))
            or not math.isfinite(share)
            or share < 0
        ):
            problems.append(f"share of {arm!r} must be a number >= 0, got {share!r}")
    if not problems:
        total = float(sum(rct_shares.values()))
        if abs(total - 1.0) > _SHARE_SLACK:
            problems.append(f"shares must sum to 1, they sum to {total:.4g}")
    if problems:
        raise InputError(f"{field}: " + "; ".join(problems), problems=problems)
    vector = np.array([float(rct_shares.get(arm, 0.0)) for arm in scenario.arms])
    return vector / vector.sum()


def observational_probabilities(
    scenario: Scenario, people: People, baseline: np.ndarray
) -> np.ndarray:
    """n x arms: each person's probability of every arm under the scenario's confounded program.

    A multinomial logit (``none`` is the reference, logit 0) scaled by ``strength``, then mixed
    with a floor so that every arm keeps probability >= ``overlap_floor`` for everyone.
    """
    design = scenario.assignment.observational
    modifiers = scenario.effect_modifiers
    severity = (baseline[:, 0] - modifiers.severity_reference.ee) / 10.0
    extra_hours = (people.weekly_hours - modifiers.hours_threshold) / 10.0
    logits = np.zeros((len(people), len(scenario.arms)))
    for index, arm in enumerate(scenario.arms):
        if arm == scenario.control:
            continue
        by_role = np.array([design.role.get(arm, {}).get(r, 0.0) for r in ROLES])
        logits[:, index] = design.strength * (
            design.intercept.get(arm, 0.0)
            + by_role[people.role]
            + design.severity.get(arm, 0.0) * severity
            + design.hours.get(arm, 0.0) * extra_hours
        )
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    softmax = weights / weights.sum(axis=1, keepdims=True)
    floor = design.overlap_floor
    return floor + (1.0 - floor * len(scenario.arms)) * softmax


def assign(
    rng: np.random.Generator,
    scenario: Scenario,
    people: People,
    baseline: np.ndarray,
    *,
    assignment: str,
    rct_shares: Mapping[str, float] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (arm codes into ``scenario.arms``, probability of the arm received)."""
    if assignment == "rct":
        shares = resolve_rct_shares(scenario, rct_shares)
        codes = draw_categories(rng, shares, groups=np.empty(len(people)))
        return codes, shares[codes]
    probabilities = observational_probabilities(scenario, people, baseline)
    codes = draw_categories(rng, probabilities)
    return codes, probabilities[np.arange(len(codes)), codes]
