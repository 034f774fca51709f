"""Which arm to serve a person, and with what probability: the exploration policy.

A program learns only from arms people actually get, so the service may serve an arm other
than the model's best when the data cannot yet tell the arms apart. Three policies:

``greedy``
    Always the best-ranked arm (probability 1). Exploration switched off.
``epsilon``
    The best arm with probability ``1 - epsilon``; with probability ``epsilon`` an arm drawn
    uniformly from those in equipoise (the best one included).
``thompson`` (the default)
    Each arm in equipoise gets a draw of its effect from a normal distribution fitted to its
    interval (centre the estimate, spread from the interval's width); the best draw wins. The
    probability of each arm is that of winning, computed by quadrature of the normal integral
    (to better than 1e-6), so it is the same on every machine, and the arm is then drawn from
    those probabilities: the logged probability is exactly the probability with which the arm
    was served.

Only arms the person is eligible for and offered are ranked at all (see
:func:`recommender.policy.offered_arms`); of those, only arms in **equipoise** may be explored:
arms whose interval reaches the best arm's interval, so the data do not rule out that they are
as good as the best. Usual care (zero, no interval) is in equipoise only while the best arm's
interval still includes no change. Crisis profiles are never ranked; severe (referral) profiles
are served greedily: nobody at the top of the scale is experimented on.

One exception, deliberate and configurable: effects are learnt *against usual care*, so a loop
that stops serving usual care once an arm looks good can no longer measure anything. While
exploring, usual care keeps at least ``usual_care_share`` of the probability (a small waitlist
comparison group, as in a stepped-wedge rollout); 0 turns this off, ``greedy`` ignores it.

Exploring has a price: whoever is served an arm other than the expected best gives up part of
its expected benefit. ``max_cost`` bounds that price per person, as a share of the best arm's
expected benefit against usual care (under the model's own estimates): when the policy's
probabilities would give up more, they are mixed with serving the best arm (usual care keeping
its share) until the expected loss is exactly the bound. So a program that explores gives up at
most ``max_cost`` of the benefit it would get without exploring, as far as the model can tell;
exploration fades by itself as intervals narrow and fewer arms stay in equipoise.

The draw is reproducible: a uniform number from SHA-256 of the salted person hash and the
survey cycle picks the arm, so a retried request in the same cycle gets the same arm, and the
next cycle draws afresh.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr
from scipy.stats import norm

from recommender.errors import InputError

__all__ = [
    "POLICIES",
    "Assignment",
    "ExplorationRule",
    "arm_probabilities",
    "assign",
    "assign_many",
    "draw_position",
    "equipoise_arms",
    "expected_cost",
]

POLICIES = ("greedy", "epsilon", "thompson")
# Quadrature of the Thompson probabilities: each continuous arm's normal is cut at these
# multiples of its spread (beyond 7 a tail holds under 2e-12), and every piece between two cuts
# of any arm gets an 8-point Gauss-Legendre rule. Cutting at every arm's own scale keeps each
# piece smooth for every arm however their spreads differ; tests/test_policy_exploration.py
# checks the result against adaptive integration to 1e-6.
_CUTS = np.array([-7.0, -3.0, 0.0, 3.0, 7.0])
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(8)


@dataclass(frozen=True)
class ExplorationRule:
    """The exploration settings of a service (``exploration:`` in ``serve.yaml``).

    Parameters
    ----------
    policy : {"thompson", "epsilon", "greedy"}
        ``greedy`` switches exploration off.
    epsilon : float
        Share of people served an arm drawn uniformly among those in equipoise (``epsilon``).
    cycle : int
        The survey cycle; a new cycle draws afresh for everyone.
    usual_care_share : float
        Least probability of usual care for a routine profile while exploring (the comparison
        group every later effect is measured against); 0 turns it off.
    max_cost : float
        Most of the best arm's expected benefit (against usual care, by the model's estimates)
        that exploring may give up per person; usual care's share counts towards it, so it
        must be at least ``usual_care_share``. 1 lets exploring give up all of it.
    coverage : float
        Coverage of the intervals the policy reads (``1 - alpha`` of the service).
    """

    policy: str = "thompson"
    epsilon: float = 0.1
    cycle: int = 0
    usual_care_share: float = 0.02
    max_cost: float = 0.03
    coverage: float = 0.9

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise InputError(
                f"exploration.policy: {self.policy!r} is not accepted; accepted: "
                f"{', '.join(POLICIES)}"
            )
        if isinstance(self.epsilon, bool) or not 0 <= float(self.epsilon) <= 1:
            raise InputError(
                f"exploration.epsilon: {self.epsilon!r} is not accepted; give a number from 0 to 1"
            )
        if isinstance(self.cycle, bool) or not isinstance(self.cycle, int) or self.cycle < 0:
            raise InputError(
                f"exploration.cycle: {self.cycle!r} is not accepted; give a whole number >= 0"
            )
        if isinstance(self.usual_care_share, bool) or not 0 <= float(self.usual_care_share) <= 0.5:
            raise InputError(
                f"exploration.usual_care_share: {self.usual_care_share!r} is not "
                "accepted; give a number from 0 to 0.5"
            )
        if isinstance(self.max_cost, bool) or not 0 <= float(self.max_cost) <= 1:
            raise InputError(
                f"exploration.max_cost: {self.max_cost!r} is not accepted; give a number "
                "from 0 to 1"
            )
        if float(self.max_cost) < float(self.usual_care_share):
            raise InputError(
                f"exploration.max_cost: {self.max_cost!r} is below usual_care_share "
                f"{self.usual_care_share!r}; usual care's share alone gives up that much of "
                "the best arm's benefit, so give max_cost >= usual_care_share"
            )
        if not 0 < float(self.coverage) < 1:
            raise InputError(f"exploration coverage {self.coverage!r} must lie in (0, 1)")

    @classmethod
    def from_config(
        cls, raw: Mapping | None, *, coverage: float = 0.9, where: str = "exploration"
    ) -> ExplorationRule:
        """From the ``exploration:`` mapping of ``serve.yaml`` (missing keys take defaults)."""
        raw = dict(raw or {})
        accepted = {"policy", "epsilon", "cycle", "usual_care_share", "max_cost"}
        unknown = sorted(set(raw) - accepted)
        if unknown:
            raise InputError(
                f"{where}: unknown key(s) {unknown}; accepted: {', '.join(sorted(accepted))}"
            )
        try:
            return cls(
                policy=raw.get("policy", cls.policy),
                epsilon=raw.get("epsilon", cls.epsilon),
                cycle=raw.get("cycle", cls.cycle),
                usual_care_share=raw.get("usual_care_share", cls.usual_care_share),
                max_cost=raw.get("max_cost", cls.max_cost),
                coverage=coverage,
            )
        except InputError as error:
            raise InputError(f"{where}: {error}") from None

    def describe(self) -> str:
        """One sentence for the model card and the README."""
        if self.policy == "greedy":
            return (
                "Exploration is off (greedy): every person is served the best-ranked arm "
                f"(survey cycle {self.cycle})."
            )
        how = (
            f"with probability {self.epsilon:g} an arm drawn uniformly among those in "
            "equipoise, otherwise the best-ranked arm"
            if self.policy == "epsilon"
            else "Thompson sampling: each arm in equipoise is drawn from its interval and the "
            "best draw is served"
        )
        return (
            f"Exploration policy {self.policy} (survey cycle {self.cycle}): {how}. Only "
            "arms the person is eligible for and offered, whose interval does not rule out "
            "being as good as the best, are explored, and usual care keeps at least "
            f"{self.usual_care_share:g} of the probability as the comparison group. "
            f"Exploring gives up at most {self.max_cost:g} of the best arm's expected benefit "
            "per person (by the model's estimates; beyond that the best arm takes the "
            "probability back). Severe profiles are served the best arm and crisis profiles "
            "get no ranking. Every served arm's probability is logged."
        )


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


def equipoise_arms(ranking) -> list[str]:
    """Arms of ``ranking`` whose interval reaches the best arm's: the data allow them to be best.

    Parameters
    ----------
    ranking : Ranking
        From :func:`recommender.policy.rank_arms` (usual care included at zero).

    Examples
    --------
    >>> from recommender.policy import rank_arms
    >>> r = rank_arms({"coaching": (-5, -8, -2, 0, 0), "peer_group": (-3, -6, 0, 0, 0),
    ...                "app": (2, 1, 3, 0, 0)})
    >>> equipoise_arms(r)
    ['coaching', 'peer_group']
    """
    return [ranking.arms[j].arm for j in _in_equipoise(ranking)]


def _in_equipoise(ranking) -> list[int]:
    """The positions in ``ranking`` of :func:`equipoise_arms` (the one home of the rule)."""
    upper = ranking.arms[0].upper
    return [j for j, a in enumerate(ranking.arms) if a.lower <= upper]


def arm_probabilities(
    ranking, rule: ExplorationRule, *, explore: bool = True, control: str = "none"
) -> dict[str, float]:
    """The probability of serving each ranked arm under ``rule`` (they sum to one).

    Parameters
    ----------
    ranking : Ranking
    rule : ExplorationRule
    explore : bool
        False serves the best-ranked arm with probability one (severe profiles).
    control : str
        Id of usual care (see ``usual_care_share``).

    Examples
    --------
    >>> from recommender.policy import rank_arms
    >>> r = rank_arms({"coaching": (-5, -8, -2, 0, 0), "peer_group": (-3, -6, 0, 0, 0)})
    >>> free = ExplorationRule(policy="epsilon", epsilon=0.2, usual_care_share=0, max_cost=1)
    >>> arm_probabilities(r, free)
    {'coaching': 0.9, 'peer_group': 0.1, 'none': 0.0}
    >>> rule = ExplorationRule(policy="epsilon", epsilon=0.2, usual_care_share=0.05, max_cost=1)
    >>> arm_probabilities(r, rule)
    {'coaching': 0.855, 'peer_group': 0.095, 'none': 0.05}

    Under the default bound, exploring gives up at most 3 % of coaching's 5 points:

    >>> p = arm_probabilities(r, ExplorationRule(policy="epsilon", epsilon=0.2))
    >>> {arm: round(share, 3) for arm, share in p.items()}, round(expected_cost(p, r), 3)
    ({'coaching': 0.955, 'peer_group': 0.025, 'none': 0.02}, 0.15)
    >>> arm_probabilities(r, ExplorationRule(policy="greedy"))
    {'coaching': 1.0, 'peer_group': 0.0, 'none': 0.0}
    """
    return _with_floor(
        _policy_probabilities(ranking, rule, explore), ranking, rule, explore, control
    )


def _with_floor(probabilities, ranking, rule, explore, control) -> dict[str, float]:
    floor = float(rule.usual_care_share)
    if (
        explore
        and rule.policy != "greedy"
        and floor > 0
        and control in probabilities
        and probabilities[control] < floor
    ):
        # Scale the other arms down so that usual care holds exactly the floor.
        scale = (1.0 - floor) / (1.0 - probabilities[control])
        probabilities = {
            arm: (floor if arm == control else p * scale) for arm, p in probabilities.items()
        }
    if explore and rule.policy != "greedy":
        probabilities = _within_cost(probabilities, ranking, rule, control)
    return probabilities


def expected_cost(probabilities: Mapping[str, float], ranking) -> float:
    """Expected EE points given up against serving the best-ranked arm (model's estimates).

    Examples
    --------
    >>> from recommender.policy import rank_arms
    >>> r = rank_arms({"coaching": (-5, -8, -2, 0, 0), "peer_group": (-3, -6, 0, 0, 0)})
    >>> expected_cost({"coaching": 0.5, "peer_group": 0.4, "none": 0.1}, r)
    1.3
    """
    best = ranking.arms[0].effect
    return float(sum(probabilities.get(a.arm, 0.0) * (a.effect - best) for a in ranking.arms))


def _within_cost(probabilities, ranking, rule, control) -> dict[str, float]:
    # Mix the policy's probabilities with the least exploring allowed (usual care at its share,
    # the best arm the rest) so that the expected loss is at most max_cost of the best arm's
    # benefit. The loss is linear in the mixing weight, so the weight follows in closed form.
    best = ranking.arms[0]
    budget = float(rule.max_cost) * max(-best.effect, 0.0)
    spent = expected_cost(probabilities, ranking)
    if spent <= budget:
        return probabilities
    floor = float(rule.usual_care_share) if control in probabilities else 0.0
    least = dict.fromkeys(probabilities, 0.0)
    least[best.arm] += 1.0 - floor
    if floor > 0:
        least[control] += floor
    base = expected_cost(least, ranking)
    weight = min(max((budget - base) / (spent - base), 0.0), 1.0) if spent > base else 0.0
    return {
        arm: weight * share + (1.0 - weight) * least[arm] for arm, share in probabilities.items()
    }


def _policy_probabilities(ranking, rule, explore, wins=None, candidates=None) -> dict[str, float]:
    names = [a.arm for a in ranking.arms]
    probabilities = dict.fromkeys(names, 0.0)
    if candidates is None:
        candidates = equipoise_arms(ranking) if explore else names[:1]
    if rule.policy == "greedy" or len(candidates) == 1:
        probabilities[names[0]] = 1.0
        return probabilities
    if rule.policy == "epsilon":
        share = float(rule.epsilon) / len(candidates)
        for arm in candidates:
            probabilities[arm] = share
        probabilities[names[0]] += 1.0 - float(rule.epsilon)
        return probabilities
    if wins is None:
        wins = _thompson_wins([_thompson_case(ranking, candidates)], rule.coverage)[0]
    for arm, share in zip(candidates, wins):
        probabilities[arm] = float(share)
    return probabilities


def _thompson_case(ranking, candidates) -> tuple[list, list]:
    by_arm = {a.arm: j for j, a in enumerate(ranking.arms)}
    return _case(ranking.arms, [by_arm[a] for a in candidates])


# Rows computed together (6 arms: 256 rows x 6 arms x 240 nodes of floats is 3 MB an array).
_ROWS_PER_PASS = 256


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
    others = np.ones_like(above)
    for j in range(1, k):
        others[:, j] = others[:, j - 1] * above[:, j - 1]
    after = np.ones((n, above.shape[2]))
    for j in range(k - 2, -1, -1):
        after = after * above[:, j + 1]
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
        names = [[a.arm for a in rankings[i].arms] for i in members]
        shares = np.array(
            [_policy_shares(rankings[i], chosen[i], rule, wins.get(i)) for i in members],
            dtype=float,
        )
        effects = np.array([[a.effect for a in rankings[i].arms] for i in members], dtype=float)
        at = np.array([row.index(control) if control in row else -1 for row in names])
        active = np.array([explore[i] for i in members], dtype=bool) & (rule.policy != "greedy")
        shares = _bounded(shares, effects, at, active, rule)
        positions = np.array([draw_position(person_hashes[i], rule.cycle) for i in members])
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


def _new_assignment(arm, probability, policy, cycle, probabilities) -> Assignment:
    # Assignment(...) with its fields set as its frozen __init__ sets them (in field order), at
    # a third of the cost: a batch makes one per person.
    made = object.__new__(Assignment)
    made.__dict__.update(
        arm=arm, probability=probability, policy=policy, cycle=cycle, probabilities=probabilities
    )
    return made


def _case(arms, where) -> tuple[list, list]:
    # _thompson_case from positions; lists: _thompson_wins makes one array of many cases.
    chosen = [arms[j] for j in where]
    return [a.effect for a in chosen], [a.upper - a.lower for a in chosen]


def _policy_shares(ranking, where, rule, wins) -> list[float]:
    """:func:`_policy_probabilities`' values, in ranking order, for the candidates at positions
    ``where`` (ascending; at least one): the same numbers, without the mapping."""
    shares = [0.0] * len(ranking.arms)
    if rule.policy == "greedy" or len(where) == 1:
        shares[0] = 1.0
        return shares
    if rule.policy == "epsilon":
        share = float(rule.epsilon) / len(where)
        for j in where:
            shares[j] = share
        shares[0] += 1.0 - float(rule.epsilon)
        return shares
    for j, share in zip(where, wins):
        shares[j] = float(share)
    return shares


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


def _bounded(shares, effects, at, active, rule) -> np.ndarray:
    """:func:`_with_floor` for many people with the same number of ranked arms (rows), the
    same floating-point operations in the same order: ``shares`` and ``effects`` in ranking
    order, ``at`` usual care's column (-1 when not ranked), ``active`` whether the person is
    explored under a policy other than greedy."""
    rows = np.arange(len(shares))
    has_care = at >= 0
    care = np.where(has_care, at, 0)
    floor = float(rule.usual_care_share)
    if floor > 0:
        lift = active & has_care & (shares[rows, care] < floor)
        if lift.any():
            r, c = rows[lift], care[lift]
            scale = (1.0 - floor) / (1.0 - shares[r, c])
            shares[r] = shares[r] * scale[:, None]
            shares[r, c] = floor
    # The cost bound (see _within_cost): Python's max(-best, 0.0) and sum() kept exactly.
    best = -effects[:, 0]
    budget = float(rule.max_cost) * np.where(0.0 > best, 0.0, best)
    spent = _expected_costs(shares, effects)
    over = active & ~(spent <= budget)
    if not over.any():
        return shares
    r = rows[over]
    share = np.where(has_care[r], floor, 0.0)
    least = np.zeros((len(r), shares.shape[1]))
    least[:, 0] = 0.0 + (1.0 - share)
    lifted = share > 0
    least[np.flatnonzero(lifted), care[r][lifted]] += share[lifted]
    base = _expected_costs(least, effects[r])
    above = spent[r] > base
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (budget[r] - base) / (spent[r] - base)
    ratio = np.where(0.0 > ratio, 0.0, ratio)
    weight = np.where(above, np.where(1.0 < ratio, 1.0, ratio), 0.0)
    shares[r] = weight[:, None] * shares[r] + (1.0 - weight)[:, None] * least
    return shares


def _expected_costs(shares, effects) -> np.ndarray:
    # expected_cost per row, summed arm by arm from 0 as Python's sum() does (numpy's sum
    # would pair terms differently and could differ in the last bit).
    gap = effects - effects[:, :1]
    total = 0.0 + shares[:, 0] * gap[:, 0]
    for j in range(1, shares.shape[1]):
        total = total + shares[:, j] * gap[:, j]
    return total


def _drawn(shares, positions) -> np.ndarray:
    """Per row, the arm drawn at ``positions`` (see :func:`draw_position`): the first with a
    share whose running total, added from the left, exceeds the position; the last with a
    share when rounding left the position just above the total."""
    total = np.cumsum(shares, axis=1)
    hit = (shares > 0) & (positions[:, None] < total)
    last = shares.shape[1] - 1 - np.argmax((shares > 0)[:, ::-1], axis=1)
    return np.where(hit.any(axis=1), np.argmax(hit, axis=1), last)


@functools.lru_cache(maxsize=16)
def _z(coverage: float) -> float:
    # The normal quantile of an interval's coverage: scipy's ppf costs more than the rest of a
    # Thompson probability, and the coverage is the service's one setting.
    return float(norm.ppf(0.5 + coverage / 2.0))
