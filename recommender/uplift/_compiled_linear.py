"""The compiled form's ridge members: affine maps per feature, category tables in one gather."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


class _LinearStack:
    """Ridge members as one affine map: constants, slopes on numbers, tables on categories.

    A ridge model predicts ``b + (Z(x) − z̄)·w`` where ``Z`` standardizes numbers (a missing
    number counts as the mean) and one-hot encodes categories (an unseen code is all zeros);
    per feature that is affine in a number, or a lookup by category code.
    """

    def __init__(self, members, n_outputs: int, encoder):
        p = len(encoder.feature_names)
        self.categorical = sorted(encoder.categories)
        self.numeric = [j for j in range(p) if j not in encoder.categories]
        self.levels = {j: len(encoder.categories[j]) for j in self.categorical}
        self.constant = np.zeros(n_outputs)
        self.slope = np.zeros((len(self.numeric), n_outputs))
        self.missing = np.zeros((len(self.numeric), n_outputs))
        self.tables = {j: np.zeros((self.levels[j] + 1, n_outputs)) for j in self.categorical}
        for output, weight, model in members:
            design, coef = model.design, weight * model.coef
            self.constant[output] += weight * model.intercept - model.z_mean @ coef
            column = 0
            for j in range(design.p):
                if j in design.categorical:
                    for level in design.levels[j]:
                        if 0 <= level < self.levels.get(j, 0):
                            self.tables[j][level, output] += coef[column]
                        column += 1
                else:
                    k = self.numeric.index(j)
                    a = coef[column] / design.scales[j]
                    self.slope[k, output] += a
                    shift = a * design.means[j]
                    self.constant[output] -= shift
                    self.missing[k, output] += shift  # a missing number is the mean: term 0
                    column += 1

    def predict(self, M: np.ndarray) -> np.ndarray:
        numbers = M[:, self.numeric]
        absent = np.isnan(numbers)
        out = self.constant + np.where(absent, 0.0, numbers) @ self.slope + absent @ self.missing
        if self.categorical:
            if "_lookup" not in self.__dict__:
                self._lookup = _CategoryLookup(self.categorical, self.levels, self.tables)
            out += self._lookup.values(M)
        return out


class _CategoryLookup:
    """Every categorical feature's table stacked into one, read by one gather per batch.

    A code that is missing, negative or past the feature's levels reads the feature's last
    row (an unseen category: no level matches).
    """

    def __init__(self, categorical, sizes: Mapping, tables: Mapping):
        self.columns = list(categorical)
        self.sizes = np.array([sizes[j] for j in self.columns], dtype=float)
        blocks = [tables[j] for j in self.columns]
        self.offsets = np.cumsum([0] + [len(b) for b in blocks[:-1]]).astype(np.intp)
        self.table = np.concatenate(blocks)

    def entries(self, M: np.ndarray) -> np.ndarray:
        """(n, categorical features, ...): each row's entry of each feature's table."""
        codes = M[:, self.columns]
        unseen = ~((codes >= 0) & (codes < self.sizes))  # NaN compares False: unseen
        index = np.where(unseen, self.sizes, codes).astype(np.intp) + self.offsets
        return self.table[index]

    def values(self, M: np.ndarray) -> np.ndarray:
        """(n, ...): the sum over the categorical features of each row's table entry."""
        return self.entries(M).sum(axis=1)
