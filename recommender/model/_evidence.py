"""The day-one model: effects from the catalog's published evidence alone, per arm and role.

A program that has no follow-up data yet can still start: for every arm and every role the
catalog's evidence concerns, the effect is the published difference from usual care converted
to Emotional Exhaustion points (``effect_points``) with its published interval
(``effect_points_ci``, a 95 % interval). Where several findings concern the same arm and role
the most precise one that is specific to the arm is used (reviews of the same trials overlap,
so pooling them would count those trials twice); a finding pooled across several arms is used
only when no arm-specific one exists. A role without any finding in EE points gets no estimate
for that arm, and the arm is then not ranked for that role: the evidence says nothing about it.

The estimates are the same for everybody in a role: nothing is personalised beyond role, and
the answers say so. :func:`evidence_model` wraps them as a
:class:`~recommender.model.RecommendationModel`, so the service, the card, the registry and
the gate handle it like any fitted model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.cohort import CATEGORIES, ROLE_NAMES
from recommender.levels import check_alpha, two_sided_z
from recommender.errors import InputError

__all__ = [
    "EvidenceEffects",
    "EvidenceEstimate",
    "evidence_estimates",
    "evidence_model",
    "roles_without_evidence",
    "no_evidence_for_role",
]

# Said beside the citation of a figure pooled over several kinds of intervention.
POOLED_NOTE = "an estimate pooled over several kinds of intervention, not this arm's own"

# Published intervals are 95 % intervals unless a source says otherwise.
_PUBLISHED_LEVEL = 0.95


@dataclass(frozen=True)
class EvidenceEstimate:
    """One arm's effect for one role, as published."""

    arm: str
    role: str
    effect: float
    lower: float  # the published 95 % interval
    upper: float
    citation: str
    specific_to_arm: bool

    @property
    def se(self) -> float:
        # scipy.stats is imported here, not with the module (see recommender.levels): a
        # process that imports the model package without reading evidence (`recommender
        # serve`'s own, BentoML's) no longer spends 0.6 s of CPU on it.
        from scipy.stats import norm

        return (self.upper - self.lower) / (2 * norm.ppf(0.5 + _PUBLISHED_LEVEL / 2))


def evidence_estimates(catalog) -> list[EvidenceEstimate]:
    """Per (arm, role): the most precise published EE effect with an interval, if any."""
    best: dict[tuple[str, str], EvidenceEstimate] = {}
    for arm in catalog.arms:
        if arm.id == catalog.control:
            continue
        for item in arm.evidence:
            points = getattr(item, "effect_points", None)
            interval = getattr(item, "effect_points_ci", None)
            if points is None or not interval:
                continue
            lower, upper = (float(v) for v in interval)
            specific = bool(getattr(item, "specific_to_arm", True))
            for role in getattr(item, "roles", None) or CATEGORIES["role"]:
                candidate = EvidenceEstimate(
                    arm.id, str(role), float(points), lower, upper, str(item.citation), specific
                )
                current = best.get((arm.id, role))
                # Arm-specific evidence first; among equals, the narrowest interval.
                if current is None or (candidate.specific_to_arm, -candidate.se) > (
                    current.specific_to_arm,
                    -current.se,
                ):
                    best[(arm.id, role)] = candidate
    return [best[key] for key in sorted(best, key=lambda k: (catalog.arm_ids.index(k[0]), k[1]))]


class EvidenceEffects:
    """Uplift-model face of published effects: the same estimate for everyone in a role.

    Has the learners' interface the recommendation bundle uses (``arms_``, ``predict_effect``,
    ``predict_interval``, ``contributions``), over a feature frame holding ``role``.
    """

    learner_ = "published evidence (per arm and role)"

    def __init__(self, estimates, *, arms):
        self.estimates = list(estimates)
        self.arms_ = np.array(list(arms), dtype=object)
        roles = CATEGORIES["role"]
        self._effect = pd.DataFrame(np.nan, index=list(roles), columns=list(arms))
        self._se = self._effect.copy()
        for e in self.estimates:
            self._effect.loc[e.role, e.arm] = e.effect
            self._se.loc[e.role, e.arm] = e.se
        # What the role adds to an arm's effect: its estimate minus the mean over the roles
        # with evidence (the additive explanation a profile gets).
        self._base = self._effect.mean(axis=0, skipna=True)

    def _lookup(self, table: pd.DataFrame, X: pd.DataFrame) -> pd.DataFrame:
        roles = X["role"].astype(str).to_numpy()
        unknown = sorted(set(roles) - set(table.index))
        if unknown:
            raise InputError(f"role {unknown[0]!r} is not a role of the data contract")
        return pd.DataFrame(
            table.loc[roles].to_numpy(dtype=float), index=X.index, columns=list(self.arms_)
        )

    def predict_effect(self, X: pd.DataFrame) -> pd.DataFrame:
        return self._lookup(self._effect, X)

    def predict_interval(self, X: pd.DataFrame, alpha: float = 0.1):
        z = two_sided_z(check_alpha(alpha))
        effect, se = self._lookup(self._effect, X), self._lookup(self._se, X)
        return effect - z * se, effect + z * se

    def contributions(self, X: pd.DataFrame, arm: str, versus: str = "none") -> pd.DataFrame:
        effect = self.predict_effect(X)

        def parts(name):
            if name not in effect.columns:  # usual care
                return np.zeros(len(X)), 0.0
            base = float(self._base[name]) if np.isfinite(self._base[name]) else 0.0
            return effect[name].to_numpy(dtype=float) - base, base

        role_a, base_a = parts(arm)
        role_b, base_b = parts(versus)
        return pd.DataFrame({"role": role_a - role_b, "base": base_a - base_b}, index=X.index)


def evidence_model(catalog, *, metadata=None):
    """A :class:`~recommender.model.RecommendationModel` built from ``catalog``'s evidence.

    Raises
    ------
    InputError
        When no evidence item of the catalog gives an effect in EE points with an interval.
    """
    from recommender.model._recommendation import RecommendationModel

    estimates = evidence_estimates(catalog)
    if not estimates:
        raise InputError(
            f"intervention catalog {catalog.version} has no evidence item with effect_points "
            "and effect_points_ci, so no model can be built from the evidence alone; add the "
            "converted EE effect and its interval to the evidence items"
        )
    arms = [arm for arm in catalog.treatment_arms if any(e.arm == arm for e in estimates)]
    effects = EvidenceEffects(estimates, arms=arms)
    features = [{"name": "role", "kind": "category", "categories": list(CATEGORIES["role"])}]
    citations = {}
    for e in estimates:
        # What the answers cite as the source of the arm's figure for the role: a finding
        # pooled over several arms is said to be so, or the figure reads as this arm's own.
        citations.setdefault(e.arm, {})[e.role] = (
            e.citation if e.specific_to_arm else f"{e.citation}, {POOLED_NOTE}"
        )
    facts = {"source": "evidence", "evidence_citations": citations, **dict(metadata or {})}
    return RecommendationModel(
        outcome_models={"ee": effects},
        features=features,
        catalog_version=catalog.version,
        control=catalog.control,
        primary="ee",
        metadata=facts,
        catalog=catalog,
    )


def roles_without_evidence(metadata) -> list[str]:
    """The roles of the data contract no finding of an evidence-only model concerns (from
    its ``metadata``): for them it ranks no intervention."""
    citations = (metadata or {}).get("evidence_citations") or {}
    return [
        r for r in CATEGORIES["role"] if not any(r in by_role for by_role in citations.values())
    ]


def no_evidence_for_role(role: str) -> str:
    """What an answer and the card say of a role no published finding concerns: plainly that
    none does, and that usual care, listed alone, is not a recommendation over anything."""
    people = ROLE_NAMES.get(role, role)
    # "concerns {people}" alone was untrue for APPs: the catalog's complements cite reviews of
    # any healthcare staff (Schwartz Rounds, EHR burden); none gives a ranked arm's figure.
    return (
        f"No published trial or review in the catalog concerns {people} with an "
        "emotional-exhaustion figure for any intervention this model ranks (reviews of the "
        "measures it does not rank may include them), and this model rests on published "
        "trials alone, so it ranks no intervention for them: usual care is listed "
        "alone because no intervention has an estimate for their role, not because it was "
        "found better. What to offer them is the program's judgement. Served by this model, "
        "they all get usual care, so the log holds no intervention given to them: a model "
        "retrained from the program's own log (recommender train --from-log) ranks "
        "interventions for them with figures extrapolated from the other roles, not measured "
        "on them, until some of them have been served an intervention and their follow-up "
        "scores are in."
    )
