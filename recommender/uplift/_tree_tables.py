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

Decisions follow LightGBM's own rules (``Tree::NumericalDecision`` and
``Tree::CategoricalDecision``): a number goes left when ``x <= threshold``, a missing number
counts as 0 unless the split sends missing values one way (``missing_type`` NaN, or Zero for
zero and missing); a category goes left when its integer code is in the split's set, and
negative, missing or out-of-range codes go right. Every bin's decisions are taken from one
representative value by those rules, and each bin holds only values with the same decisions
as its representative, so a row's pattern is the one LightGBM's walk takes.

Trees with more than ``MAX_SPLITS`` splits, linear trees, and trees on a feature split both
as a number and as a category are not tabulated: the caller keeps them for LightGBM.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from math import factorial

import numpy as np

__all__ = ["Tree", "parse_trees", "Binning", "TreeSums", "TreeContributions", "MAX_SPLITS"]

# A tree with up to this many splits is a table of 2^MAX_SPLITS entries at most (its TreeSHAP
# table: patterns x features, computed over 2^features subsets at build time).
MAX_SPLITS = 8

# Up to this many rows a batch is binned and patterned with one numpy call per step (few
# calls matter for one answer); past it, per-feature loops move less memory.
_FEW_ROWS = 8

# LightGBM reads a value within this of zero as zero (kZeroThreshold, a float constant).
_ZERO = float(np.float32(1e-35))

_CATEGORICAL = 1
_DEFAULT_LEFT = 2


@dataclass
class Tree:
    """One LightGBM tree as arrays (the model text's fields), leaf values already weighted."""

    feature: np.ndarray  # per split: feature index
    threshold: np.ndarray  # per split: threshold (numbers) or category set index
    decision: np.ndarray  # per split: LightGBM's decision_type bits
    left: np.ndarray  # per split: child (>= 0 a split, < 0 the leaf ~child)
    right: np.ndarray
    leaf_value: np.ndarray
    leaf_count: np.ndarray
    internal_count: np.ndarray
    cat_boundaries: np.ndarray
    cat_threshold: np.ndarray  # uint32 words of the category sets
    linear: bool

    @property
    def splits(self) -> int:
        return len(self.feature)

    def is_categorical(self, node: int) -> bool:
        return bool(self.decision[node] & _CATEGORICAL)

    def goes_left(self, node: int, values: np.ndarray) -> np.ndarray:
        """LightGBM's decision at ``node`` for each of ``values`` (a float array)."""
        decision = int(self.decision[node])
        missing = (decision >> 2) & 3
        if decision & _CATEGORICAL:
            with np.errstate(invalid="ignore"):
                finite = np.isfinite(values) & (np.abs(values) < 2**31)
                code = np.where(finite, np.trunc(np.where(finite, values, 0.0)), -1.0)
            cat = int(self.threshold[node])
            words = self.cat_threshold[self.cat_boundaries[cat] : self.cat_boundaries[cat + 1]]
            size = 32 * len(words)
            inside = (code >= 0) & (code < size)
            k = np.where(inside, code, 0).astype(np.int64)
            bits = (words[k // 32].astype(np.int64) >> (k % 32)) & 1
            return inside & (bits == 1)
        x = np.where(np.isnan(values) & (missing != 2), 0.0, values)
        default = bool(decision & _DEFAULT_LEFT)
        with np.errstate(invalid="ignore"):
            out = x <= self.threshold[node]
        if missing == 1:
            out = np.where((x >= -_ZERO) & (x <= _ZERO), default, out)
        elif missing == 2:
            out = np.where(np.isnan(x), default, out)
        return out

    def leaf_of(self, bits: np.ndarray) -> np.ndarray:
        """The leaf each pattern (an integer array, bit k = split k goes left) reaches."""
        node = np.zeros(bits.shape, dtype=np.int64)
        done = np.zeros(bits.shape, dtype=bool)
        leaf = np.zeros(bits.shape, dtype=np.int64)
        for _ in range(self.splits + 1):
            active = ~done
            if not active.any():
                break
            current = node[active]
            left = (bits[active] >> current) & 1 == 1
            nxt = np.where(left, self.left[current], self.right[current])
            reached = nxt < 0
            idx = np.flatnonzero(active)
            leaf[idx[reached]] = ~nxt[reached]
            done[idx[reached]] = True
            node[idx[~reached]] = nxt[~reached]
        return leaf


def _numbers(fields: dict, key: str, dtype=float) -> np.ndarray:
    text = fields.get(key, "")
    return np.array(text.split(" ") if text else [], dtype=dtype)


def parse_trees(blocks, weight: float = 1.0) -> list[Tree]:
    """Trees from LightGBM model text blocks (one per tree, without the "Tree=k" line)."""
    trees = []
    for block in blocks:
        fields = {}
        for line in block.split("\n"):
            key, sep, value = line.partition("=")
            if sep:
                fields[key] = value.strip()

        numbers = partial(_numbers, fields)
        trees.append(
            Tree(
                feature=numbers("split_feature", np.int64),
                threshold=numbers("threshold"),
                decision=numbers("decision_type", np.int64),
                left=numbers("left_child", np.int64),
                right=numbers("right_child", np.int64),
                leaf_value=weight * numbers("leaf_value"),
                leaf_count=numbers("leaf_count"),
                internal_count=numbers("internal_count"),
                cat_boundaries=numbers("cat_boundaries", np.int64),
                cat_threshold=numbers("cat_threshold", np.uint64).astype(np.uint32),
                linear=fields.get("is_linear", "0") != "0",
            )
        )
    return trees


def tabulable(tree: Tree) -> bool:
    """Whether ``tree`` can be read as a table (small, not linear)."""
    return not tree.linear and tree.splits <= MAX_SPLITS


class Binning:
    """Each feature's values cut into the intervals between the trees' thresholds.

    A number's bins: ``(-inf, t_0]``, ``(t_0, t_1]``, ..., ``(t_last, inf)``, then missing
    (with ``[-0, 0]`` a bin of its own when a split treats zero as missing). A category's
    bins: each code some split's set can hold, then one for every other value (negative,
    missing, past every set), which goes right at every split.
    """

    def __init__(self, trees: list[Tree], n_features: int):
        kinds: dict[int, set] = {}
        cuts: dict[int, set] = {}
        sizes: dict[int, int] = {}
        zero: set[int] = set()
        for tree in trees:
            for node in range(tree.splits):
                j = int(tree.feature[node])
                if tree.is_categorical(node):
                    kinds.setdefault(j, set()).add("category")
                    cat = int(tree.threshold[node])
                    words = tree.cat_boundaries[cat + 1] - tree.cat_boundaries[cat]
                    sizes[j] = max(sizes.get(j, 0), 32 * int(words))
                else:
                    kinds.setdefault(j, set()).add("number")
                    cuts.setdefault(j, set()).add(float(tree.threshold[node]))
                    if (int(tree.decision[node]) >> 2) & 3 == 1:
                        zero.add(j)
        self.mixed = {j for j, k in kinds.items() if len(k) > 1}
        self._edges = {j: cuts[j] for j in cuts}
        self._zero = zero
        self.n_features = n_features
        self.numeric: dict[int, np.ndarray] = {}
        self.categorical: dict[int, int] = {}
        self.representatives: dict[int, np.ndarray] = {}
        self._edges_then_specials: dict[int, np.ndarray] = {}  # per number: edges, inf, NaN
        for j in sorted(kinds):
            if j in self.mixed:
                continue
            if "category" in kinds[j]:
                size = sizes[j]
                self.categorical[j] = size
                self.representatives[j] = np.append(np.arange(size, dtype=float), -1.0)
            else:
                points = cuts[j] | ({-np.nextafter(0.0, 1.0), 0.0} if j in zero else set())
                edges = np.array(sorted(points))
                self.numeric[j] = edges
                self._edges_then_specials[j] = np.concatenate([edges, [np.inf, np.nan]])
                representatives = self._edges_then_specials[j].copy()
                if j in zero:
                    # A bin's edge in [-_ZERO, 0) reads as zero, which such a split sends its
                    # missing way; the values binned below it are all < -_ZERO (zero has a bin
                    # of its own), so the largest of those stands for the bin.
                    below = (representatives >= -_ZERO) & (representatives < 0)
                    representatives[below] = np.nextafter(-_ZERO, -np.inf)
                self.representatives[j] = representatives
        self.features = sorted(self.representatives)
        # every feature's bins as rows of one stacked table: a row's bin of feature k is
        # row offsets[k] + bin
        sizes = [len(self.representatives[j]) for j in self.features]
        self.offsets = dict(zip(self.features, np.cumsum([0] + sizes[:-1]).tolist()))
        self.rows = int(sum(sizes))
        self._numbers = []  # (position, feature, sorted representatives, zero matters)
        for k, j in enumerate(self.features):
            if j in self.numeric:
                edges = self.numeric[j]
                # a value within _ZERO of zero reads as zero; only an edge there tells apart
                near = bool(np.any((edges >= -_ZERO) & (edges < _ZERO)))
                self._numbers.append((k, j, self._edges_then_specials[j], near))
        # for a few rows, every number's bin from one comparison with all representatives:
        # a value is greater than (not <=) the edges below it and than NaN, so the count
        # less one is its bin; NaN is "greater" than all of them and lands on its own bin
        self._compare_columns = np.array(
            [j for _, j, search, _ in self._numbers for _ in search], dtype=np.intp
        )
        self._compare_with = (
            np.concatenate([search for _, _, search, _ in self._numbers])
            if self._numbers
            else np.zeros(0)
        )
        counts = [len(search) for _, _, search, _ in self._numbers]
        self._compare_starts = np.cumsum([0] + counts[:-1]).astype(np.intp)
        self._compare_positions = [k for k, _, _, _ in self._numbers]
        self._compare_offsets = np.array(
            [self.offsets[j] - 1 for _, j, _, _ in self._numbers], dtype=np.intp
        )
        self._compare_near = np.array(
            [near for _, _, search, near in self._numbers for _ in search], dtype=bool
        )
        self._categories = [k for k, j in enumerate(self.features) if j in self.categorical]
        self._category_columns = [self.features[k] for k in self._categories]
        self._category_sizes = np.array([self.categorical[j] for j in self._category_columns])
        self._category_offsets = np.array(
            [self.offsets[j] for j in self._category_columns], dtype=np.intp
        )

    def usable(self, tree: Tree) -> bool:
        """Whether ``tree`` is a table on these bins: small, not linear, and every split's
        threshold (or category set) among those the bins were cut at."""
        if not tabulable(tree):
            return False
        for node in range(tree.splits):
            j = int(tree.feature[node])
            if tree.is_categorical(node):
                cat = int(tree.threshold[node])
                words = int(tree.cat_boundaries[cat + 1] - tree.cat_boundaries[cat])
                if 32 * words > self.categorical.get(j, -1):
                    return False
            elif (
                j not in self.numeric
                or float(tree.threshold[node]) not in self._edges[j]
                or ((int(tree.decision[node]) >> 2) & 3 == 1 and j not in self._zero)
            ):
                return False
        return True

    def bins(self, M: np.ndarray) -> np.ndarray:
        """(rows, features): each row's bin of each binned feature, as a stacked-table row.

        A number's bin is found by one ``searchsorted`` on the representatives: the edges,
        then inf (past the last edge) and NaN (numpy sorts it last, so a missing value
        lands on its own bin).
        """
        out = np.empty((M.shape[0], len(self.features)), dtype=np.intp)
        if M.shape[0] <= _FEW_ROWS and self._numbers:
            x = M[:, self._compare_columns]
            if self._compare_near.any():
                x = np.where(self._compare_near & (np.abs(x) <= _ZERO), 0.0, x)
            above = ~(x <= self._compare_with)
            out[:, self._compare_positions] = (
                np.add.reduceat(above, self._compare_starts, axis=1, dtype=np.intp)
                + self._compare_offsets
            )
        else:
            self._search(M, out)
        if self._categories:
            code = np.trunc(M[:, self._category_columns])
            inside = (code >= 0) & (code < self._category_sizes)  # NaN compares False
            out[:, self._categories] = (
                np.where(inside, code, self._category_sizes).astype(np.intp)
                + self._category_offsets
            )
        return out

    def _search(self, M: np.ndarray, out: np.ndarray) -> None:
        for k, j, search, near in self._numbers:
            x = M[:, j]
            if near:
                x = np.where(np.abs(x) <= _ZERO, 0.0, x)
            out[:, k] = search.searchsorted(x)
            out[:, k] += self.offsets[j]


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
            values = self.values[self.patterns(bins)]
            out[:, self.groups] = np.add.reduceat(values, self.starts, axis=1)
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
            index = self.patterns(bins)[:, self.pair_column] + self.pair_offset
            out[:, self.features] = np.add.reduceat(self.values[index], self.starts, axis=1)
        return out
