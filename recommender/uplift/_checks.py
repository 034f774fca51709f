"""Checks on what ``fit`` receives: every problem named, nothing silently dropped.

The learners' parameters (``PARAMETERS``, one table for ``UpliftModel`` and
``doubly_robust_scores``; ``SPEC_FIELDS`` for the regressors of the candidates parameters) and
the per-row inputs (treatment, outcome, propensity) are checked here, before any work starts;
the feature columns are checked by ``FeatureEncoder``.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd

from recommender.errors import InputError

from ._regressors import GBMSpec, LogLinearSpec, RidgeSpec

__all__ = [
    "LEARNERS",
    "PARAMETERS",
    "TrainingData",
    "candidate_feature_problems",
    "candidate_problems",
    "check_training_inputs",
    "parameter_problems",
    "first_values",
    "plain",
    "ConstantFeatureWarning",
    "warn_constant_features",
]

LEARNERS = ("auto", "t", "x", "dr")
DESIGNS = ("auto", "randomized", "observational")
# numpy's RandomState (the folds) takes seeds below 2**32; the learners add up to some tens of
# thousands to the seed for each arm, fold, stage and bootstrap replicate
SEED_LIMIT = 2**32 - 2**16


def _integer(least: int):
    return lambda v: isinstance(v, Integral) and v >= least


def _clip(v) -> bool:
    return (
        isinstance(v, (tuple, list))
        and len(v) == 2
        and all(isinstance(c, Real) for c in v)
        and 0 < v[0] < v[1] <= 1
    )


_CLIP = (_clip, "(low, high) with 0 < low < high <= 1")
# name: (accepted?, what is accepted)
PARAMETERS = {
    "learner": (lambda v: isinstance(v, str) and v in LEARNERS, " | ".join(LEARNERS)),
    "n_folds": (_integer(2), "an integer >= 2"),
    "random_state": (
        lambda v: isinstance(v, Integral) and not isinstance(v, bool) and 0 <= v < SEED_LIMIT,
        f"an integer from 0 to {SEED_LIMIT - 1}",
    ),
    "design": (lambda v: isinstance(v, str) and v in DESIGNS, " | ".join(DESIGNS)),
    "propensity_clip": _CLIP,
    "clip": _CLIP,
    "min_arm_rows": (_integer(1), "a positive integer"),
    "ensemble_size": (_integer(1), "a positive integer"),
    "calibrate_intervals": (lambda v: isinstance(v, bool), "True | False"),
    "heterogeneity_z": (
        lambda v: v is None or (isinstance(v, Real) and v >= 0),
        "None (always personalize) or a number >= 0",
    ),
    "n_jobs": (_integer(1), "a positive integer"),
}


def parameter_problems(values: dict) -> list[str]:
    """``name=value (accepted: ...)`` for every value of ``values`` that ``PARAMETERS`` refuses."""
    problems = []
    for name, value in values.items():
        accepted, says = PARAMETERS[name]
        if not accepted(value):
            problems.append(f"{name}={value!r} (accepted: {says})")
    return problems


def _positive(v) -> bool:
    return isinstance(v, Real) and math.isfinite(v) and v > 0


def _non_negative(v) -> bool:
    return isinstance(v, Real) and math.isfinite(v) and v >= 0


# the regressors each candidates parameter takes, and their fields: (accepted?, what is)
CANDIDATES = {
    "outcome_candidates": (GBMSpec, RidgeSpec, LogLinearSpec),
    "final_candidates": (GBMSpec, RidgeSpec),
}
SPEC_FIELDS = {
    "num_leaves": (_integer(2), "an integer >= 2"),
    "min_child_samples": (_integer(1), "a positive integer"),
    "learning_rate": (_positive, "a number > 0"),
    "max_rounds": (_integer(1), "a positive integer"),
    "patience": (_integer(1), "a positive integer"),
    "lambda_l2": (_non_negative, "a number >= 0"),
    "max_bin": (_integer(2), "an integer >= 2"),
    "alpha": (_positive, "a number > 0"),
}


def candidate_problems(name: str, specs) -> list[str]:
    """What ``outcome_candidates`` or ``final_candidates`` (``name``) holds that no stage can
    fit: not a list, a spec of another kind, a field out of range (LightGBM would stop mid-fit
    on ``num_leaves=1``; a ridge with a negative ``alpha`` would fit without a word)."""
    kinds = CANDIDATES[name]
    accepted = " | ".join(kind.__name__ for kind in kinds)
    if specs is None:
        return []
    if not isinstance(specs, (list, tuple)):
        return [f"{name}={specs!r} (accepted: None for the defaults, or a list of {accepted})"]
    problems = []
    signed = [spec.label for spec in specs if getattr(spec, "outcome_only", False)]
    if signed and name == "final_candidates":
        problems.append(
            f"final_candidates with {signed} (an outcome model only: the final stage "
            "fits effects, which can be negative; accepted: GBMSpec, RidgeSpec)"
        )
    for k, spec in enumerate(specs):
        if not isinstance(spec, kinds):
            if not getattr(spec, "outcome_only", False):
                problems.append(f"{name}[{k}]={spec!r} (accepted: {accepted})")
            continue
        for field, (ok, says) in SPEC_FIELDS.items():
            if hasattr(spec, field) and not ok(getattr(spec, field)):
                value = getattr(spec, field)
                problems.append(f"{name}[{k}].{field}={value!r} (accepted: {says})")
        if isinstance(spec, GBMSpec):
            problems += [f"{name}[{k}].extra.{said}" for said in spec.extra_problems()]
    return problems


def candidate_feature_problems(name: str, specs, feature_names) -> list[str]:
    """What the LightGBM candidates of ``name`` set per feature that does not fit X's columns
    (``feature_names``): known only once X is, and refused before any fit."""
    return [
        f"{name}[{k}].extra.{said}"
        for k, spec in enumerate(specs or ())
        if isinstance(spec, GBMSpec)
        for said in spec.feature_problems(feature_names)
    ]


def plain(value):
    # numpy scalars print as np.float64(0.5) under numpy 2: show the number a user typed
    return value.item() if isinstance(value, np.generic) else value


def first_values(labels, k: int = 5) -> str:
    labels = list(labels)
    shown = ", ".join(repr(plain(v)) for v in labels[:k])
    return shown + (", ..." if len(labels) > k else "")


def _rows(index: pd.Index, mask: np.ndarray) -> str:
    """The first rows where ``mask`` holds: X's index labels, or positions when they repeat."""
    if index.is_unique:
        return first_values(index[mask])
    return "positions " + first_values(np.flatnonzero(mask)) + " (X's index repeats labels)"


def _one_per_row(name: str, value, dtype=None) -> np.ndarray:
    """``value`` as a flat array of one entry per row; a table (n, k) is refused."""
    shape = np.shape(value)
    if len(shape) > 1 and not (len(shape) == 2 and shape[1] == 1):
        raise InputError(
            f"{name} must hold one value per row (a 1-d array or Series); got shape {shape}"
            + (
                ". For per-arm probabilities pass, for each row, the probability of the arm it "
                "received"
                if name == "propensity"
                else ""
            )
        )
    return np.asarray(value, dtype=dtype).ravel()


def _check_labels(given: dict, index: pd.Index) -> None:
    """Refuse a pandas input whose index is not X's: a pandas user expects rows matched by
    label, ``fit`` matches them by position, and a sorted or shuffled Series would pair each
    person with another's outcome without a word."""
    for name, value in given.items():
        if isinstance(value, (pd.Series, pd.DataFrame)) and not value.index.equals(index):
            raise InputError(
                f"{name} is a pandas {type(value).__name__} whose index is not X's index "
                f"({name}'s starts {first_values(value.index)}; X's starts "
                f"{first_values(index)}); rows are matched by position, so pass "
                f"{name}.loc[X.index] to match them by label, or {name}.to_numpy() when the "
                "order is already X's"
            )


def _numbers(values: np.ndarray) -> np.ndarray:
    """Numbers as float; what is not a number (text, None, pd.NA) becomes NaN, to be named."""
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(float)


class TrainingData:
    """Treatment as integer arm codes (control first), outcome and optional propensity."""

    def __init__(self, arms, control, codes, y, propensity):
        self.arms = arms  # all arm names, control first, then the others sorted by name
        self.control = control
        self.codes = codes
        self.y = y
        self.propensity = propensity


def check_training_inputs(X, treatment, y, propensity, *, control, min_arm_rows) -> TrainingData:
    """Validate lengths, arms, outcomes and propensities; raise InputError naming the cause."""
    n = len(X)
    index = X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(n)
    as_passed = {"treatment": treatment, "y": y, "propensity": propensity}
    treatment = _one_per_row("treatment", treatment, dtype=object)
    y_values = _numbers(_one_per_row("y", y))
    lengths = {"X": n, "treatment": len(treatment), "y": len(y_values)}
    if propensity is not None:
        given = _one_per_row("propensity", propensity)
        propensity = _numbers(given)
        lengths["propensity"] = len(propensity)
    if len(set(lengths.values())) > 1:
        raise InputError(
            "inputs have different numbers of rows: "
            + ", ".join(f"{k} {v}" for k, v in lengths.items())
            + "; every input needs one entry per person"
        )
    if n == 0:
        raise InputError("the training cohort is empty")
    if isinstance(X, pd.DataFrame):
        _check_labels(as_passed, index)

    missing_arm = pd.isna(treatment)
    if missing_arm.any():
        raise InputError(
            f"treatment is missing for {missing_arm.sum()} rows (first: "
            f"{_rows(index, missing_arm)}); every row needs the arm the person received"
        )
    missing_y = np.isnan(y_values)
    if missing_y.any():
        raise InputError(
            f"outcome y is missing or not a number for {missing_y.sum()} rows (first: "
            f"{_rows(index, missing_y)}); rows without a follow-up cannot be used and are not "
            "dropped silently: remove them before fitting"
        )
    infinite_y = np.isinf(y_values)
    if infinite_y.any():
        raise InputError(
            f"outcome y is infinite for {infinite_y.sum()} rows (first: "
            f"{_rows(index, infinite_y)}); finite numbers are accepted"
        )

    names, counts = np.unique(treatment.astype(str), return_counts=True)
    # keep the caller's arm objects (strings, ints) but order them by their text
    by_text = {str(v): v for v in pd.unique(treatment)}
    if str(control) not in by_text:
        raise InputError(
            f"no control rows: treatment never equals the control arm {control!r}; arms found: "
            f"{sorted(by_text)}. Pass control=<name of the usual-care arm>"
        )
    if len(names) < 2:
        raise InputError(
            f"only one arm in treatment ({str(names[0])!r}); at least the control arm and one "
            "other arm are needed to estimate an effect"
        )
    small = [(str(a), int(c)) for a, c in zip(names, counts) if c < min_arm_rows]
    if small:
        listed = ", ".join(f"{a!r} has {c} rows" for a, c in small)
        raise InputError(
            f"arm too small to fit: {listed}; each arm needs at least {min_arm_rows} rows "
            "(min_arm_rows, and never fewer than twice n_folds). Merge or drop the arm "
            "explicitly",
            problems=[{"arm": a, "rows": int(c), "minimum": min_arm_rows} for a, c in small],
        )

    if propensity is not None:
        bad = ~(propensity > 0) | (propensity > 1) | np.isnan(propensity)
        if bad.any():
            values = [
                v if np.isnan(p) else round(p, 6) for v, p in zip(given[bad], propensity[bad])
            ]
            raise InputError(
                f"propensity must be in (0, 1]; {bad.sum()} rows are not (first rows "
                f"{_rows(index, bad)} with values {first_values(values)}). A propensity is the "
                "probability of the arm the person received"
            )

    others = sorted((t for t in by_text if t != str(control)))
    arms = [by_text[str(control)]] + [by_text[t] for t in others]
    position = {str(a): k for k, a in enumerate(arms)}
    codes = np.fromiter((position[str(t)] for t in treatment), dtype=np.int64, count=n)
    return TrainingData(arms, arms[0], codes, y_values, propensity)


class ConstantFeatureWarning(UserWarning):
    """Features that take one value in the rows fitted on (``features``): kept, but no
    effect can vary with them."""

    def __init__(self, features: list[str]):
        self.features = list(features)
        super().__init__(
            f"constant features carry no information and cannot personalize: {self.features}"
        )

    def __reduce__(self):  # rebuilt from its facts, not its message (copied, pickled)
        return type(self), (self.features,)


def warn_constant_features(matrix: np.ndarray, names: list[str]) -> list[str]:
    """Warn (naming them) about features that take one value only; they are kept but useless."""
    constant = []
    for j, name in enumerate(names):
        column = matrix[:, j]
        seen = column[~np.isnan(column)]
        if seen.size == 0 or np.all(seen == seen[0]):
            constant.append(name)
    if constant:
        warnings.warn(ConstantFeatureWarning(constant), stacklevel=3)
    return constant
