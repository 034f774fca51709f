"""The learners' input: profile features in a fixed order with stable category codes."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from recommender.errors import InputError

from ._contract import CATEGORIES, FEATURE_COLUMNS, INTEGER_COLUMNS

__all__ = ["feature_frame", "extra_is_number", "MAX_EXTRA_LEVELS"]

# Most distinct values a categorical extra feature may take in a training table. A column with
# more is closer to an identifier (a name, an e-mail, a unit code per person) than to a
# feature: its levels are too thin to learn from, and a served model lists them in its public
# request schema. 50 levels leave 400 rows each in the demo's 20,000.
MAX_EXTRA_LEVELS = 50


def extra_is_number(column: pd.Series) -> bool:
    """Whether an extra feature column is taken as a number (else as a category): a numeric
    column, or text whose every present value reads as a number."""
    if pd.api.types.is_numeric_dtype(column.dtype):
        return True
    numbers = pd.to_numeric(column, errors="coerce")
    return bool(numbers.notna().sum() == column.notna().sum())


def feature_frame(frame: pd.DataFrame, extra_features: Iterable[str] = ()) -> pd.DataFrame:
    """The model's features: contract profile columns in a fixed order, then named extras.

    Categorical columns get the contract's fixed category lists, so a category has the same
    code at fit and at predict time however few categories a batch happens to contain.
    ``person_id`` is never a feature. The index of ``frame`` is kept.

    Parameters
    ----------
    frame : DataFrame
        A validated cohort (typed or as read).
    extra_features : iterable of str
        Program-specific columns to append: numeric ones as ``float64``, others as
        ``category`` with their sorted distinct values (fix them in the training config if
        codes must be stable across batches).

    Raises
    ------
    InputError
        If a feature column is missing or a categorical value is outside the contract (which
        would otherwise turn silently into a missing value).

    Examples
    --------
    >>> import pandas as pd
    >>> profile = pd.DataFrame({"person_id": ["p1"], "age": [40], "gender": ["female"],
    ...     "role": ["nurse"], "specialty": ["other"], "setting": ["rural"],
    ...     "years_in_practice": [12.0], "weekly_hours": [45.0], "ee": [30], "dp": [8], "pa": [35]})
    >>> features = feature_frame(profile)
    >>> list(features.columns)[:3], features["role"].cat.categories.tolist()
    (['age', 'gender', 'role'], ['physician', 'resident', 'nurse', 'app'])
    """
    extra_features = tuple(extra_features)
    wanted = list(FEATURE_COLUMNS) + [c for c in extra_features if c not in FEATURE_COLUMNS]
    absent = [c for c in wanted if c not in frame.columns]
    if absent:
        raise InputError(
            f"feature columns missing: {', '.join(absent)}; a profile needs " + ", ".join(wanted)
        )
    features = {}
    problems = []
    for name in wanted:
        column = frame[name]
        if name in CATEGORIES:
            text = column.astype("string")
            unknown = (text.notna() & ~text.isin(CATEGORIES[name])).to_numpy(dtype=bool)
            if unknown.any():
                bad = sorted(set(text[unknown]))
                problems.append(
                    f"{name}: unknown categories {bad}; accepted: {', '.join(CATEGORIES[name])}"
                )
                continue
            values = pd.Categorical(text, categories=CATEGORIES[name])
            features[name] = pd.Series(values, index=frame.index)
        elif name in FEATURE_COLUMNS:
            numbers = pd.to_numeric(column, errors="coerce")
            if name in INTEGER_COLUMNS and not numbers.isna().any():
                features[name] = numbers.astype("int64")
            else:
                features[name] = numbers.astype("float64")
        else:
            if extra_is_number(column):
                features[name] = pd.to_numeric(column, errors="coerce").astype("float64")
            else:
                text = column.astype("string")
                features[name] = pd.Series(
                    pd.Categorical(text, categories=sorted(set(text.dropna()))), index=frame.index
                )
    if problems:
        raise InputError("; ".join(problems), problems=problems)
    return pd.DataFrame(features, index=frame.index)
