"""Serving one arm per person, reproducibly, with the probability it was served with.

The probabilities are the exploration policy's (:mod:`recommender.policy._exploration`). The
draw is reproducible: a uniform number from SHA-256 of the salted person hash and the survey
cycle picks the arm, so a retried request in the same cycle gets the same arm, and the next
cycle draws afresh.
"""

from __future__ import annotations

import hashlib
import operator
from dataclasses import dataclass, field

import numpy as np

from recommender.policy._exploration import (
    _bounded,
    _in_equipoise,
    _policy_probabilities,
    _policy_shares,
    _with_floor,
)
from recommender.policy._exploration_rule import ExplorationRule
from recommender.policy._thompson import _case, _thompson_wins

__all__ = ["Assignment", "assign", "assign_many", "draw_position"]


@dataclass(frozen=True)
class Assignment:
    """The arm served to one person and the probabilities it was drawn from.

    Attributes
    ----------
    arm : str
        The arm served (the answer's ``recommended``).
    probability : float
        The probability with which ``arm`` was served.
    policy : str
        The policy actually applied (``greedy`` for severe profiles whatever the setting).
    cycle : int
    probabilities : dict
        Every ranked arm's probability (zero outside equipoise); they sum to one.
    """

    arm: str
    probability: float
    policy: str
    cycle: int
    probabilities: dict = field(default_factory=dict)

    @property
    def explored(self) -> bool:
        """Whether the served arm had a probability below one."""
        return self.probability < 1.0

    def as_answer(self) -> dict:
        """The answer's ``assignment`` block."""
        return {
            "arm": self.arm,
            "probability": round(self.probability, 6),
            "policy": self.policy,
            "cycle": self.cycle,
        }


def draw_position(person_hash: str, cycle: int) -> float:
    """A uniform number in [0, 1) fixed by the salted person hash and the cycle.

    Examples
    --------
    >>> draw_position("ab12", 0) == draw_position("ab12", 0) != draw_position("ab12", 1)
    True
    """
    digest = hashlib.sha256(f"{person_hash}|{int(cycle)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign(
    ranking, person_hash: str, rule: ExplorationRule, *, explore: bool = True, control: str = "none"
) -> Assignment:
    """Serve one arm of ``ranking`` to a person, reproducibly, with its probability.

    Parameters
    ----------
    ranking : Ranking
        The person's ranking of eligible, offered arms.
    person_hash : str
        The salted hash of the person id (never the raw id).
    rule : ExplorationRule
    explore : bool
        False for severe (referral) profiles: the best arm, probability one.
    control : str
        Id of usual care.

    Examples
    --------
    >>> from recommender.policy import rank_arms
    >>> r = rank_arms({"coaching": (-5, -8, -2, 0, 0), "peer_group": (-4, -7, -1, 0, 0)})
    >>> a = assign(r, "3f2a", ExplorationRule(policy="thompson", cycle=1))
    >>> a == assign(r, "3f2a", ExplorationRule(policy="thompson", cycle=1))
    True
    >>> round(sum(a.probabilities.values()), 9), a.probability == a.probabilities[a.arm]
    (1.0, True)
    """
    return assign_many([ranking], [person_hash], rule, explore=[explore], control=control)[0]


def assign_many(
    rankings, person_hashes, rule: ExplorationRule, *, explore, control: str = "none"
) -> list[Assignment]:
    """:func:`assign` for many people at once (``explore``: one flag per person): the same
    assignments, with the Thompson draws of everyone made together, and the usual-care floor,
    the cost bound and the draw computed over all people with the same number of ranked arms
    at once (the same arithmetic, operation for operation, as :func:`arm_probabilities` and
    :func:`draw_position` for one person: ``tests/test_fastpath4_equivalence.py``)."""
    explore = list(explore)
    thompson = rule.policy == "thompson"
    # Each person's arms in equipoise (only the best when not explored), as positions in the
    # ranking, and for a Thompson draw among several, their effects and spreads.
    chosen = [_in_equipoise(ranking) if flag else [0] for ranking, flag in zip(rankings, explore)]
    drawn = [i for i, arms in enumerate(chosen) if thompson and len(arms) > 1]
    wins = dict(
        zip(
            drawn,
            _thompson_wins(
                [_case(rankings[i].arms, chosen[i]) for i in drawn],
                rule.coverage,
            ),
        )
    )
    out: list = [None] * len(rankings)
    by_size: dict[int, list[int]] = {}
    for i, ranking in enumerate(rankings):
        by_size.setdefault(len(ranking.arms), []).append(i)
    for members in by_size.values():
        if len(members) < _VECTOR_ROWS or any(not chosen[i] for i in members):
            # A few people (numpy's per-call cost exceeds their Python), or a ranking whose
            # best arm is not in equipoise with itself (an interval with lower > upper): one
            # by one, by the rule itself.
            for i in members:
                candidates = [rankings[i].arms[j].arm for j in chosen[i]]
                shares = _policy_probabilities(
                    rankings[i], rule, explore[i], wins.get(i), candidates
                )
                shares = _with_floor(shares, rankings[i], rule, explore[i], control)
                out[i] = _assigned(shares, person_hashes[i], rule, explore[i])
            continue
        table = [rankings[i].arms for i in members]
        names = [[*map(_ARM, arms)] for arms in table]
        if thompson:
            shares = _thompson_shares(members, chosen, wins, len(table[0]))
        else:
            shares = np.array(
                [_policy_shares(rankings[i], chosen[i], rule, None) for i in members], dtype=float
            )
        effects = np.array([[*map(_EFFECT, arms)] for arms in table], dtype=float)
        at = np.array([row.index(control) if control in row else -1 for row in names])
        active = np.array([explore[i] for i in members], dtype=bool) & (rule.policy != "greedy")
        shares = _bounded(shares, effects, at, active, rule)
        positions = _draw_positions([person_hashes[i] for i in members], rule.cycle)
        chosen_arm = _drawn(shares, positions)
        for i, arms, row, j in zip(members, names, shares.tolist(), chosen_arm.tolist()):
            out[i] = _new_assignment(
                arms[j],
                row[j],
                rule.policy if explore[i] else "greedy",
                rule.cycle,
                dict(zip(arms, row)),
            )
    return out


# A RankedArm's arm and EE effect by position: a batch reads them of every ranked arm.
_ARM, _EFFECT = operator.itemgetter(0), operator.itemgetter(2)
_ONE = np.ones(1)


def _thompson_shares(members, chosen, wins, size) -> np.ndarray:
    """:func:`_policy_shares` of the Thompson policy for ``members`` (rows), all ranking
    ``size`` arms: the best arm alone holds one, or each candidate its probability of being
    best (``wins``), the same floats set in one scatter rather than a list per person."""
    rows, columns, values = [], [], []
    for r, i in enumerate(members):
        where = chosen[i]
        if len(where) == 1:
            rows.append(r)
            columns.append(0)
            values.append(_ONE)
        else:
            rows += [r] * len(where)
            columns += where
            values.append(wins[i])
    shares = np.zeros((len(members), size))
    if rows:
        shares[rows, columns] = np.concatenate(values)
    return shares


def _draw_positions(person_hashes, cycle) -> np.ndarray:
    """:func:`draw_position` of many people in one cycle: the same SHA-256 digests, their first
    eight bytes read big-endian and divided by 2**64 as numpy floats (the integer's conversion
    is correctly rounded, as Python's is: the same numbers)."""
    suffix = f"|{int(cycle)}".encode()
    sha256 = hashlib.sha256
    digests = b"".join([sha256(h.encode() + suffix).digest()[:8] for h in person_hashes])
    return np.frombuffer(digests, dtype=">u8").astype(float) / 2.0**64


def _new_assignment(arm, probability, policy, cycle, probabilities) -> Assignment:
    # Assignment(...) with its fields set as its frozen __init__ sets them (in field order), at
    # a third of the cost: a batch makes one per person.
    made = object.__new__(Assignment)
    made.__dict__.update(
        arm=arm, probability=probability, policy=policy, cycle=cycle, probabilities=probabilities
    )
    return made


# Fewer people than this with the same number of arms are assigned one by one (one answer's
# request, say): the vectorised floor, bound and draw cost about 50 µs of numpy calls.
_VECTOR_ROWS = 8


def _assigned(probabilities, person_hash, rule, explore) -> Assignment:
    """One person's draw from ``probabilities`` (see :func:`draw_position`)."""
    position = draw_position(person_hash, rule.cycle)
    total, chosen = 0.0, None
    for arm, share in probabilities.items():
        total += share
        if share > 0 and position < total:
            chosen = arm
            break
    if chosen is None:  # rounding left the position just above the last cumulative share
        chosen = [arm for arm, share in probabilities.items() if share > 0][-1]
    return Assignment(
        arm=chosen,
        probability=probabilities[chosen],
        policy=rule.policy if explore else "greedy",
        cycle=rule.cycle,
        probabilities=probabilities,
    )


def _drawn(shares, positions) -> np.ndarray:
    """Per row, the arm drawn at ``positions`` (see :func:`draw_position`): the first with a
    share whose running total, added from the left, exceeds the position; the last with a
    share when rounding left the position just above the total."""
    total = np.cumsum(shares, axis=1)
    hit = (shares > 0) & (positions[:, None] < total)
    last = shares.shape[1] - 1 - np.argmax((shares > 0)[:, ::-1], axis=1)
    return np.where(hit.any(axis=1), np.argmax(hit, axis=1), last)
