"""The families ``bench.coverage`` scores, their seeds, and the draw of one family's cohort.

Seeds are fixed: the same family and seed give the same cohort for every method and harness
(``bench.interval_capture`` draws through ``draw`` too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from bench.coverage_generators import (
    Cohort,
    causalml_synthetic,
    econml_ihdp,
    ihdp,
    multi_arm,
    nie_wager,
)

__all__ = [
    "TUNING_SEEDS",
    "HELD_OUT_SEEDS",
    "Family",
    "FAMILIES",
    "selected_families",
    "training_rows",
    "family_seeds",
    "draw",
]

# Draws the interval rules were chosen on, and the draws that report them (fixed before any of
# them was run; never chosen by their results).
TUNING_SEEDS = (1, 2, 3, 4, 5, 6)
HELD_OUT_SEEDS = (101, 102, 103, 104, 105, 106)


@dataclass(frozen=True)
class Family:
    name: str
    what: str
    generate: Callable | None  # (n_train, n_test, seed) -> Cohort; None for IHDP
    n: int
    n_test: int = 4000
    quick_n: int | None = None  # None: skipped by --quick
    seeds: tuple | None = None  # None: HELD_OUT_SEEDS (or TUNING_SEEDS with --tuning)
    tags: tuple = field(default_factory=tuple)


FAMILIES = [
    Family(
        "nw-a",
        "Nie-Wager A: hard nuisance, easy effect; confounded, 2 arms",
        nie_wager("A"),
        5000,
        quick_n=2000,
    ),
    Family("nw-b", "Nie-Wager B: randomised, 2 arms", nie_wager("B"), 5000),
    Family(
        "nw-c",
        "Nie-Wager C: hard baseline, constant effect; confounded, 2 arms",
        nie_wager("C"),
        5000,
    ),
    Family(
        "nw-d",
        "Nie-Wager D: unrelated arms, kinked effect; confounded, 2 arms",
        nie_wager("D"),
        5000,
    ),
    Family(
        "causalml-1-small",
        "CausalML synthetic_data mode 1, adj 1 (about 20 % treated), sigma 2, n 3,000",
        causalml_synthetic(1, sigma=2.0, adj=1.0),
        3000,
    ),
    Family(
        "causalml-4",
        "CausalML synthetic_data mode 4 (unrelated arms), n 10,000",
        causalml_synthetic(4, sigma=1.0),
        10000,
    ),
    Family(
        "econml-ihdp-b",
        "EconML ihdp_surface_B (Hill's heterogeneous surface), within-sample",
        econml_ihdp("B"),
        0,
    ),
    Family(
        "econml-ihdp-a",
        "EconML ihdp_surface_A (constant effect 4), within-sample",
        econml_ihdp("A"),
        0,
    ),
    Family(
        "six-arm-smooth",
        "6 arms, randomised, smooth effects in score, hours and role, n 12,000",
        multi_arm(arms=6, shape="smooth"),
        12000,
        quick_n=3000,
    ),
    Family(
        "six-arm-step-obs",
        "6 arms, confounded (known propensities), step-shaped effects, n 20,000",
        multi_arm(arms=6, shape="step", confounded=True),
        20000,
    ),
    Family(
        "three-arm-t3",
        "3 arms, randomised, smooth effects, Student-t(3) noise, n 8,000",
        multi_arm(arms=3, shape="smooth", noise="t3"),
        8000,
    ),
    Family(
        "four-arm-small-arm",
        "4 arms, confounded, one arm offered to 3 %, step effects, n 8,000",
        multi_arm(arms=4, shape="step", confounded=True, small_arm=0.03),
        8000,
    ),
    Family(
        "two-arm-50k",
        "2 arms, randomised, smooth effect, n 50,000",
        multi_arm(arms=1, shape="smooth"),
        50000,
    ),
    Family(
        "ihdp",
        "IHDP, 10 realizations, truth mu1 - mu0, within-sample (747 rows)",
        None,
        747,
        seeds=tuple(range(1, 11)),
        quick_n=747,
    ),
]


def selected_families(names=None, *, quick=False) -> list[Family]:
    """The families a run scores: ``names`` (all by default; ``--quick`` keeps the small ones
    unless named)."""
    return [
        family
        for family in FAMILIES
        if (not names or family.name in names)
        and not (quick and family.quick_n is None and not names)
    ]


def training_rows(family: Family, *, quick=False) -> int:
    return family.quick_n if quick and family.quick_n else family.n


def family_seeds(family: Family, seeds=None, *, quick=False, realisations=None) -> tuple:
    """The seeds of one family's realisations: ``seeds`` (default ``HELD_OUT_SEEDS``) except
    for IHDP, which keeps its own ten; only the first ``realisations``; one (IHDP two) with
    ``quick``."""
    own = family.seeds or HELD_OUT_SEEDS
    chosen = own if seeds is None or family.seeds else tuple(seeds)
    if realisations:
        chosen = chosen[:realisations]
    if quick:
        chosen = chosen[: 2 if family.name == "ihdp" else 1]
    return tuple(chosen)


def draw(family: Family, seed: int, *, quick=False) -> Cohort:
    """The cohort of ``family`` drawn from ``seed`` (the same for every method and harness)."""
    if family.generate is None:
        return ihdp(seed)
    return family.generate(
        training_rows(family, quick=quick), family.n_test if not quick else 2000, seed
    )
