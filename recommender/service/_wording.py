"""Wording the answers: explanations from the contributions, and each answer as the response
model lists it.

A part of :class:`~recommender.service._engine.RecommendationEngine` (mixed in): it reads the
engine's model, catalog, config, version, arm names and facts, complements and context when
it words an answer.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from math import isfinite

from recommender.explain import explain_many, top_contributions_many
from recommender.model import estimate_basis, extrapolation_note
from recommender.service._crisis import safety_block

__all__ = ["AnswerWording"]


class AnswerWording:
    """``arm_facts`` and the answers' wording of the recommendation engine."""

    def _explain(self, contributions, ranked_rows, rows, rankings) -> dict:
        """Explanations for every ranked row from its contributions (see
        :func:`~recommender.service._scoring.explanation_contributions`)."""
        control = self.control
        stacked, best, second, none = contributions
        names = [f["name"] for f in self.model.features]
        profiles = [rows[i] for i in ranked_rows]
        top = self.config.top
        # Recommended against usual care: the recommended arm's own contributions.
        care = [k for k, b in enumerate(best) if b != none]
        versus_care = [None] * len(ranked_rows)
        for k, chosen in zip(
            care,
            top_contributions_many(
                stacked[[best[k] for k in care]], names, [profiles[k] for k in care], top=top
            ),
        ):
            versus_care[k] = chosen
        # Recommended against the runner-up: the difference of the two (usual care's own being
        # zero: a - 0 is a, and 0 - b is -b but for the sign of a zero, which no explanation
        # shows).
        pairs = [k for k, (b, c) in enumerate(zip(best, second)) if b != none or c != none]
        versus_next = [None] * len(ranked_rows)
        for k, chosen in zip(
            pairs,
            top_contributions_many(
                stacked[[best[k] for k in pairs]] - stacked[[second[k] for k in pairs]],
                names,
                [profiles[k] for k in pairs],
                top=top,
            ),
        ):
            versus_next[k] = chosen
        figures = []  # (recommended, runner-up, effect, lower, upper, runner-up's effect)
        for i in ranked_rows:
            arms = rankings[i].arms
            first = arms[0]
            if len(arms) > 1:
                runner_up = arms[1]
                figures.append(
                    (
                        first.arm,
                        runner_up.arm,
                        first.effect,
                        first.lower,
                        first.upper,
                        runner_up.effect,
                    )
                )
            else:
                figures.append((first.arm, None, first.effect, first.lower, first.upper, None))
        explained = explain_many(
            figures,
            versus_care,
            versus_next,
            profiles,
            control=control,
            names=self._names,
            coverage=self.config.coverage,
            top=top,
        )
        return dict(zip(ranked_rows, explained))

    def arm_facts(self, answers: Sequence[Mapping]) -> dict[str, dict]:
        """Name, cost and evidence of every arm ranked in ``answers``, once per arm."""
        arms = {item["arm"] for answer in answers for item in answer["ranking"]}
        return {arm: self._arm_facts[arm] for arm in self.catalog.arm_ids if arm in arms}

    def _evidence_basis(self, role: str, ranked: tuple) -> str | None:
        """See :func:`recommender.model.estimate_basis` (``ranked``: best first)."""
        metadata = getattr(self.model, "metadata", None) or {}
        return estimate_basis(metadata, list(ranked), role, self._names)

    def _answer(
        self,
        request_id,
        row,
        safety,
        ranking,
        explanation,
        excluded,
        compact,
        assignment=None,
        outside=None,
    ) -> dict:
        config = self.config
        answer = {
            "request_id": request_id,
            "model_version": self.version,
            "catalog_version": self.catalog.version,
            "catalog_sha256": self.catalog.sha256,
            "recommended": None,
            "interval_level": round(config.coverage, 6),
            "ranking": [],
            "ranking_meaningful": None,
            "ranking_note": None,
            "excluded": [{"arm": e.arm, "reason": e.reason} for e in excluded],
            "explanation": None,
            "outside_training_data": outside,
            "safety": safety_block(safety),
            "disclaimer": None if compact else config.disclaimer,
            "complements": [] if compact else self.complements,
            "context": None if compact else self.context,
            "assignment": None,
        }
        if ranking is None:
            return answer
        answer["recommended"] = ranking.recommended
        answer["ranking_meaningful"] = ranking.meaningful
        answer["ranking_note"] = ranking.note
        basis = self._basis(str(row.get("role")), tuple(map(_arm_of, ranking.arms)))
        if basis:
            answer["ranking_note"] += " " + basis
        # the rare profile outside the training data: said in words, where effects are shown
        # (usual care alone, ranked at 0, has none to call extrapolated)
        if outside and any(_arm_of(arm) != self.control for arm in ranking.arms):
            answer["ranking_note"] += " " + extrapolation_note(outside, config.coverage)
        if assignment is not None:
            answer["recommended"] = assignment.arm
            answer["assignment"] = assignment.as_answer()
            if assignment.arm != ranking.recommended:
                answer["ranking_note"] += (
                    f" Served {self._names.get(assignment.arm, assignment.arm)} rather than "
                    f"the best-ranked arm: the data do not rule out that it is as good, and the "
                    f"program's {assignment.policy} exploration policy drew it with probability "
                    f"{assignment.probability:.2f}, so the program can learn which helps more."
                )
        # EE figures are finite (checked before ranking) and already rounded; DP and PA
        # figures are NaN when the model has no such outcome or interval, and JSON has no NaN.
        ranked = [
            {
                "arm": arm,
                "rank": rank,
                "ee_effect": effect,
                "ee_lower": lower,
                "ee_upper": upper,
                "dp_effect": dp if isfinite(dp) else None,
                "dp_lower": dp_lower if isfinite(dp_lower) else None,
                "dp_upper": dp_upper if isfinite(dp_upper) else None,
                "pa_effect": pa if isfinite(pa) else None,
                "pa_lower": pa_lower if isfinite(pa_lower) else None,
                "pa_upper": pa_upper if isfinite(pa_upper) else None,
            }
            # a RankedArm's fields, unpacked rather than read one by one
            for (
                arm,
                rank,
                effect,
                lower,
                upper,
                dp,
                pa,
                dp_lower,
                dp_upper,
                pa_lower,
                pa_upper,
            ) in ranking.arms
        ]
        if not compact:
            for item in ranked:
                item.update(self._arm_facts[item["arm"]])
        answer["ranking"] = ranked
        answer["explanation"] = {
            "versus_usual_care": _contribution_items(explanation.versus_usual_care),
            "runner_up": explanation.runner_up,
            "versus_runner_up": _contribution_items(explanation.versus_runner_up),
            "sentence": explanation.sentence,
        }
        return answer


_arm_of = operator.itemgetter(0)  # a RankedArm's arm


def _contribution_items(contributions) -> list[dict]:
    # What Contribution._asdict() gives, built directly (_asdict zips the fields each time).
    return [{"feature": f, "value": v, "points": p} for f, v, p in contributions]
