"""Feature frames to a float matrix the boosters and the ridge read directly.

The frame is converted once (numbers as float, categories as their integer codes under the
categories seen at fit), so prediction never goes back through pandas per model and a single
row costs microseconds. Unknown categories at predict time become missing (NaN), which
LightGBM sends down its missing-value branch rather than guessing a neighbour code; a value of
the other kind (a number for a column whose categories were text, or text for one whose
categories were numbers) is refused instead, since a whole column of them would silently all
be missing. Columns are matched by name, in any order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.errors import InputError

from ._checks import first_values, plain

__all__ = ["FeatureEncoder", "RESERVED_NAMES"]

# ``UpliftModel.contributions`` adds this column beside the features'
RESERVED_NAMES = ("base",)


def _kind(value) -> str:
    """What a category, or a value offered as one, is: text, a number or other."""
    if isinstance(value, str):
        return "text"
    if isinstance(value, (bool, int, float, complex, np.number, np.bool_)):
        return "number"
    return "other"


def _unsupported(values: pd.Series) -> str | None:
    """Why a feature column cannot be used, or None."""
    dtype = values.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        return "dates; convert them to a number first (e.g. days since a fixed date)"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "durations; convert them to a number first (e.g. days)"
    if pd.api.types.is_complex_dtype(dtype):
        return "complex numbers"
    if isinstance(dtype, pd.IntervalDtype):
        return "intervals"
    return None


class FeatureEncoder:
    """Remembers the columns, their kinds and categories of the training frame.

    Numeric columns (int, float, bool) stay numeric; ``category``, string and object columns
    become categorical with the categories of the training frame (a pandas ``category``
    column keeps its declared categories, so codes match the data contract's order).
    """

    def fit(self, X: pd.DataFrame) -> "FeatureEncoder":
        if not isinstance(X, pd.DataFrame):
            raise InputError(
                f"X must be a pandas DataFrame of features, got {type(X).__name__}; "
                "accepted: numeric and 'category' columns"
            )
        if X.shape[1] == 0:
            raise InputError("X has no feature columns; at least one is needed")
        names = [str(c) for c in X.columns]
        _refuse_duplicates(names)
        reserved = [c for c in names if c in RESERVED_NAMES]
        if reserved:
            raise InputError(
                f"X has a column named {reserved[0]!r}, the name contributions give the "
                "baseline; rename the feature"
            )
        self.feature_names = names
        self.categories: dict[int, list] = {}
        for j, column in enumerate(X.columns):
            values = X[column]
            why = _unsupported(values)
            if why:
                raise InputError(
                    f"X column '{names[j]}' holds {why}; accepted: numbers, booleans, text or "
                    "'category' columns"
                )
            if isinstance(values.dtype, pd.CategoricalDtype):
                self.categories[j] = list(values.cat.categories)
            elif pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
                continue
            else:
                try:
                    observed = pd.unique(values.dropna())
                except TypeError:  # lists, dicts: nothing a category can be
                    raise InputError(
                        f"X column '{names[j]}' holds values that are neither numbers nor text "
                        f"(first: {values.dropna().iloc[0]!r}); accepted: numbers, booleans, "
                        "text or 'category' columns"
                    ) from None
                self.categories[j] = sorted(observed, key=str)
        self.categorical_index = sorted(self.categories)
        self.lookups = {
            j: {v: float(k) for k, v in enumerate(c)} for j, c in self.categories.items()
        }
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Float matrix in the training column order; InputError when the columns differ."""
        if not isinstance(X, pd.DataFrame):
            raise InputError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        names = [str(c) for c in X.columns]
        if names != self.feature_names:
            _refuse_duplicates(names)
            missing = [c for c in self.feature_names if c not in names]
            extra = [c for c in names if c not in self.feature_names]
            if missing or extra or len(names) != len(self.feature_names):
                raise InputError(
                    "X columns differ from the ones the model was fitted on: "
                    f"missing {missing}, unexpected {extra}; expected {self.feature_names}"
                )
            X = X.loc[:, [X.columns[names.index(c)] for c in self.feature_names]]
        n = len(X)
        matrix = np.empty((n, len(self.feature_names)), dtype=np.float64)
        if n <= 64:
            # the single-row path: one conversion of the frame, then plain Python per column
            values = X.to_numpy(dtype=object)
            for j in range(len(self.feature_names)):
                column = values[:, j]
                if j in self.lookups:
                    lookup = self.lookups[j]
                    matrix[:, j] = [lookup.get(v, np.nan) for v in column]
                    self._check_unknown(column[np.isnan(matrix[:, j])], j)
                else:
                    matrix[:, j] = [self._number(v, j) for v in column]
        else:
            for j in range(len(self.feature_names)):
                column = X.iloc[:, j]
                if j in self.lookups:
                    matrix[:, j] = self._codes(column, j)
                else:
                    try:
                        matrix[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
                    except (TypeError, ValueError) as error:
                        raise InputError(
                            f"X column '{self.feature_names[j]}' must be numeric as at fit time; "
                            f"could not read it as numbers ({error})"
                        ) from None
        infinite = np.isinf(matrix)
        if infinite.any():
            rows, cols = np.nonzero(infinite)
            where = ", ".join(
                f"row {X.index[r]!r} column '{self.feature_names[c]}'"
                for r, c in zip(rows[:5], cols[:5])
            )
            raise InputError(
                f"X has {infinite.sum()} infinite values ({where}); finite numbers or missing "
                "values are accepted"
            )
        return matrix

    def _number(self, value, j: int) -> float:
        if value is None or value is pd.NA or value is pd.NaT:
            return np.nan
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InputError(
                f"X column '{self.feature_names[j]}' must be numeric as at fit time; got {value!r}"
            ) from None

    def _codes(self, column: pd.Series, j: int) -> np.ndarray:
        if isinstance(column.dtype, pd.CategoricalDtype) and list(column.cat.categories) == list(
            self.categories[j]
        ):
            codes = column.cat.codes.to_numpy(dtype=np.float64)
            codes[codes < 0] = np.nan
            return codes
        values = column.to_numpy(dtype=object)
        # (not pd.Categorical(values, categories=...): pandas 3 deprecates it for values
        # outside the categories, which an unseen category is, and pandas 4 raises)
        codes = pd.Index(self.categories[j], dtype=object).get_indexer(values).astype(np.float64)
        codes[codes < 0] = np.nan
        self._check_unknown(values[np.isnan(codes)], j)
        return codes

    def _check_unknown(self, values: np.ndarray, j: int) -> None:
        """An unknown category is missing, unless it is of the other kind than the column's
        categories (a number where they were text, text where they were numbers): refused."""
        if values.size == 0:
            return
        kinds = {_kind(c) for c in self.categories[j]}
        if len(kinds) != 1 or kinds == {"other"}:
            return
        (expected,) = kinds
        for value in pd.unique(values[~pd.isna(values)]):
            found = _kind(value)
            if found != expected and found != "other":
                raise InputError(
                    f"X column '{self.feature_names[j]}' held {expected} categories at fit "
                    f"({first_values(self.categories[j])}); got {plain(value)!r} ({found}). "
                    f"Pass the column as at fit (an unknown {expected} value counts as missing)"
                )


def _refuse_duplicates(names: list[str]) -> None:
    duplicated = sorted({c for c in names if names.count(c) > 1})
    if duplicated:
        raise InputError(f"X has duplicated column names {duplicated}; names must be unique")
