"""Why an arm some people may be given is given to nobody, whatever the plan.

A plan's summary shows such an arm with 0 people beside its free places; without a reason a
program reads it as the solver's choice. Two reasons are structural, true before anything is
solved: fewer people may be given the arm than its smallest group needs, and a budget below
what one place (or the smallest group) costs.
"""

from __future__ import annotations

import numpy as np

__all__ = ["unreachable_arms"]

# A budget this close above a price (relatively) pays for it: the solver's own tolerance.
_PAID = 1e-9


def unreachable_arms(allowed, arms, limits, budget, *, confident_only=False) -> tuple[str, ...]:
    """One sentence per arm that no plan can give anyone, saying why.

    Parameters
    ----------
    allowed : ndarray of bool (people x arms)
        The pairs a plan may use: eligible, offered, expected to help (and with
        ``confident_only``, an interval excluding no benefit).
    arms : sequence of str
    limits : mapping of arm to ArmLimits
    budget : float or None

    Examples
    --------
    >>> from recommender.policy import ArmLimits
    >>> limits = {"balint_group": ArmLimits(600, capacity=24, group_min=7, group_max=12)}
    >>> unreachable_arms(np.ones((5, 1), bool), ["balint_group"], limits, None)[0][:50]
    'balint_group: only 5 people may be given it (eligi'
    """
    reach = np.asarray(allowed, dtype=bool).sum(axis=0)
    helped = (
        "eligible, offered and expected to help, with an interval excluding no benefit"
        if confident_only
        else "eligible, offered and expected to help"
    )
    too_few, unpaid, least, formable = [], [], None, 0
    for j, arm in enumerate(arms):
        lim = limits[arm]
        if reach[j] == 0 or lim.capacity == 0:  # nobody to give it to, or closed: said already
            continue
        smallest = int(lim.group_min)
        if reach[j] < smallest:
            people = "1 person" if reach[j] == 1 else f"{int(reach[j])} people"
            too_few.append(
                f"{arm}: only {people} may be given it ({helped}), fewer than the {smallest} "
                "its smallest group needs: nobody is given it"
            )
            continue
        formable += 1  # enough people for a group: only money can stand in its way
        price = smallest * float(lim.cost_per_person)
        if least is None or price < least[0]:
            least = (price, arm, smallest)
        if budget is not None and price > float(budget) * (1 + _PAID) + _PAID:
            unpaid.append(
                f"{arm}: one place costs {_usd(price)}, more than the budget "
                f"({_usd(budget)}): nobody is given it"
                if smallest == 1
                else f"{arm}: its smallest group ({smallest} people at "
                f"{_usd(lim.cost_per_person)}) costs {_usd(price)}, more than the budget "
                f"({_usd(budget)}): nobody is given it"
            )
    if formable > 1 and len(unpaid) == formable:  # the budget pays for no arm at all: once
        price, arm, smallest = least
        what = "one place" if smallest == 1 else f"a group of {smallest}"
        unpaid = [
            f"the budget ({_usd(budget)}) pays for no arm anyone may be given: the least one "
            f"costs is {_usd(price)} ({arm}, {what}); everyone is given usual care"
        ]
    return tuple(too_few + unpaid)


def _usd(amount) -> str:
    """US$ as a plan shows them: whole dollars, or cents when there are any.

    >>> _usd(4200.0), _usd(2.34), _usd(5e-324)
    ('$4,200', '$2.34', '$0')
    """
    cents = round(float(amount), 2)
    return f"${cents:,.0f}" if cents == round(cents) else f"${cents:,.2f}"
