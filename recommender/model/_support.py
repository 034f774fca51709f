"""Where a profile lies outside the data a model learnt from.

Tree learners extrapolate flat: past the oldest person, the longest week or the most years in
practice of the training rows, and for a specialty, setting or role the training rows barely
had, the effects and their intervals are those of the nearest people the model did see, and
the intervals no longer mean what they claim. The training pipeline records the training
rows' support in the model's metadata (:func:`training_support`: each numeric feature's
range, each categorical level's count of rows); :func:`support_check` reads it back, and
:meth:`SupportCheck.outside` names, row by row, the fields where a profile lies outside it.

Each field alone is not enough: a resident aged 50, or a nurse working 70 hours a week, lies
inside every field's range (physicians were 50, residents worked 70 hours) and still where no
training row was. So the support is also recorded within each role (``WITHIN``) the training
rows had enough of: each numeric feature's range and each level's rows among that role's
people, and a profile is also outside where its value lies outside its own role's.

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
    "WITHIN",
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

# The categorical feature the support is also recorded within: the contract's role, which
# decides referrals and eligibility and shapes every other field (residents' years, nurses'
# hours).
WITHIN = "role"


def training_support(
    X: pd.DataFrame, *, min_rows: int = MIN_LEVEL_ROWS, within: str | None = WITHIN
) -> dict:
    """The support of a training feature frame, JSON-safe, for the model's metadata.

    Parameters
    ----------
    X : DataFrame
        The frame the learners were fitted on (numeric and ``category`` columns).
    min_rows : int, default 11
        Training rows a categorical level needs to count as seen.
    within : str or None, default ``"role"``
        A categorical feature within whose levels the support is also recorded (None, or a
        feature ``X`` does not have: not recorded).

    Returns
    -------
    dict
        ``{"rows": n, "min_rows": min_rows, "features": {name: entry}}``, each entry
        ``{"min": .., "max": ..}`` for a numeric feature and ``{"rows": {level: count}}``
        for a categorical one (every declared level, 0 for one never seen); and
        ``"within": {"feature": within, "levels": {level: {name: entry}}}``, the other
        features' entries among the rows of each level of ``within`` at least ``min_rows``
        rows had.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"age": [30, 52], "role": pd.Categorical(["nurse", "nurse"],
    ...                                                           categories=["nurse", "app"])})
    >>> training_support(X, min_rows=11)["features"]
    {'age': {'min': 30, 'max': 52}, 'role': {'rows': {'nurse': 2, 'app': 0}}}
    >>> training_support(X, min_rows=2)["within"]
    {'feature': 'role', 'levels': {'nurse': {'age': {'min': 30, 'max': 52}}}}
    """
    support = {"rows": int(len(X)), "min_rows": int(min_rows), "features": _entries(X)}
    if within is not None and within in X.columns:
        groups = X[within].astype(str).where(X[within].notna())
        counts = groups.value_counts(sort=False)
        others = X.drop(columns=within)
        support["within"] = {
            "feature": str(within),
            "levels": {
                str(level): _entries(others.loc[(groups == level).to_numpy()])
                for level, n in counts.items()
                if n >= min_rows
            },
        }
    return support


def _entries(X: pd.DataFrame) -> dict:
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
    return features


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
        # Each field's own check in schema order, then the checks within the role.
        self._checks: list[_Range | _Levels | _Within] = []
        for j, feature in enumerate(features):
            check = _field_check(j, feature, recorded.get(feature["name"]), self.min_rows)
            if check is not None:
                self._checks.append(check)
        fields = list(self._checks)
        self._checks += _within_checks(support.get("within"), features, fields, self.min_rows)
        # The value-by-value path's lookups: each field's check, then per level of the role
        # (by code; the last for code -1 or NaN) its checks within it and the words they add.
        within = [c for c in self._checks if isinstance(c, _Within)]
        self._group = within[0].group_column if within else None
        self._by_level = (
            [
                [
                    (c.per_level[code], c.among(code))
                    for c in within
                    if c.per_level[code] is not None
                ]
                for code in range(len(within[0].levels))
            ]
            + [[]]
            if within
            else []
        )
        self._fields = fields

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
            return [self._row_outside(row) for row in np.asarray(encoded, dtype=float).tolist()]
        flags = np.zeros((n, len(checks)), dtype=bool)
        values = []
        for k, check in enumerate(checks):
            flags[:, k], read = check.flags(encoded, frame)
            values.append(read)
            if isinstance(check, _Within):  # a field outside on its own is said once
                flags[:, k] &= ~flags[:, check.field_check]
        out = [[] for _ in range(n)]
        min_rows = self.min_rows
        # Every row's flagged checks in one call (row by row, each row's in schema order),
        # rather than a numpy call per row outside.
        for i, k in zip(*(where.tolist() for where in np.nonzero(flags))):
            out[i].append(checks[k].item_at(values[k], i, min_rows))
        return out

    def _row_outside(self, row: list) -> list[dict]:
        min_rows = self.min_rows
        items = [check.item(row, min_rows) for check in self._fields if check.out(row)]
        if self._group is not None:
            code = row[self._group]
            code = int(code) if code == code else -1  # NaN: a role the schema does not know
            said = {item["field"] for item in items}  # a field outside on its own is said once
            items += [
                check.item(row, min_rows, among)
                for check, among in self._by_level[code]
                if check.name not in said and check.out(row)
            ]
        return items


def _field_check(j: int, feature: Mapping, entry, min_rows: int):
    """The check of one field's recorded support (None when nothing was recorded)."""
    if not isinstance(entry, Mapping):
        return None  # not recorded: nothing can be said of this field
    name = feature["name"]
    if feature.get("kind") == "category":
        categories = [str(c) for c in feature.get("categories", ())]
        counts = entry.get("rows") or {}
        # One more entry for code -1 (a level the schema does not know): no rows.
        rows = np.array([int(counts.get(c, 0)) for c in categories] + [0])
        return _Levels(j, name, categories, rows, rows < min_rows)
    if entry.get("min") is not None and entry.get("max") is not None:
        whole = feature.get("kind") == "integer"
        return _Range(j, name, float(entry["min"]), float(entry["max"]), whole)
    return None


def _within_checks(within, features: Sequence[Mapping], field_checks: list, min_rows: int) -> list:
    """The checks within each recorded level of the role: one per field that has its own."""
    if not isinstance(within, Mapping):
        return []  # a support recorded before it was recorded within the role
    schema = {feature["name"]: (j, feature) for j, feature in enumerate(features)}
    group = schema.get(within.get("feature"))
    if group is None or group[1].get("kind") != "category":
        return []
    g, group_feature = group
    levels = [str(c) for c in group_feature.get("categories", ())]
    recorded = within.get("levels") or {}
    checks = []
    for k, field in enumerate(field_checks):
        if field.column == g:
            continue
        # per level of the role (and one more for a role the schema does not know: no check)
        per_level = [
            _field_check(
                field.column,
                schema[field.name][1],
                (recorded.get(level) or {}).get(field.name),
                min_rows,
            )
            for level in levels
        ] + [None]
        if any(check is not None for check in per_level):
            checks.append(_Within(k, field, g, group_feature["name"], levels, per_level))
    return checks


class _Range(NamedTuple):
    """A numeric feature's training range."""

    column: int
    name: str
    low: float
    high: float
    whole: bool

    def read(self, encoded, frame: bool) -> np.ndarray:
        column = encoded[self.name] if frame else encoded[:, self.column]
        if isinstance(column, pd.Series):  # a frame's column
            column = pd.to_numeric(column, errors="coerce")
        return np.asarray(column, dtype=float)

    def flags_of(self, values: np.ndarray) -> np.ndarray:
        # NaN compares False: a value that is not a number is not said to be outside.
        return (values < self.low) | (values > self.high)

    def flags(self, encoded, frame: bool) -> tuple[np.ndarray, np.ndarray]:
        values = self.read(encoded, frame)
        return self.flags_of(values), values

    def out(self, row) -> bool:
        value = row[self.column]
        return value < self.low or value > self.high

    def item(self, row, min_rows: int, among: str = "") -> dict:
        return self.said(row[self.column], min_rows, among)

    def item_at(self, values, i: int, min_rows: int) -> dict:
        return self.said(values[i], min_rows)

    def said(self, value, min_rows: int, among: str = "") -> dict:
        number = float(value)
        return {
            "field": self.name,
            "value": int(number) if self.whole and number.is_integer() else number,
            "seen": f"the training rows{among} range from {self.low:g} to {self.high:g}",
        }


class _Levels(NamedTuple):
    """A categorical feature's training rows per level (by code; the last entry, for code -1,
    a level the schema does not know: none)."""

    column: int
    name: str
    categories: list
    rows: np.ndarray
    thin: np.ndarray

    def read(self, encoded, frame: bool) -> np.ndarray:
        if frame:  # a frame's column: its values as codes
            # by their text, as the support records levels (an extra feature's 1 and "1" alike)
            column = encoded[self.name]
            codes = pd.Categorical(column.astype(str), categories=self.categories).codes
        else:
            column = encoded[:, self.column]
            codes = np.where(np.isfinite(column), column, -1)
        return np.asarray(codes).astype(np.intp)

    def flags_of(self, codes: np.ndarray) -> np.ndarray:
        return self.thin[codes]

    def flags(self, encoded, frame: bool) -> tuple[np.ndarray, np.ndarray]:
        codes = self.read(encoded, frame)
        return self.flags_of(codes), codes

    def out(self, row) -> bool:
        code = row[self.column]
        return bool(self.thin[int(code) if code == code else -1])  # NaN: an unknown level

    def item(self, row, min_rows: int, among: str = "") -> dict:
        return self.said(row[self.column], min_rows, among)

    def item_at(self, codes, i: int, min_rows: int) -> dict:
        return self.said(codes[i], min_rows)

    def said(self, code, min_rows: int, among: str = "") -> dict:
        code = int(code) if code == code else -1
        count = int(self.rows[code])
        return {
            "field": self.name,
            "value": self.categories[code] if code >= 0 else None,
            "seen": f"{count} training row{'' if count == 1 else 's'}{among} "
            f"(fewer than {min_rows})",
        }


class _Within(NamedTuple):
    """One field's support within each level of the role (``per_level[code]``: that level's
    check, None where nothing was recorded; the last entry, for a role the schema does not
    know, None)."""

    field_check: int  # the position of the field's own check among the checks
    field: _Range | _Levels
    group_column: int
    group_name: str
    levels: list
    per_level: list

    @property
    def name(self) -> str:
        return self.field.name

    def among(self, code: int) -> str:
        """The words the role's level ``code`` adds to what the training rows had."""
        return f" with {self.group_name} {self.levels[code]}"

    def flags(self, encoded, frame: bool) -> tuple[np.ndarray, tuple]:
        if frame:
            column = encoded[self.group_name].astype(str)
            groups = np.asarray(pd.Categorical(column, categories=self.levels).codes)
        else:
            column = encoded[:, self.group_column]
            groups = np.where(np.isfinite(column), column, -1)
        groups = groups.astype(np.intp)
        values = self.field.read(encoded, frame)
        flags = np.zeros(len(values), dtype=bool)
        for code, check in enumerate(self.per_level):
            if check is not None:
                members = groups == code
                flags[members] = check.flags_of(values[members])
        return flags, (groups, values)

    def item_at(self, read: tuple, i: int, min_rows: int) -> dict:
        groups, values = read
        code = int(groups[i])
        return self.per_level[code].said(values[i], min_rows, self.among(code))


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
