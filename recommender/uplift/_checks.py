"""Checks on what ``fit`` receives: every problem named, nothing silently dropped."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from recommender.errors import InputError

__all__ = ["TrainingData", "check_training_inputs", "warn_constant_features"]


def _first(labels, k: int = 5) -> str:
    labels = list(labels)
    shown = ", ".join(repr(v) for v in labels[:k])
    return shown + (", ..." if len(labels) > k else "")


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
    treatment = np.asarray(treatment, dtype=object).ravel()
    y_values = pd.to_numeric(pd.Series(np.asarray(y).ravel()), errors="coerce").to_numpy(float)
    lengths = {"X": n, "treatment": len(treatment), "y": len(y_values)}
    if propensity is not None:
        propensity = np.asarray(propensity, dtype=float).ravel()
        lengths["propensity"] = len(propensity)
    if len(set(lengths.values())) > 1:
        raise InputError(
            "inputs have different numbers of rows: "
            + ", ".join(f"{k} {v}" for k, v in lengths.items())
            + "; every input needs one entry per person"
        )
    if n == 0:
        raise InputError("the training cohort is empty")

    missing_arm = pd.isna(treatment)
    if missing_arm.any():
        rows = index[missing_arm]
        raise InputError(
            f"treatment is missing for {missing_arm.sum()} rows (first: {_first(rows)}); every "
            "row needs the arm the person received"
        )
    missing_y = np.isnan(y_values)
    if missing_y.any():
        rows = index[missing_y]
        raise InputError(
            f"outcome y is missing or not a number for {missing_y.sum()} rows (first: "
            f"{_first(rows)}); rows without a follow-up cannot be used and are not dropped "
            "silently: remove them before fitting"
        )
    infinite_y = np.isinf(y_values)
    if infinite_y.any():
        raise InputError(
            f"outcome y is infinite for {infinite_y.sum()} rows (first: "
            f"{_first(index[infinite_y])}); finite numbers are accepted"
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
            "(min_arm_rows). Merge or drop the arm explicitly",
            problems=[{"arm": a, "rows": int(c), "minimum": min_arm_rows} for a, c in small],
        )

    if propensity is not None:
        bad = ~(propensity > 0) | (propensity > 1) | np.isnan(propensity)
        if bad.any():
            rows = index[bad]
            values = propensity[bad][:5]
            raise InputError(
                f"propensity must be in (0, 1]; {bad.sum()} rows are not (first rows "
                f"{_first(rows)} with values {_first(np.round(values, 6))}). A propensity is "
                "the probability of the arm the person received"
            )

    others = sorted((t for t in by_text if t != str(control)))
    arms = [by_text[str(control)]] + [by_text[t] for t in others]
    position = {str(a): k for k, a in enumerate(arms)}
    codes = np.fromiter((position[str(t)] for t in treatment), dtype=np.int64, count=n)
    return TrainingData(arms, arms[0], codes, y_values, propensity)


def warn_constant_features(matrix: np.ndarray, names: list[str]) -> list[str]:
    """Warn (naming them) about features that take one value only; they are kept but useless."""
    constant = []
    for j, name in enumerate(names):
        column = matrix[:, j]
        seen = column[~np.isnan(column)]
        if seen.size == 0 or np.all(seen == seen[0]):
            constant.append(name)
    if constant:
        warnings.warn(
            f"constant features carry no information and cannot personalize: {constant}",
            UserWarning,
            stacklevel=3,
        )
    return constant
