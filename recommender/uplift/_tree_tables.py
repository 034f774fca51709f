"""Small LightGBM trees as lookup tables: many tiny trees for a batch in a few numpy calls.

A served model sums thousands of trees of four to seven leaves. LightGBM walks each tree for
each row (about 60 ns per tree and row on trees this small); here every tree is read as a
table instead. A tree with ``K`` splits sends a row to a leaf according to ``K`` yes/no
decisions; written as the bits of an integer, the *pattern* (< 2^K), they pick the leaf, so
a tree's output is ``values[pattern]``. The bits of one feature's splits depend only on
which interval between that feature's thresholds (all trees' thresholds, sorted) the value
falls in: its *bin*. So per feature a table ``(bins, trees)`` holds each tree's bits for
each bin, and a row's patterns for every tree are the sum over features of one table row
each: ten row gathers for ten features, whatever the number of trees.

Contributions work the same way. A tree's path-dependent TreeSHAP values depend on the row
only through the decisions at its splits (the algorithm follows the row's branch where the
split's feature is "present" and averages the branches by their training counts where it is
not), so they too are a table per tree: for each pattern, one value per feature the tree
splits on, computed here once as the exact Shapley values of that game (the tree's
expectation with a subset of its features fixed to the row's decisions, enumerated over the
subsets). Summed over trees that equals LightGBM's ``pred_contrib`` up to rounding.

Trees are parsed from the model text in :mod:`._lightgbm_trees` (with LightGBM's decision at
each split), and features binned in :mod:`._binning`, so that a row's pattern is the one
LightGBM's walk takes. Trees with more than ``MAX_SPLITS`` splits, linear trees, and trees on a
feature split both as a number and as a category are not tabulated: the caller keeps them for
LightGBM.
"""

from __future__ import annotations

from math import factorial

import numpy as np

# Binning is also looked up here by models pickled before it had a module of its own.
from ._binning import _FEW_ROWS, Binning
from ._lightgbm_trees import Tree

__all__ = ["TreeSums", "TreeContributions", "leaf_values", "shapley_table"]


def leaf_values(tree: Tree) -> np.ndarray:
    """The tree's output for each of its 2^splits patterns."""
    if tree.splits == 0:
        return tree.leaf_value[:1].copy()
    return tree.leaf_value[tree.leaf_of(np.arange(2**tree.splits, dtype=np.int64))]


def shapley_table(tree: Tree) -> tuple[np.ndarray, np.ndarray, float]:
    """Path-dependent TreeSHAP of ``tree`` for every pattern.

    Returns the features it splits on, a (2^splits, features) table of their contributions
    and the tree's expected value (LightGBM's base: leaf values weighted by training counts).
    The game: ``v(S)`` is the tree's output when the splits on features in ``S`` follow the
    row and the others average their branches by training counts; contributions are its
    Shapley values, found by enumerating the subsets (a tabulated tree has few features).
    """
    if tree.splits == 0:
        return np.zeros(0, np.int64), np.zeros((1, 0)), float(tree.leaf_value[0])
    features = np.array(sorted({int(j) for j in tree.feature}), dtype=np.int64)
    m = len(features)
    position = {int(j): i for i, j in enumerate(features)}
    subsets = np.arange(2**m, dtype=np.int64)[:, None]
    patterns = np.arange(2**tree.splits, dtype=np.int64)[None, :]

    def count(child):
        return tree.leaf_count[~child] if child < 0 else tree.internal_count[child]

    def value(child):
        if child < 0:
            return np.full((1, 1), tree.leaf_value[~child])
        node = child
        left, right = tree.left[node], tree.right[node]
        v_left, v_right = value(left), value(right)
        present = (subsets >> position[int(tree.feature[node])]) & 1 == 1
        follows = np.where((patterns >> node) & 1 == 1, v_left, v_right)
        total = tree.internal_count[node]
        averaged = (count(left) / total) * v_left + (count(right) / total) * v_right
        return np.where(present, follows, averaged)

    v = np.broadcast_to(value(0), (2**m, 2**tree.splits))
    weight = [factorial(s) * factorial(m - s - 1) / factorial(m) for s in range(m)]
    size = np.array([bin(s).count("1") for s in range(2**m)])
    phi = np.zeros((2**tree.splits, m))
    for i in range(m):
        without = np.flatnonzero((np.arange(2**m) >> i) & 1 == 0)
        phi[:, i] = np.array([weight[s] for s in size[without]]) @ (
            v[without | (1 << i)] - v[without]
        )
    # the base as LightGBM's Tree::ExpectedValue computes it, term by term
    total = float(tree.internal_count[0])
    base = 0.0
    for leaf_count, leaf_value in zip(tree.leaf_count, tree.leaf_value):
        base += (leaf_count / total) * leaf_value
    return features, phi, base


def _pack(trees: list[Tree], groups: list[int], bits: int) -> list[tuple[int, list]]:
    """Trees packed, in group order, into columns of at most ``bits`` pattern bits.

    Returns per column its group and its trees as ``(tree index, first bit)``: a column's
    pattern is its trees' patterns side by side, so one table lookup reads them all.
    """
    columns: list[tuple[int, list]] = []
    members: list = []
    used, group = 0, None
    for t in sorted(range(len(trees)), key=lambda t: groups[t]):
        k = trees[t].splits
        if members and (groups[t] != group or used + k > bits):
            columns.append((group, members))
            members, used = [], 0
        members.append((t, used))
        used += k
        group = groups[t]
    if members:
        columns.append((group, members))
    return columns


class _Patterns:
    """Each column's table index for a batch: a sum of one row per feature.

    ``table[r, c]``, for ``r`` a bin of feature ``j`` (a row of the binning's stacked
    table), is the part of column ``c``'s index that a value in that bin decides: the bits
    of the column's splits on ``j`` that go left, each worth ``scale[c] << bit``. The
    columns' table offsets ride on the first feature's rows.
    """

    def __init__(self, trees, columns, binning: Binning, scale, offsets):
        n_columns = len(columns)
        table = np.zeros((binning.rows, n_columns), dtype=np.int64)
        used = set()
        for c, (_, members) in enumerate(columns):
            for t, first in members:
                tree = trees[t]
                for node in range(tree.splits):
                    j = int(tree.feature[node])
                    used.add(j)
                    rows = slice(
                        binning.offsets[j], binning.offsets[j] + len(binning.representatives[j])
                    )
                    left = tree.goes_left(node, binning.representatives[j])
                    table[rows, c] += left.astype(np.int64) * (int(scale[c]) << (first + node))
        offsets = np.asarray(offsets, dtype=np.int64)
        self.used = [k for k, j in enumerate(binning.features) if j in used]
        if self.used:
            j = binning.features[self.used[0]]
            table[binning.offsets[j] : binning.offsets[j] + len(binning.representatives[j])] += (
                offsets
            )
        top = int(table.max(initial=0)) * max(len(self.used), 1) + int(offsets.max(initial=0))
        dtype = np.int32 if top < 2**31 else np.int64
        self.table = table.astype(dtype)
        self.offsets = offsets.astype(dtype)

    def __call__(self, bins: np.ndarray) -> np.ndarray:
        n = bins.shape[0]
        if not self.used:
            return np.broadcast_to(self.offsets, (n, len(self.offsets))).copy()
        if n <= _FEW_ROWS:
            return self.table[bins[:, self.used]].sum(axis=1, dtype=self.table.dtype)
        out = self.table[bins[:, self.used[0]]]
        for k in self.used[1:]:
            out += self.table[bins[:, k]]
        return out


class TreeSums:
    """Sums of tabulated trees per group (an output), for a batch, from one pattern pass.

    Parameters
    ----------
    trees : list of Tree
        Each must satisfy ``binning.usable``.
    groups : list of int
        Each tree's group in ``range(n_groups)``.
    bits : int
        Pattern bits per column (a column's table has 2^bits entries at most).
    """

    def __init__(self, trees, groups, n_groups: int, binning: Binning, *, bits: int):
        self.binning = binning
        self.n_groups = n_groups
        columns = _pack(trees, groups, bits)
        tables, offsets, start = [], [], 0
        for _, members in columns:
            used = sum(trees[t].splits for t, _ in members)
            every = np.arange(2**used, dtype=np.int64)
            table = np.zeros(2**used)
            for t, first in members:
                tree = trees[t]
                table += leaf_values(tree)[(every >> first) & (2**tree.splits - 1)]
            tables.append(table)
            offsets.append(start)
            start += len(table)
        self.values = np.concatenate(tables) if tables else np.zeros(0)
        self.patterns = _Patterns(trees, columns, binning, [1] * len(columns), offsets)
        column_group = np.array([g for g, _ in columns], dtype=np.intp)
        first = np.flatnonzero(np.r_[True, column_group[1:] != column_group[:-1]])
        self.starts = first if len(columns) else np.zeros(0, np.intp)
        self.groups = column_group[first] if len(columns) else np.zeros(0, np.intp)

    def predict(self, bins: np.ndarray) -> np.ndarray:
        """(rows, groups): each group's sum of trees, from :meth:`Binning.bins`."""
        n = bins.shape[0]
        out = np.zeros((n, self.n_groups))
        if n and len(self.starts):
            for rows in _chunks(n):
                values = self.values[self.patterns(bins[rows])]
                out[rows, self.groups] = np.add.reduceat(values, self.starts, axis=1)
        return out


class TreeContributions:
    """TreeSHAP contributions of a sum of tabulated trees, read from per-column tables.

    A column's table holds, per pattern, the summed contributions of its trees to each
    feature they split on; the base (the trees' expected values) is one number.
    """

    def __init__(self, trees, binning: Binning, n_features: int, *, bits: int):
        self.n_features = n_features
        columns = _pack(trees, [0] * len(trees), bits)
        self.base = 0.0
        tables, offsets, widths, pair_column, pair_feature, pair_offset = [], [], [], [], [], []
        start = 0
        for c, (_, members) in enumerate(columns):
            used = sum(trees[t].splits for t, _ in members)
            shap = [shapley_table(trees[t]) for t, _ in members]
            features = sorted({int(j) for f, _, _ in shap for j in f})
            where = {j: i for i, j in enumerate(features)}
            every = np.arange(2**used, dtype=np.int64)
            table = np.zeros((2**used, len(features)))
            for (t, first), (f, phi, base) in zip(members, shap):
                self.base += base
                rows = (every >> first) & (2 ** trees[t].splits - 1)
                for i, j in enumerate(f):
                    table[:, where[int(j)]] += phi[rows, i]
            for i, j in enumerate(features):
                pair_column.append(c)
                pair_feature.append(j)
                pair_offset.append(i)
            tables.append(table.ravel())
            offsets.append(start)
            widths.append(max(len(features), 1))
            start += table.size
        self.values = np.concatenate(tables) if tables else np.zeros(0)
        self.patterns = _Patterns(trees, columns, binning, widths, offsets)
        order = np.argsort(pair_feature, kind="stable")
        self.pair_column = np.array(pair_column, dtype=np.intp)[order]
        self.pair_offset = np.array(pair_offset, dtype=np.intp)[order]
        feature = np.array(pair_feature, dtype=np.intp)[order]
        first = np.flatnonzero(np.r_[True, feature[1:] != feature[:-1]]) if len(feature) else []
        self.starts = np.asarray(first, dtype=np.intp)
        self.features = feature[self.starts] if len(feature) else np.zeros(0, np.intp)

    def contrib(self, bins: np.ndarray) -> np.ndarray:
        """(rows, features + 1): per-feature contributions, then the base."""
        n = bins.shape[0]
        out = np.zeros((n, self.n_features + 1))
        out[:, -1] = self.base
        if n and len(self.starts):
            for rows in _chunks(n):
                index = self.patterns(bins[rows])[:, self.pair_column] + self.pair_offset
                out[rows, self.features] = np.add.reduceat(self.values[index], self.starts, axis=1)
        return out


# Rows read together: a batch's patterns are rows x columns (a thousand rows of about 2,000
# columns of the demo model are 8 MB, built by ten gathers and sums); a slice of this many
# rows keeps them in a core's cache between those passes and the values' gather, which made
# a 1,000-row prediction take 12 ms instead of 20. Rows are independent: the same sums.
_CHUNK_ROWS = 128


def _chunks(n: int):
    """Slices of ``range(n)``, ``_CHUNK_ROWS`` rows each (the last one fewer)."""
    return [slice(start, start + _CHUNK_ROWS) for start in range(0, n, _CHUNK_ROWS)]
