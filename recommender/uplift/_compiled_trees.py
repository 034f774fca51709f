"""The compiled form's booster members: small trees as tables, the rest as one LightGBM model.

Every booster tree of every output (an outcome's arm, full or fold model, weights already in
the leaf values) is read as a lookup table (:mod:`._tree_tables`) when it is small enough, and
its TreeSHAP contributions likewise. Trees too large for a table (more than ``MAX_SPLITS``
splits, or linear trees) are laid out as one LightGBM model in the multiclass layout, each
"class" a slot of up to ``SLOT_TREES`` trees of one output, so one ``predict(raw_score=True)``
returns them all (and one ``pred_contrib`` call explains them).
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from ._binning import Binning
from ._lightgbm_trees import parse_trees
from ._regressors import weighted_trees
from ._tree_tables import TreeContributions, TreeSums

__all__ = ["SLOT_TREES", "TABLE_BITS"]

# Pattern bits per table column: a column packs trees of one output whose splits add up to
# at most this many (its table has 2^TABLE_BITS entries). Measured on the demo model, 1,000
# rows: 10 bits 15 ms in 3.4 MB of tables, 12 bits 14 ms in 24 MB.
TABLE_BITS = 10

# Trees per slot. LightGBM's multiclass layout needs the same number of trees in every class,
# so short outputs are padded with one-leaf trees of value 0; chunking long outputs into slots
# of this size bounds the padding to less than one slot per output.
SLOT_TREES = 32

_EMPTY_TREE = (
    "num_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\n"
    "decision_type=\nleft_child=\nright_child=\nleaf_value=0\nleaf_weight=\n"
    "leaf_count=0\ninternal_value=\ninternal_weight=\ninternal_count=\nis_linear=0\n"
    "shrinkage=1"
)


def _weighted_blocks(weighted) -> tuple:
    """``(header, tail, [(index, tree text)])`` of weighted boosters' trees, in order."""
    header = tail = None
    blocks = []
    for key, weight, model in weighted:
        head, end, trees = weighted_trees(model, weight)
        if header is None:
            header, tail = head, end
        blocks.extend((key, tree) for tree in trees)
    return header, tail, blocks


def _model_text(header: str, tail: str, trees, *, classes: int = 1) -> str:
    """LightGBM model text of ``trees`` (one per class per iteration) under ``header``."""
    kept = []
    for line in header.split("\n"):
        if line.startswith("tree_sizes="):
            continue
        if classes > 1:
            if line.startswith("num_class="):
                line = f"num_class={classes}"
            elif line.startswith("num_tree_per_iteration="):
                line = f"num_tree_per_iteration={classes}"
            elif line.startswith("objective="):
                line = f"objective=multiclass num_class:{classes}"
        kept.append(line)
    body = "".join(f"Tree={k}\n{tree}\n\n\n" for k, tree in enumerate(trees))
    return "\n".join(kept) + body + tail


class _Forest:
    """Every booster member's trees: small ones as tables, the others in one LightGBM model."""

    def __init__(self, members, n_outputs: int, n_features: int):
        header, tail, blocks = _weighted_blocks(members)
        trees = parse_trees([text for _, text in blocks])
        binning = Binning(trees, n_features)
        tabled = [k for k, tree in enumerate(trees) if binning.usable(tree)]
        self.binning = binning
        self.sums = TreeSums(
            [trees[k] for k in tabled],
            [blocks[k][0] for k in tabled],
            n_outputs,
            binning,
            bits=TABLE_BITS,
        )
        kept = set(tabled)
        rest = [blocks[k] for k in range(len(blocks)) if k not in kept]
        self.slots = _Slots(header, tail, rest, n_outputs) if rest else None

    def predict(self, M: np.ndarray, bins: np.ndarray) -> np.ndarray:
        out = self.sums.predict(bins)
        if self.slots is not None:
            out += self.slots.predict(M)
        return out


class _Slots:
    """Trees as slots of one multiclass-layout LightGBM model: one call sums every output."""

    def __init__(self, header: str, tail: str, blocks, n_outputs: int):
        per_output: dict[int, list[str]] = {}
        for output, tree in blocks:
            per_output.setdefault(output, []).append(tree)
        slots, slot_output = [], []
        for output in sorted(per_output):
            trees = per_output[output]
            for s in range(0, len(trees), SLOT_TREES):
                slots.append(trees[s : s + SLOT_TREES])
                slot_output.append(output)
        depth = max(len(slot) for slot in slots)
        n_slots = len(slots)
        body = [
            slot[it] if it < len(slot) else _EMPTY_TREE for it in range(depth) for slot in slots
        ]
        self.booster = lgb.Booster(model_str=_model_text(header, tail, body, classes=n_slots))
        self.to_outputs = np.zeros((n_slots, n_outputs))
        self.to_outputs[np.arange(n_slots), slot_output] = 1.0
        self.n_slots = n_slots

    def predict(self, M: np.ndarray) -> np.ndarray:
        raw = self.booster.predict(M, raw_score=True, num_threads=1)
        return raw.reshape(M.shape[0], self.n_slots) @ self.to_outputs


class _BoosterContributions:
    """TreeSHAP of weighted boosters' sum: small trees from tables, the others by LightGBM."""

    def __init__(self, weighted, n_features: int, binning: Binning):
        self.n_features = n_features
        self.tables = self.booster = None
        if not weighted:
            return
        header, tail, blocks = _weighted_blocks([(None, w, m) for w, m in weighted])
        trees = parse_trees([text for _, text in blocks])
        # a tree cut elsewhere than the bins (not one of the forest's) is LightGBM's to explain
        usable = [binning.usable(tree) for tree in trees]
        self.tables = TreeContributions(
            [tree for tree, ok in zip(trees, usable) if ok],
            binning,
            n_features,
            bits=TABLE_BITS,
        )
        rest = [text for (_, text), ok in zip(blocks, usable) if not ok]
        if rest:
            self.booster = lgb.Booster(model_str=_model_text(header, tail, rest))

    def contrib(self, M: np.ndarray, bins: np.ndarray) -> np.ndarray:
        if self.tables is None:
            return np.zeros((M.shape[0], self.n_features + 1))
        out = self.tables.contrib(bins)
        if self.booster is not None:
            out += self.booster.predict(M, pred_contrib=True, num_threads=1)
        return out
