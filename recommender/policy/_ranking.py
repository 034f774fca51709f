"""Ranking the arms one person may get, and saying when that ranking means little.

Effects follow the project's sign convention: the expected change in emotional exhaustion (EE)
under an arm minus under usual care, so lower is better. Usual care is always in the ranking at
exactly zero, and it wins ties: nobody is sent to a program that is not expected to help.

A point estimate always produces an order, but when the intervals of the two best arms overlap
heavily the order is mostly noise. :func:`rank_arms` measures that overlap and says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from recommender.explain import ArmLabels

__all__ = [
    "JUDGEMENT_COLUMNS",
    "FIGURE_DECIMALS",
    "RankedArm",
    "Ranking",
    "TableRanking",
    "interval_overlap",
    "rank_arms",
    "rank_many",
    "rank_table",
    "ranked_figures",
    "arm_order",
    "best_arm",
]

# What a scored table says of each row's ranking, after ``recommended``: Ranking.meaningful and
# Ranking.benefit_established, under these names.
JUDGEMENT_COLUMNS = ("ranking_meaningful", "benefit_established")

# Effects and bounds are ranked and judged as an answer shows them, rounded to this many decimals
# of an MBI point: finer differences mean nothing on a 0-54 scale, and an answer's order and
# judgements can then be read off the figures it shows (arms within rounding of each other tie:
# usual care first, then catalog order).
FIGURE_DECIMALS = 3


class RankedArm(NamedTuple):
    """One arm in a person's ranking: EE (which ranks), DP and PA effects with their intervals
    (NaN where the model has no such estimate or interval).

    A named tuple rather than a frozen dataclass: every answer builds one per arm, and a
    dataclass's frozen ``__init__`` costs four times as much.
    """

    arm: str
    rank: int
    effect: float
    lower: float
    upper: float
    effect_dp: float
    effect_pa: float
    lower_dp: float = math.nan
    upper_dp: float = math.nan
    lower_pa: float = math.nan
    upper_pa: float = math.nan

    @property
    def helps(self) -> bool:
        """Whether the whole interval lies below zero (clearly less exhaustion than usual care)."""
        return self.upper < 0


@dataclass(frozen=True)
class Ranking:
    """A person's arms, best first, with what can honestly be said about the order.

    ``meaningful`` is None when usual care is the only arm ranked: there is no order of arms to
    judge (as a crisis answer, which ranks nothing, says null), not a meaningful one.
    """

    arms: tuple[RankedArm, ...]
    meaningful: bool | None
    overlap: float | None
    note: str

    @property
    def recommended(self) -> str:
        return self.arms[0].arm

    @property
    def runner_up(self) -> str | None:
        return self.arms[1].arm if len(self.arms) > 1 else None

    @property
    def benefit_established(self) -> bool:
        """Whether the recommended arm's whole interval lies below zero: False when its interval
        includes no change (the note then says a benefit over usual care is not established)
        and when usual care itself is recommended (there is no benefit to establish)."""
        return self.arms[0].helps


class TableRanking(NamedTuple):
    """What the rankings of many rows say, one array (rows) per judgement; see
    :func:`rank_table`."""

    recommended: np.ndarray
    ranking_meaningful: np.ndarray
    benefit_established: np.ndarray


def ranked_figures(values) -> np.ndarray:
    """Effects or bounds as the ranking reads them: floats rounded to :data:`FIGURE_DECIMALS`.

    Examples
    --------
    >>> ranked_figures([[-1.60437, -1.60395]]).tolist()
    [[-1.604, -1.604]]
    """
    return np.asarray(values, dtype=float).round(FIGURE_DECIMALS)


def interval_overlap(lower_a: float, upper_a: float, lower_b: float, upper_b: float) -> float:
    """Length of the intersection of two intervals as a share of the narrower one.

    A zero-width interval (usual care at exactly 0) overlaps fully when it lies inside the
    other interval and not at all otherwise.

    Examples
    --------
    >>> interval_overlap(-4, -2, -3, 1)
    0.5
    >>> interval_overlap(-4, -2, 0, 0)
    0.0
    >>> interval_overlap(-1, 1, 0, 0)
    1.0
    """
    low, high = max(lower_a, lower_b), min(upper_a, upper_b)
    narrower = min(upper_a - lower_a, upper_b - lower_b)
    if high < low:
        return 0.0
    if narrower <= 0:
        return 1.0
    return min(1.0, (high - low) / narrower)


def arm_order(effects, allowed=None) -> np.ndarray:
    """The one ordering rule: per row, usual care and the arms from best (lowest) to worst.

    Parameters
    ----------
    effects : array-like (rows x arms)
        Expected EE change under each treatment arm versus usual care.
    allowed : array-like of bool (rows x arms), optional
        False where an arm may not be given; it then ranks after every allowed one.

    Returns
    -------
    ndarray of int (rows x (1 + arms))
        Column positions in ``[usual care, *arms]`` (0 = usual care), best first. Usual care
        counts as 0 and is listed first, so it wins ties; tied arms keep their column order.

    Examples
    --------
    >>> arm_order([[-1.0, 0.0, -3.0]]).tolist()
    [[3, 1, 0, 2]]
    """
    values = np.asarray(effects, dtype=float)
    if values.ndim == 1:
        values = values[None, :]
    table = np.zeros((values.shape[0], values.shape[1] + 1))
    table[:, 1:] = values
    if allowed is not None:
        table[:, 1:] = np.where(np.asarray(allowed, dtype=bool), table[:, 1:], np.inf)
    return np.argsort(table, axis=1, kind="stable")


def _row_order(effects: Sequence[float]) -> list[int]:
    """:func:`arm_order` of one row without ``allowed``, as a list: the service ranks a
    thousand rows of a handful of arms, one at a time, and numpy's per-call cost is most of an
    argsort this small. Python's sort is stable too, so for finite effects the order is the
    same (usual care first among equals, then column order); anything else goes to numpy."""
    values = [0.0, *effects]
    if all(math.isfinite(v) for v in values):
        return sorted(range(len(values)), key=values.__getitem__)
    return arm_order(effects)[0].tolist()


def best_arm(effects, arms: Sequence[str], *, control: str = "none", allowed=None) -> np.ndarray:
    """Per row, the allowed arm with the lowest expected EE change; usual care when none helps.

    The first of :func:`arm_order` (ties keep usual care). Used wherever a best arm is
    chosen: the model's ``recommended`` column, a cohort plan's unconstrained recommendation
    and, through :func:`rank_arms`, the service's ranking.

    Examples
    --------
    >>> best_arm([[-1.0, -3.0], [2.0, 1.0], [-2.0, -2.0]], ["coaching", "peer_group"]).tolist()
    ['peer_group', 'none', 'coaching']
    """
    names = np.array([control, *arms], dtype=object)
    return names[arm_order(effects, allowed)[:, 0]]


def rank_arms(
    effects: Mapping[str, Sequence[float]],
    *,
    control: str = "none",
    max_overlap: float = 0.5,
    names: Mapping[str, str] | None = None,
    coverage: float = 0.9,
) -> Ranking:
    """Rank usual care and the given arms by expected EE change, best (lowest) first.

    Parameters
    ----------
    effects : mapping
        ``arm -> (effect, lower, upper, effect_dp, effect_pa)`` for each treatment arm that may
        be ranked, in catalog order (ties keep this order), optionally followed by
        ``lower_dp, upper_dp, lower_pa, upper_pa`` (NaN when not given): the figures of a
        :class:`RankedArm`. The control arm is added at zero.
    control : str
        Id of usual care.
    max_overlap : float
        The order of the two best arms is called not meaningful when their intervals overlap
        by more than this share of the narrower interval.
    names : mapping, optional
        Readable arm names for the note.
    coverage : float
        Coverage of the intervals (``1 - alpha``), named in the note.

    Examples
    --------
    >>> r = rank_arms({"coaching": (-5, -8, -2, -1, 1), "peer_group": (-1, -3, 1, -2, 0)})
    >>> [a.arm for a in r.arms], r.meaningful
    (['coaching', 'peer_group', 'none'], True)
    >>> rank_arms({"coaching": (-2, -5, 1, 0, 0), "peer_group": (-1.8, -4.5, 1, 0, 0)}).meaningful
    False
    """
    options = [(control, _USUAL_CARE)]
    options += [
        (arm, tuple(map(float, values))) for arm, values in effects.items() if arm != control
    ]
    # The one ordering rule (usual care wins ties, then catalog order).
    order = _row_order([values[0] for _, values in options[1:]])
    ordered = [options[k] for k in order]
    arms = tuple(RankedArm(arm, rank, *values) for rank, (arm, values) in enumerate(ordered, 1))
    return _judged(arms, control, max_overlap, dict(names or {}), coverage)


def rank_many(
    figures,
    arms: Sequence[str],
    allowed,
    *,
    control: str = "none",
    max_overlap: float = 0.5,
    names: Mapping[str, str] | None = None,
    coverage: float = 0.9,
) -> list[Ranking]:
    """:func:`rank_arms` for many people at once, from a table rather than one mapping each.

    Parameters
    ----------
    figures : sequence (people) of sequences (arms) of tuples
        The figures of every arm in ``arms`` for each person, all nine of a
        :class:`RankedArm` (``effect, lower, upper, effect_dp, effect_pa, lower_dp,
        upper_dp, lower_pa, upper_pa``), as Python floats (what :func:`rank_arms` makes of
        its values; they are taken as they are); entries where ``allowed`` is False are
        never read.
    arms : sequence of str
        The treatment arms, in catalog order (ties keep this order).
    allowed : array-like of bool (people x arms)
        Which arms each person's ranking holds (eligible, offered, estimated); the effects
        of allowed arms must be finite, as the service's are.
    control, max_overlap, names, coverage
        As for :func:`rank_arms`.

    Returns
    -------
    list of Ranking
        For person ``k``: ``rank_arms({arm: figures[k][j] for allowed arm j}, ...)``, the same
        ranking to the bit (``tests/test_fastpath5_equivalence.py``): the order is
        :func:`arm_order` of the whole table at once, disallowed arms moved last and cut off.
    """
    mask = np.asarray(allowed, dtype=bool)
    if mask.ndim != 2 or mask.shape != (len(figures), len(arms)):
        raise ValueError(f"allowed must be people x arms, {len(figures)} x {len(arms)}")
    if len(figures) < _FEW_PEOPLE:  # numpy's per-call cost exceeds a few people's Python
        out = []
        for row, keep in zip(figures, mask.tolist()):
            effects = {arm: values for arm, values, ok in zip(arms, row, keep) if ok}
            if not all(math.isfinite(values[0]) for values in effects.values()):
                raise ValueError(_NOT_FINITE)
            out.append(
                rank_arms(
                    effects,
                    control=control,
                    max_overlap=max_overlap,
                    names=names,
                    coverage=coverage,
                )
            )
        return out
    effects = np.array(
        [
            [row[j][0] if ok else 0.0 for j, ok in enumerate(keep)]
            for row, keep in zip(figures, mask.tolist())
        ],
        dtype=float,
    )
    if not np.isfinite(effects).all():
        raise ValueError(_NOT_FINITE)
    orders = arm_order(effects, mask).tolist()
    counts = (mask.sum(axis=1) + 1).tolist()
    judged = _Judge(control, max_overlap, names, coverage)
    new = tuple.__new__  # RankedArm's own __new__ handles keywords: too slow per arm of everyone
    zero = _USUAL_CARE
    out = []
    for row, order, count in zip(figures, orders, counts):
        ranked = []
        for rank, k in enumerate(order[:count], 1):
            if k:
                ranked.append(new(RankedArm, (arms[k - 1], rank, *row[k - 1])))
            else:
                ranked.append(new(RankedArm, (control, rank, *zero)))
        out.append(judged(tuple(ranked)))
    return out


def rank_table(
    effect,
    lower,
    upper,
    arms: Sequence[str],
    allowed=None,
    *,
    control: str = "none",
    max_overlap: float = 0.5,
) -> TableRanking:
    """The service's ranking of every row of a table: what a scored table says of each.

    The rankings are :func:`rank_many`'s, the service's own, of the figures an answer ranks
    (:func:`ranked_figures`), so a row's ``recommended``, ``ranking_meaningful`` and
    ``benefit_established`` are what the service's answer for that person says when it does
    not explore (exploration may serve another arm than the best-ranked one).

    Parameters
    ----------
    effect, lower, upper : array-like (rows x arms)
        Each arm's expected EE change versus usual care and its interval, at full precision.
    arms : sequence of str
        The treatment arms of the columns, in catalog order (ties keep it).
    allowed : array-like of bool (rows x arms), optional
        Arms a row's ranking may hold (offered, eligible); default every arm. An arm without a
        finite effect and interval for a row is left out of its ranking, as the service leaves
        out an arm the model returned no estimate for.
    control, max_overlap
        As for :func:`rank_arms`; ``max_overlap`` is the service's ``ranking.max_overlap``.

    Returns
    -------
    TableRanking
        ``recommended`` (object array: the best-ranked arm), ``ranking_meaningful`` (object
        array of :attr:`Ranking.meaningful`: True, False, or None where usual care alone is
        ranked) and ``benefit_established`` (bool array: :attr:`Ranking.benefit_established`).

    Examples
    --------
    >>> t = rank_table([[-5.0, -1.0], [-0.0004, 2.0]], [[-8, -3], [-2, 1]], [[-2, 1], [2, 3]],
    ...                ["coaching", "peer_group"])
    >>> t.recommended.tolist(), t.ranking_meaningful.tolist(), t.benefit_established.tolist()
    (['coaching', 'none'], [True, False], [True, False])
    """
    effect, lower, upper = (ranked_figures(v) for v in (effect, lower, upper))
    if effect.ndim != 2 or effect.shape[1] != len(arms):
        raise ValueError(f"effect must be rows x arms ({len(arms)} arms), got {effect.shape}")
    if lower.shape != effect.shape or upper.shape != effect.shape:
        raise ValueError(
            f"effect {effect.shape}, lower {lower.shape} and upper {upper.shape} must match"
        )
    mask = np.isfinite(effect + lower + upper)
    if allowed is not None:
        mask &= np.asarray(allowed, dtype=bool)
    n = effect.shape[0]
    # Secondary outcomes do not enter the ranking or its judgements.
    missing = [math.nan] * n
    columns = [
        list(zip(*(v[:, j].tolist() for v in (effect, lower, upper)), *[missing] * 6))
        for j in range(len(arms))
    ]
    table = list(zip(*columns)) if columns else [()] * n
    rankings = rank_many(table, list(arms), mask, control=control, max_overlap=max_overlap)
    return TableRanking(
        recommended=np.array([r.recommended for r in rankings], dtype=object),
        ranking_meaningful=np.array([r.meaningful for r in rankings], dtype=object),
        benefit_established=np.array([r.benefit_established for r in rankings], dtype=bool),
    )


# Usual care against itself: no change, exactly, in every outcome (every RankedArm figure).
_USUAL_CARE = (0.0,) * (len(RankedArm._fields) - 2)

# The note of a ranking that holds usual care alone.
ONLY_USUAL_CARE = (
    "Usual care is the only arm ranked for this person: no other arm is both offered to them "
    "and estimated by the model (the excluded arms say why)."
)

# Fewer people than this are ranked one by one (one answer's request, say).
_FEW_PEOPLE = 8
_NOT_FINITE = "the effects of allowed arms must be finite (rank_arms ranks the rest)"


def _judged(arms: tuple, control: str, max_overlap: float, names: dict, coverage: float) -> Ranking:
    """A ranking (best first) with what can honestly be said about its order (see
    :class:`_Judge`)."""
    return _Judge(control, max_overlap, names, coverage)(arms)


class _Judge:
    """What can honestly be said about the order of rankings: the one home of the overlap
    rule and the note, for :func:`rank_arms` and :func:`rank_many`, the arms' labels worked
    out once for all the rankings of a batch."""

    def __init__(self, control: str, max_overlap: float, names: dict, coverage: float):
        self.control = control
        self.max_overlap = max_overlap
        self.coverage = f"{coverage:.0%}"
        self.label = ArmLabels(names).__getitem__

    def __call__(self, arms: tuple) -> Ranking:
        if len(arms) == 1:
            # Not "can be offered": an arm the program offers may be left out because the
            # model has no estimate of it for this person (the answer's excluded list says
            # which and why).
            return _new_ranking(arms, None, None, ONLY_USUAL_CARE)
        best, second = arms[0], arms[1]
        overlap = interval_overlap(best.lower, best.upper, second.lower, second.upper)
        meaningful = overlap <= self.max_overlap
        if meaningful:
            note = (
                f"{self.label(best.arm).capitalize()} ranks ahead of {self.label(second.arm)} "
                f"with intervals overlapping {overlap:.0%} of the narrower one."
            )
        else:
            note = (
                f"The ranking is not meaningful: the {self.coverage} intervals of "
                f"{self.label(best.arm)} and {self.label(second.arm)} overlap {overlap:.0%}, so "
                "the data cannot tell which of them helps this person more; the person's "
                "preference and availability should decide."
            )
        # Ranking.benefit_established, said in words (usual care has no benefit to establish).
        if best.arm != self.control and not best.upper < 0:
            note += (
                f" The interval of {self.label(best.arm)} includes no change, so a benefit over "
                "usual care is not established for this profile."
            )
        return _new_ranking(arms, meaningful, overlap, note)


def _new_ranking(arms, meaningful, overlap, note) -> Ranking:
    # Ranking(...) with its fields set as its frozen __init__ sets them (in field order), at a
    # third of the cost: a batch makes one per person.
    made = object.__new__(Ranking)
    made.__dict__.update(arms=arms, meaningful=meaningful, overlap=overlap, note=note)
    return made
