"""Each feature's values cut into bins between the trees' thresholds: one decision per bin.

The bits of one feature's splits depend only on which interval between that feature's
thresholds (all trees' thresholds, sorted) the value falls in: its *bin*. Every bin's decisions
are taken from one representative value by LightGBM's rules (:meth:`Tree.goes_left`), and each
bin holds only values with the same decisions as its representative, so a row's pattern in
:mod:`._tree_tables` is the one LightGBM's walk takes. A feature split both as a number and as
a category is not binned: trees on it are left to LightGBM.
"""

from __future__ import annotations

import numpy as np

from ._lightgbm_trees import _ZERO, Tree, tabulable

__all__ = ["Binning"]

# Up to this many rows a batch is binned and patterned with one numpy call per step (few
# calls matter for one answer); past it, per-feature loops move less memory.
_FEW_ROWS = 8


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
