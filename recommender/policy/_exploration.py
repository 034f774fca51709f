"""With what probability to serve each arm to a person: the exploration policy.

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

The draw itself, reproducible per person and survey cycle, is :mod:`._assignment`'s; the
settings are :class:`ExplorationRule` (:mod:`._exploration_rule`) and Thompson's probabilities
are computed in :mod:`._thompson`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from recommender.policy._exploration_rule import ExplorationRule
from recommender.policy._thompson import _thompson_case, _thompson_wins

__all__ = ["arm_probabilities", "equipoise_arms", "expected_cost"]


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
