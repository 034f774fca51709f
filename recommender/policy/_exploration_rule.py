"""The exploration settings of a service: which policy, how much it may explore, and its price.

See :mod:`recommender.policy._exploration` for what each setting does to the probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from recommender.levels import ALPHA_LEAST, alpha_accepted
from recommender.errors import InputError

__all__ = ["POLICIES", "ExplorationRule"]

POLICIES = ("greedy", "epsilon", "thompson")


def _within(value, high: float) -> bool:
    """A number from 0 to ``high``; a text ("0.1"), a boolean, null or a list is not one, and is
    refused by name rather than left to fail in ``float()``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= high


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
        if not _within(self.epsilon, 1):
            raise InputError(
                f"exploration.epsilon: {self.epsilon!r} is not accepted; give a number from 0 to 1"
            )
        if isinstance(self.cycle, bool) or not isinstance(self.cycle, int) or self.cycle < 0:
            raise InputError(
                f"exploration.cycle: {self.cycle!r} is not accepted; give a whole number >= 0"
            )
        if not _within(self.usual_care_share, 0.5):
            raise InputError(
                f"exploration.usual_care_share: {self.usual_care_share!r} is not "
                "accepted; give a number from 0 to 0.5"
            )
        if not _within(self.max_cost, 1):
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
        # the service's 1 - alpha: the same levels as alpha, so the quantile stays finite
        if isinstance(self.coverage, bool) or not alpha_accepted(1 - self.coverage):
            raise InputError(
                f"exploration coverage {self.coverage!r} is not accepted; accepted: a number "
                f"above 0 and at most 1 - {ALPHA_LEAST:g} (1 - alpha)"
            )

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
