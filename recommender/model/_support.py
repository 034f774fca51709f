"""Where a profile lies outside the data a model learnt from.

Tree learners extrapolate flat: past the oldest person, the longest week or the most years in
practice of the training rows, and for a specialty, setting or role the training rows barely
had, the effects and their intervals are those of the nearest people the model did see, and
the intervals no longer mean what they claim. The training pipeline records the training
rows' support in the model's metadata (:func:`training_support`: each numeric feature's
range, each categorical level's count of rows); :func:`support_check` reads it back, and
:meth:`SupportCheck.outside` names, row by row, the fields where a profile lies outside it.

A level counts as seen when at least ``min_rows`` training rows had it: the training
config's ``card.min_cell`` (11 by default), the size under which the model card already
refuses to report a subgroup. One number for "too few people to say anything about" keeps
the card and the answers in agreement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = [
    "OUTSIDE_COLUMN",
    "SUPPORT_KEY",
    "MIN_LEVEL_ROWS",
    "SupportCheck",
    "extrapolation_note",
    "support_check",
    "training_support",
]

# The metadata key the support is recorded under.
SUPPORT_KEY = "training_support"

# The scored table's column naming the fields outside (``RecommendationModel.score``).
OUTSIDE_COLUMN = "outside_training_data"

# Up to this many encoded rows, each is checked value by value (as encode_rows does).
_FEW_ROWS = 16

# The threshold of a support recorded without one (the card's default min_cell).
MIN_LEVEL_ROWS = 11


def training_support(X: pd.DataFrame, *, min_rows: int = MIN_LEVEL_ROWS) -> dict:
    """The support of a training feature frame, JSON-safe, for the model's metadata.

    Parameters
    ----------
    X : DataFrame
        The frame the learners were fitted on (numeric and ``category`` columns).
    min_rows : int, default 11
        Training rows a categorical level needs to count as seen.

    Returns
    -------
    dict
        ``{"rows": n, "min_rows": min_rows, "features": {name: entry}}``, each entry
        ``{"min": .., "max": ..}`` for a numeric feature and ``{"rows": {level: count}}``
        for a categorical one (every declared level, 0 for one never seen).

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"age": [30, 52], "role": pd.Categorical(["nurse", "nurse"],
    ...                                                           categories=["nurse", "app"])})
    >>> training_support(X, min_rows=11)["features"]
    {'age': {'min': 30, 'max': 52}, 'role': {'rows': {'nurse': 2, 'app': 0}}}
    """
    features = {}
    for name in X.columns:
        column = X[name]
        if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
            column.dtype
        ):
            counts = column.value_counts(sort=False, dropna=True)
            features[str(name)] = {"rows": {str(level): int(n) for level, n in counts.items()}}
        else:
            values = column.dropna()
            low, high = (values.min(), values.max()) if len(values) else (None, None)
            features[str(name)] = {"min": _plain(low), "max": _plain(high)}
    return {"rows": int(len(X)), "min_rows": int(min_rows), "features": features}


def support_check(model) -> SupportCheck | None:
    """The check of ``model``'s recorded support, or None when it records none (the
    evidence-only model, which learnt from no rows, and models trained before it was
    recorded)."""
    metadata = getattr(model, "metadata", None)
    support = metadata.get(SUPPORT_KEY) if isinstance(metadata, Mapping) else None
    if not isinstance(support, Mapping):
        return None
    return SupportCheck(support, getattr(model, "features", ()))


class SupportCheck:
    """A model's recorded support, ready to check many rows at once.

    Parameters
    ----------
    support : mapping
        As :func:`training_support` records it.
    features : sequence of mapping
        The model's feature schema (:func:`recommender.model.feature_schema`): the column
        order and category codes of its encoded rows.
    """

    def __init__(self, support: Mapping, features: Sequence[Mapping]):
        recorded = support.get("features") or {}
        self.min_rows = int(support.get("min_rows", MIN_LEVEL_ROWS))
        self._checks: list[_Range | _Levels] = []  # in schema order
        for j, feature in enumerate(features):
            name = feature["name"]
            entry = recorded.get(name)
            if not isinstance(entry, Mapping):
                continue  # not recorded: nothing can be said of this field
            if feature.get("kind") == "category":
                categories = [str(c) for c in feature.get("categories", ())]
                counts = entry.get("rows") or {}
                # One more entry for code -1 (a level the schema does not know): no rows.
                rows = np.array([int(counts.get(c, 0)) for c in categories] + [0])
                self._checks.append(_Levels(j, name, categories, rows, rows < self.min_rows))
            elif entry.get("min") is not None and entry.get("max") is not None:
                whole = feature.get("kind") == "integer"
                self._checks.append(
                    _Range(j, name, float(entry["min"]), float(entry["max"]), whole)
                )

    def outside(self, encoded) -> list[list[dict]]:
        """Per row, the fields where it lies outside the training data, in schema order.

        Parameters
        ----------
        encoded : ndarray or DataFrame
            The model's encoded rows (:meth:`RecommendationModel.encode`: a float matrix in
            schema order with categories as codes), or a frame of the features by name
            (categories as categoricals or plain values).

        Returns
        -------
        list of list of dict
            One list per row, empty when the row is inside; each item ``{"field", "value",
            "seen"}``: the value the row has and, in words, what the training rows had.
        """
        frame = isinstance(encoded, pd.DataFrame)
        n = len(encoded)
        checks = self._checks
        if not frame and n <= _FEW_ROWS:  # a request's row or few: numpy's calls cost more
            return [
                [
                    check.item(row[check.column], self.min_rows)
                    for check in checks
                    if check.out(row[check.column])
                ]
                for row in np.asarray(encoded, dtype=float).tolist()
            ]
        flags = np.zeros((n, len(checks)), dtype=bool)
        values = []
        for k, check in enumerate(checks):
            column = encoded[check.name] if frame else encoded[:, check.column]
            flags[:, k], read = check.flags(column)
            values.append(read)
        out = [[] for _ in range(n)]
        for i in np.flatnonzero(flags.any(axis=1)).tolist():
            out[i] = [
                checks[k].item(values[k][i], self.min_rows)
                for k in np.flatnonzero(flags[i]).tolist()
            ]
        return out


class _Range(NamedTuple):
    """A numeric feature's training range."""

    column: int
    name: str
    low: float
    high: float
    whole: bool

    def flags(self, column) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(column, pd.Series):  # a frame's column
            column = pd.to_numeric(column, errors="coerce")
        values = np.asarray(column, dtype=float)
        # NaN compares False: a value that is not a number is not said to be outside.
        return (values < self.low) | (values > self.high), values

    def out(self, value: float) -> bool:
        return value < self.low or value > self.high

    def item(self, value, min_rows: int) -> dict:
        number = float(value)
        return {
            "field": self.name,
            "value": int(number) if self.whole and number.is_integer() else number,
            "seen": f"the training rows range from {self.low:g} to {self.high:g}",
        }


class _Levels(NamedTuple):
    """A categorical feature's training rows per level (by code; the last entry, for code -1,
    a level the schema does not know: none)."""

    column: int
    name: str
    categories: list
    rows: np.ndarray
    thin: np.ndarray

    def flags(self, column) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(column, pd.Series):  # a frame's column: its values as codes
            # by their text, as the support records levels (an extra feature's 1 and "1" alike)
            codes = pd.Categorical(column.astype(str), categories=self.categories).codes
        else:
            codes = np.where(np.isfinite(column), column, -1)
        codes = np.asarray(codes).astype(np.intp)
        return self.thin[codes], codes

    def out(self, code: float) -> bool:
        return bool(self.thin[int(code) if code == code else -1])  # NaN: an unknown level

    def item(self, code, min_rows: int) -> dict:
        code = int(code) if code == code else -1
        count = int(self.rows[code])
        return {
            "field": self.name,
            "value": self.categories[code] if code >= 0 else None,
            "seen": f"{count} training row{'' if count == 1 else 's'} (fewer than {min_rows})",
        }


def extrapolation_note(outside: Sequence[Mapping], coverage: float) -> str | None:
    """What an answer says of a profile outside the training data (None when it is inside).

    Examples
    --------
    >>> extrapolation_note([{"field": "age", "value": 95,
    ...                      "seen": "the training rows range from 24 to 67"}], 0.9)
    'This profile lies outside the data the model learnt from (age 95: the training rows range from 24 to 67), so its effects are extrapolated and their 90% intervals may not hold.'
    """
    if not outside:
        return None
    fields = "; ".join(f"{item['field']} {item['value']}: {item['seen']}" for item in outside)
    return (
        f"This profile lies outside the data the model learnt from ({fields}), so its effects "
        f"are extrapolated and their {coverage * 100:g}% intervals may not hold."
    )


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value
