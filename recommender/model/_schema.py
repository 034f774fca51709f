"""The feature schema a model was fitted on, and rebuilding that exact frame from profile rows.

LightGBM reads pandas categoricals by their integer codes, so a frame built at scoring time must
carry the same categories, in the same order, as the frame the learners were fitted on. The
schema records them; :func:`frame_from_schema` rebuilds the frame and refuses what it cannot
represent rather than letting an unknown category turn silently into a missing value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recommender.cohort import MAX_EXTRA_LEVELS
from recommender.errors import InputError

__all__ = ["feature_schema", "frame_from_schema"]

# Problems listed in one error before the rest are summarised as a count.
_MAX_LISTED = 20


def levels_rule(categories) -> str:
    """What a category feature accepts, in a problem: its levels, or only their count when
    there are more than a training table may now have (a model trained on an identifier-like
    column before that rule must not print every name it saw)."""
    levels = list(categories)
    if len(levels) > MAX_EXTRA_LEVELS:
        return f"one of the {len(levels):,} values the model was trained on"
    return f"one of {levels}"


def feature_schema(X: pd.DataFrame) -> list[dict]:
    """Describe the columns of a fitted feature frame, in order.

    Parameters
    ----------
    X : DataFrame
        The frame the learners were fitted on (numeric and ``category`` columns).

    Returns
    -------
    list of dict
        One entry per column: ``name``, ``kind`` (``"category"``, ``"integer"`` or ``"float"``)
        and, for categories, ``categories`` (the list of allowed values in code order).

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"role": pd.Categorical(["nurse"], categories=["nurse", "app"]),
    ...                   "ee": [30]})
    >>> feature_schema(X)
    [{'name': 'role', 'kind': 'category', 'categories': ['nurse', 'app']}, {'name': 'ee', 'kind': 'integer'}]
    """
    schema = []
    for name in X.columns:
        dtype = X[name].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            schema.append(
                {
                    "name": str(name),
                    "kind": "category",
                    "categories": [_plain(c) for c in dtype.categories],
                }
            )
        elif pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            schema.append({"name": str(name), "kind": "integer"})
        elif pd.api.types.is_numeric_dtype(dtype):
            schema.append({"name": str(name), "kind": "float"})
        else:
            raise InputError(
                f"feature column {name!r} has dtype {dtype}; accepted are numeric columns and "
                "pandas 'category' columns"
            )
    return schema


def frame_from_schema(profiles: pd.DataFrame, schema: Sequence[dict]) -> pd.DataFrame:
    """Build the feature frame a model expects from profile rows.

    Parameters
    ----------
    profiles : DataFrame
        Rows with at least the schema's columns (plain strings or categoricals for categories).
    schema : sequence of dict
        As returned by :func:`feature_schema`.

    Returns
    -------
    DataFrame
        The schema's columns in order, categories with the fitted categories, numbers as
        ``int64`` or ``float64``, on the index of ``profiles``.

    Raises
    ------
    InputError
        When a column is missing, a value is missing, a category was not seen at fit time, or a
        number cannot be read; every problem is listed with its row and column.
    """
    missing = [f["name"] for f in schema if f["name"] not in profiles.columns]
    if missing:
        raise InputError(
            f"profile rows lack the feature column(s) {missing}; the model needs "
            f"{[f['name'] for f in schema]}",
            problems=[
                {"row": None, "column": m, "value": None, "rule": "required column"}
                for m in missing
            ],
        )
    columns: dict[str, pd.Series] = {}
    problems: list[dict] = []
    rows = profiles.index
    for feature in schema:
        name = feature["name"]
        raw = profiles[name]
        if feature["kind"] == "category":
            allowed = list(feature["categories"])
            values = raw.astype("object") if isinstance(raw.dtype, pd.CategoricalDtype) else raw
            bad = (~values.isin(allowed)).to_numpy()
            # Unknown values are reported below; blank them first (pandas 4 will refuse them).
            known = values.where(~bad, None)
            column = pd.Series(pd.Categorical(known, categories=allowed), index=rows, name=name)
            for position in np.flatnonzero(bad)[:_MAX_LISTED]:
                problems.append(
                    {
                        "row": _plain(rows[position]),
                        "column": name,
                        "value": _plain(values.iloc[position]),
                        "rule": levels_rule(allowed),
                    }
                )
            if bad.sum() > _MAX_LISTED:
                problems.append(
                    {
                        "row": None,
                        "column": name,
                        "value": None,
                        "rule": f"{int(bad.sum()) - _MAX_LISTED} more rows like these",
                    }
                )
        else:
            numbers = pd.to_numeric(raw, errors="coerce")
            bad = numbers.isna().to_numpy()
            for position in np.flatnonzero(bad)[:_MAX_LISTED]:
                problems.append(
                    {
                        "row": _plain(rows[position]),
                        "column": name,
                        "value": _plain(raw.iloc[position]),
                        "rule": "a number",
                    }
                )
            if feature["kind"] == "integer" and not bad.any():
                fractional = (numbers != np.round(numbers)).to_numpy()
                for position in np.flatnonzero(fractional)[:_MAX_LISTED]:
                    problems.append(
                        {
                            "row": _plain(rows[position]),
                            "column": name,
                            "value": _plain(raw.iloc[position]),
                            "rule": "a whole number",
                        }
                    )
                column = numbers.astype("int64") if not fractional.any() else numbers
            else:
                column = numbers.astype("float64")
        columns[name] = column
    if problems:
        first = problems[0]
        raise InputError(
            f"{len(problems)} problem(s) in the profile rows, first: row {first['row']}, "
            f"column {first['column']!r}, value {first['value']!r}, accepted: {first['rule']}",
            problems=problems,
        )
    return pd.DataFrame(columns, index=rows)


def _plain(value):
    """A JSON-friendly Python scalar (numpy scalars become int/float/str)."""
    if isinstance(value, np.generic):
        return value.item()
    return value
