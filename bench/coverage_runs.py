"""Fit ``UpliftModel(learner="auto")`` and EconML's CausalForestDML on every family's draws and
score their intervals (``run``); join runs made apart (``merge``); and time the interval
calibration's share of a fit (``interval_cost``).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from bench._data import CONTROL, Rows
from bench.coverage_families import (
    FAMILIES,
    draw,
    family_seeds,
    selected_families,
    training_rows,
)
from bench.coverage_generators import Cohort
from bench.coverage_scoring import ALPHA, _scores, summarise

__all__ = ["METHODS", "run", "merge", "interval_cost"]


def _fit_ours(cohort: Cohort):
    from recommender.uplift import UpliftModel

    model = UpliftModel(learner="auto")
    start = time.process_time()
    model.fit(cohort.X, cohort.treatment, cohort.y, propensity=cohort.propensity)
    fit_s = time.process_time() - start
    lower, upper = model.predict_interval(cohort.X_test, alpha=ALPHA)
    return lower[cohort.oracle.columns], upper[cohort.oracle.columns], fit_s


def _fit_forest(cohort: Cohort):
    from bench._anchors import EconMLCausalForest

    arms = sorted(cohort.oracle.columns)
    shares = None
    if cohort.design == "rct":
        counts = pd.Series(cohort.treatment).value_counts(normalize=True)
        shares = {a: float(counts.get(a, 0.0)) for a in [CONTROL, *arms]}
    method = EconMLCausalForest(propensity="design" if shares else "lightgbm")
    start = time.process_time()
    method.fit(Rows.of(cohort.X), cohort.treatment, cohort.y, design_shares=shares)
    fit_s = time.process_time() - start
    lower, upper = method.interval(Rows.of(cohort.X_test), ALPHA)
    return lower[cohort.oracle.columns], upper[cohort.oracle.columns], fit_s


METHODS = {"ours": _fit_ours, "forest": _fit_forest}


def interval_cost(n: int = 20_000, *, assignment: str = "rct", fits: int = 3) -> dict:
    """CPU seconds of ``UpliftModel(learner="auto").fit`` on the default scenario (the size the
    project trains on), with and without the interval calibration (the parametric bootstrap;
    the held-out bias term is a few vector operations and runs in both), median of ``fits``."""
    from bench._data import simulated_split
    from recommender.cohort import feature_frame
    from recommender.uplift import UpliftModel

    split = simulated_split(n, assignment=assignment)
    features = feature_frame(split.train)
    y = split.y(split.train)
    seconds = {}
    for calibrate in (True, False):
        times = []
        for _ in range(fits):
            model = UpliftModel(learner="auto", calibrate_intervals=calibrate)
            start = time.process_time()
            model.fit(
                features,
                split.train["intervention"].astype(str).to_numpy(),
                y,
                propensity=split.train["propensity"].to_numpy(float),
            )
            times.append(time.process_time() - start)
        seconds["calibrated" if calibrate else "uncalibrated"] = float(np.median(times))
    seconds["n"], seconds["assignment"], seconds["fits"] = n, assignment, fits
    seconds["cost"] = seconds["calibrated"] / seconds["uncalibrated"] - 1.0
    return seconds


def run(
    families=None,
    *,
    quick=False,
    methods=("ours", "forest"),
    seeds=None,
    realisations=None,
    log=print,
) -> dict:
    """Score ``methods`` on every family's realisations.

    ``seeds``: draw every family's cohorts from these seeds (default ``HELD_OUT_SEEDS``; IHDP,
    which has ten realizations, keeps its own); ``realisations``: only the first so many."""
    results = []
    for family in selected_families(families, quick=quick):
        n = training_rows(family, quick=quick)
        seeds_here = family_seeds(family, seeds, quick=quick, realisations=realisations)
        scored = {m: [] for m in methods}
        fit_times = {m: [] for m in methods}
        for seed in seeds_here:
            cohort = draw(family, seed, quick=quick)
            for m in methods:
                lower, upper, fit_s = METHODS[m](cohort)
                scored[m].append(
                    {
                        arm: _scores(lower[arm], upper[arm], cohort.oracle[arm])
                        for arm in cohort.oracle.columns
                    }
                )
                fit_times[m].append(fit_s)
                cover = np.mean([s["covered"].mean() for s in scored[m][-1].values()])
                log(f"{family.name} seed {seed} {m}: cover {cover:.3f} fit {fit_s:.1f}s")
        row = {
            "family": family.name,
            "what": family.what,
            "n": n,
            "cohorts": len(seeds_here),
            "seeds": list(seeds_here),
        }
        for m in methods:
            row[m] = summarise(scored[m], fit_times[m])
        results.append(row)
    return {"families": results, "quick": quick, "methods": list(methods)}


def merge(results: list[dict]) -> dict:
    """Join runs of the same families made apart (``--methods ours`` and ``--methods forest``
    side by side): each family's row takes every method any run scored."""
    rows: dict[str, dict] = {}
    methods: list[str] = []
    for result in results:
        methods += [m for m in result["methods"] if m not in methods]
        for row in result["families"]:
            joined = rows.setdefault(row["family"], {})
            seeds = joined.get("seeds", row["seeds"])
            shorter, longer = sorted((seeds, row["seeds"]), key=len)
            if longer[: len(shorter)] != shorter:
                raise ValueError(f"{row['family']}: runs on different seeds cannot be joined")
            # a method run on fewer of the same draws (the forest, where time is short) keeps
            # its own count; the row names the longer run's
            for m in result["methods"]:
                if m in row:
                    row[m] = {**row[m], "realisations": len(row["seeds"])}
            joined.update({**row, "seeds": longer, "cohorts": len(longer)})
    order = [f.name for f in FAMILIES]
    families = sorted(rows.values(), key=lambda r: order.index(r["family"]))
    return {"families": families, "quick": False, "methods": methods}
