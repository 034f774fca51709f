"""Thompson sampling's probabilities: the chance that each arm's draw is the best.

Each arm in equipoise gets a draw of its effect from a normal distribution fitted to its
interval (centre the estimate, spread from the interval's width); the probability that an arm's
draw is the best (lowest) is computed by quadrature of the normal integral (to better than
1e-6), so it is the same on every machine, for many people at once.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.special import ndtr

# Quadrature of the Thompson probabilities: each continuous arm's normal is cut at these
# multiples of its spread (beyond 7 a tail holds under 2e-12), and every piece between two cuts
# of any arm gets an 8-point Gauss-Legendre rule. Cutting at every arm's own scale keeps each
# piece smooth for every arm however their spreads differ; tests/test_policy_exploration.py
# checks the result against adaptive integration to 1e-6.
_CUTS = np.array([-7.0, -3.0, 0.0, 3.0, 7.0])
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(8)


def _thompson_case(ranking, candidates) -> tuple[list, list]:
    by_arm = {a.arm: j for j, a in enumerate(ranking.arms)}
    return _case(ranking.arms, [by_arm[a] for a in candidates])


def _case(arms, where) -> tuple[list, list]:
    # _thompson_case from positions; lists: _thompson_wins makes one array of many cases.
    chosen = [arms[j] for j in where]
    return [a.effect for a in chosen], [a.upper - a.lower for a in chosen]


# Rows computed together: 64 rows x 6 arms x 240 nodes of floats is 0.7 MB an array, so the
# eight passes over them stay in a core's cache (256 rows, 3 MB an array, took 21 ms of CPU for
# the demo model's 1,000-row batch instead of 15). Rows are independent: the same numbers.
_ROWS_PER_PASS = 64


def _thompson_wins(cases, coverage: float) -> list[np.ndarray]:
    """Each case's probability that each candidate's draw is the best (lowest), for many people.

    ``cases``: ``(effects, spread)`` per person, candidates in ranking order. People with the
    same number of candidates are computed together: the same arithmetic, element by element, as
    one person alone, so the probabilities are identical without a Python loop per person.
    """
    z = _z(float(coverage))
    out: list = [None] * len(cases)
    by_size: dict[int, list[int]] = {}
    for i, (effects, _) in enumerate(cases):
        by_size.setdefault(len(effects), []).append(i)
    for members in by_size.values():
        for start in range(0, len(members), _ROWS_PER_PASS):
            chunk = members[start : start + _ROWS_PER_PASS]
            effects = np.array([cases[i][0] for i in chunk], dtype=float)
            sd = np.array([cases[i][1] for i in chunk], dtype=float) / (2.0 * z)
            for i, row in zip(chunk, _probability_best(effects, sd)):
                out[i] = row
    return out


def _probability_best(effects: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """P(arm j's draw is the lowest) for independent normals N(effect, sd²), rows x arms.

    A continuous arm k wins with probability ∫ φ_k(x) ∏_{j≠k} P(X_j > x) dx. An arm without
    spread (usual care, at exactly zero) is a point: continuous arms win only below the lowest
    point, and that point (the first in ranking order among equal ones, as a tie goes to the
    better-ranked arm) wins with the probability that every continuous draw lies above it.
    Normalised to sum to one (the quadrature's error is below 1e-6).
    """
    n, k = effects.shape
    point = sd <= 0
    continuous = ~point
    lowest_point = np.where(point, effects, np.inf).min(axis=1)
    # Below every continuous arm's lower cut, or above any one's upper cut (that arm's draw is
    # then lower for sure) or the lowest point, nothing more is won.
    low = np.where(continuous, effects + sd * _CUTS[0], np.inf).min(axis=1)
    high = np.minimum(
        np.where(continuous, effects + sd * _CUTS[-1], np.inf).min(axis=1), lowest_point
    )
    low = np.where(np.isfinite(low), low, lowest_point)  # only points: an empty range
    high = np.maximum(high, low)
    cuts = np.concatenate(
        [(effects[:, :, None] + sd[:, :, None] * _CUTS).reshape(n, -1), lowest_point[:, None]],
        axis=1,
    )
    cuts = np.sort(np.clip(cuts, low[:, None], high[:, None]), axis=1)
    left, half = cuts[:, :-1, None], (cuts[:, 1:, None] - cuts[:, :-1, None]) / 2.0
    x = (left + half * (_NODES + 1.0)).reshape(n, -1)  # Gauss-Legendre nodes of every piece
    weight = (half * _WEIGHTS).reshape(n, -1)
    scale = np.where(continuous, sd, 1.0)[:, :, None]
    # The same operations in the same order as ``standard = (x - effect) / scale``,
    # ``density = exp(-0.5 * standard * standard) / (root(2 pi) * scale)`` and
    # ``above = ndtr(-standard)``, written into two arrays rather than eight temporaries (the
    # arrays are rows x arms x nodes: their memory traffic is most of this function's time).
    standard = np.subtract(x[:, None, :], effects[:, :, None])  # rows x arms x nodes
    standard /= scale
    density = np.multiply(standard, -0.5)
    density *= standard
    np.exp(density, out=density)
    density /= _ROOT_TWO_PI * scale
    above = ndtr(np.negative(standard, out=standard), out=standard)  # P(X_j > x)
    if point.any():  # a point has no density and lies above every node (x <= lowest point)
        density[point] = 0.0
        above[point] = 1.0
    # ∏_{j≠k} P(X_j > x) as products of the arms before k and after k (no division by ~0).
    others = np.empty_like(above)  # every column is written below: no pass to fill it first
    others[:, 0] = 1.0
    for j in range(1, k):
        np.multiply(others[:, j - 1], above[:, j - 1], out=others[:, j])
    after = np.ones((n, above.shape[2]))
    for j in range(k - 2, -1, -1):
        after *= above[:, j + 1]
        others[:, j] *= after
    density *= others
    density *= weight[:, None, :]
    wins = density.sum(axis=2)
    has_point = np.isfinite(lowest_point)
    if has_point.any():
        first = np.argmax(point & (effects == lowest_point[:, None]), axis=1)
        at_point = (lowest_point[:, None] - effects) / scale[:, :, 0]
        all_above = np.where(continuous, ndtr(-at_point), 1.0).prod(axis=1)
        rows = np.flatnonzero(has_point)
        wins[rows, first[rows]] = all_above[rows]
    return wins / wins.sum(axis=1, keepdims=True)


_ROOT_TWO_PI = float(np.sqrt(2.0 * np.pi))


@functools.lru_cache(maxsize=16)
def _z(coverage: float) -> float:
    # The normal quantile of an interval's coverage: scipy's ppf costs more than the rest of a
    # Thompson probability, and the coverage is the service's one setting. scipy.stats is
    # imported here, not with the module (as recommender.levels does): importing it took 0.6 s
    # of CPU in every process that reads the service's settings (`recommender serve`'s own
    # process and BentoML's), which never draws.
    from scipy.stats import norm

    return float(norm.ppf(0.5 + coverage / 2.0))
