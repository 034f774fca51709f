"""The served model's prediction form: rows encoded once, every arm predicted in one pass.

:func:`encode_rows` turns validated request rows (mappings) straight into the learners' float
matrix, with no pandas frame in between; :func:`compile_model` compiles the fitted learners of
every outcome into one prediction pass (:func:`recommender.uplift.compile_effects`);
:class:`Prediction` is what one pass returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from recommender.errors import InputError

from ._schema import levels_rule

__all__ = ["Prediction", "compile_model", "encode_rows"]

# Problems listed in one error (as frame_from_schema does).
_MAX_LISTED = 20

# A row without the feature (a marker no profile value can be).
_ABSENT = object()

# Value types converted to floats in one numpy call; any other type is checked value by value.
_PLAIN_NUMBERS = {int, float}

# Up to this many rows the value-by-value checks are quicker than numpy's calls.
_FEW_ROWS = 16


@dataclass(frozen=True)
class Prediction:
    """Every treatment arm's effect and interval, for the primary and the secondary outcomes.

    Arrays are (rows x arms), columns in the order of ``arms`` (the model's treatment arms).
    ``secondary``, ``secondary_lower`` and ``secondary_upper`` map each secondary outcome to
    its effects and their interval bounds, at the primary's level; NaN where the model has no
    estimate (an arm carried over from a model without that outcome). A secondary outcome
    missing from the bounds has no interval.
    """

    arms: tuple
    effect: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    secondary: dict = field(default_factory=dict)  # outcome -> (rows x arms) effects
    secondary_lower: dict = field(default_factory=dict)  # outcome -> (rows x arms) bounds
    secondary_upper: dict = field(default_factory=dict)


def compile_model(model):
    """The model's learners compiled into one prediction pass (every outcome with its
    intervals), or None if they cannot be.

    Learners that are not :class:`recommender.uplift.UpliftModel` (test doubles, older
    artifacts) or that do not share one feature encoding are answered one by one instead.
    """
    from recommender.uplift import UpliftModel, compile_effects

    learners = [model.outcome_models[o] for o in model.outcomes]
    if not all(
        isinstance(learner, UpliftModel) and hasattr(learner, "estimator_") for learner in learners
    ):
        return None
    if list(learners[0].encoder_.feature_names) != list(model.feature_names):
        return None
    try:
        return compile_effects({o: model.outcome_models[o] for o in model.outcomes})
    except ValueError:
        return None


def encode_rows(rows: Sequence[Mapping], schema: Sequence[Mapping], encoder) -> np.ndarray:
    """Validated profile rows to the float matrix ``encoder`` makes of a feature frame.

    Categories become their codes under the fitted categories, numbers floats; what the
    feature frame would refuse (:func:`recommender.model.frame_from_schema`) is refused here
    with the same problems: a missing value, an unknown category, a number that is not one or
    not whole where the feature is an integer.
    """
    n = len(rows)
    matrix = np.empty((n, len(schema)), dtype=np.float64)
    problems: list[dict] = []
    for j, feature in enumerate(schema):
        name = feature["name"]
        values = [row.get(name, _ABSENT) for row in rows]
        if _ABSENT in values:
            raise InputError(
                f"profile rows lack the feature column(s) {[name]}; the model needs "
                f"{[f['name'] for f in schema]}",
                problems=[{"row": None, "column": name, "value": None, "rule": "required column"}],
            )
        if feature["kind"] == "category":
            lookup = encoder.lookups[j]
            codes = list(map(lookup.get, values))
            if None not in codes:  # the usual case: every value a known category
                matrix[:, j] = codes
                continue
            for i, (value, code) in enumerate(zip(values, codes)):
                if code is None:
                    problems.append(
                        {
                            "row": i,
                            "column": name,
                            "value": value,
                            "rule": levels_rule(feature["categories"]),
                        }
                    )
                    code = math.nan
                matrix[i, j] = code
        else:
            whole = feature["kind"] == "integer"
            if n > _FEW_ROWS and set(map(type, values)) <= _PLAIN_NUMBERS:  # plain numbers
                try:
                    column = np.array(values, dtype=np.float64)
                except OverflowError:  # an integer past any float: listed below
                    column = np.array([math.nan])
                if np.isfinite(column).all() and not (whole and np.any(column != np.round(column))):
                    matrix[:, j] = column
                    continue
            for i, value in enumerate(values):
                try:
                    number = float(value) if not isinstance(value, (bool, str)) else math.nan
                except (TypeError, ValueError, OverflowError):
                    number = math.nan
                if not math.isfinite(number):
                    problems.append({"row": i, "column": name, "value": value, "rule": "a number"})
                elif whole and number != round(number):
                    problems.append(
                        {"row": i, "column": name, "value": value, "rule": "a whole number"}
                    )
                matrix[i, j] = number
    if problems:
        first = problems[0]
        shown = problems[:_MAX_LISTED]
        if len(problems) > _MAX_LISTED:
            shown.append(
                {
                    "row": None,
                    "column": None,
                    "value": None,
                    "rule": f"{len(problems) - _MAX_LISTED} more problems like these",
                }
            )
        raise InputError(
            f"{len(problems)} problem(s) in the profile rows, first: row {first['row']}, "
            f"column {first['column']!r}, value {first['value']!r}, accepted: {first['rule']}",
            problems=shown,
        )
    return matrix
