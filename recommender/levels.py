"""The level of every two-sided interval the library gives: ``alpha``, for ``1 - alpha``
coverage. One rule for each public parameter that takes it (``UpliftModel.predict_interval``,
the models' ``predict`` and ``recommend``, the evaluation's functions, the configs and the
command line's ``--alpha``).

Below about 1.1e-16, ``1 - alpha / 2`` rounds to 1 and the normal quantile is infinite: the
bounds came out as -inf and +inf. The floor, 1e-12 (z = 7.1), keeps the quantile finite with
room for the evaluation's split of ``alpha`` among the arms (Bonferroni); nothing narrower
than a 1 - 1e-12 interval is meant by anyone.
"""

from __future__ import annotations

import functools
import math
from numbers import Real

from recommender.errors import InputError

__all__ = ["ALPHA_ACCEPTED", "ALPHA_LEAST", "alpha_accepted", "check_alpha", "two_sided_z"]

ALPHA_LEAST = 1e-12
ALPHA_ACCEPTED = "a number strictly between 0 and 1, at least 1e-12 (0.1: 90% intervals)"


def alpha_accepted(alpha) -> bool:
    return isinstance(alpha, Real) and not isinstance(alpha, bool) and ALPHA_LEAST <= alpha < 1


def check_alpha(alpha, name: str = "alpha") -> float:
    """``alpha`` as a float, or InputError naming it and what is accepted."""
    if not alpha_accepted(alpha):
        raise InputError(f"{name}={alpha!r} is not accepted; accepted: {ALPHA_ACCEPTED}")
    return float(alpha)


@functools.lru_cache(maxsize=64)
def two_sided_z(alpha: float) -> float:
    """The normal quantile ``z_{1 - alpha/2}`` (cached: scipy's ppf costs a third of one row's
    prediction). ``alpha`` is a checked level, or one split among arms. scipy is imported here,
    not with the module: the command line's parser reads this module's rule, and scipy.stats
    took most of ``recommender --help``'s start."""
    from scipy.stats import norm

    z = float(norm.ppf(1.0 - alpha / 2.0))
    if not (0 < alpha < 1 and math.isfinite(z)):
        raise InputError(f"alpha={alpha!r} is not accepted; accepted: {ALPHA_ACCEPTED}")
    return z
