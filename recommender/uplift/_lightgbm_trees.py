"""LightGBM trees as arrays, with LightGBM's own decision at each split.

A tree is read from its block of the model text (the fields ``split_feature``, ``threshold``,
``decision_type``, ``left_child``, ...), its leaf values already weighted. Decisions follow
LightGBM's own rules (``Tree::NumericalDecision`` and ``Tree::CategoricalDecision``): a number
goes left when ``x <= threshold``, a missing number counts as 0 unless the split sends missing
values one way (``missing_type`` NaN, or Zero for zero and missing); a category goes left when
its integer code is in the split's set, and negative, missing or out-of-range codes go right.

Trees with more than ``MAX_SPLITS`` splits and linear trees are not tabulated
(:func:`tabulable`; :mod:`._tree_tables`): the caller keeps them for LightGBM.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

__all__ = ["Tree", "parse_trees", "tabulable", "MAX_SPLITS"]

# A tree with up to this many splits is a table of 2^MAX_SPLITS entries at most (its TreeSHAP
# table: patterns x features, computed over 2^features subsets at build time).
MAX_SPLITS = 8

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
