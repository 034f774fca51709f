"""Feature frames to a float matrix the boosters and the ridge read directly.

The frame is converted once (numbers as float, categories as their integer codes under the
categories seen at fit), so prediction never goes back through pandas per model and a single
row costs microseconds. Unknown categories at predict time become missing (NaN), which
LightGBM sends down its missing-value branch rather than guessing a neighbour code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.errors import InputError

__all__ = ["FeatureEncoder"]


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
        duplicated = sorted({c for c in names if names.count(c) > 1})
        if duplicated:
            raise InputError(f"X has duplicated column names {duplicated}; names must be unique")
        self.feature_names = names
        self.categories: dict[int, list] = {}
        for j, column in enumerate(X.columns):
            values = X[column]
            if isinstance(values.dtype, pd.CategoricalDtype):
                self.categories[j] = list(values.cat.categories)
            elif pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
                continue
            else:
                observed = pd.unique(values.dropna())
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
        codes = pd.Categorical(values, categories=self.categories[j]).codes.astype(np.float64)
        codes[codes < 0] = np.nan
        return codes
