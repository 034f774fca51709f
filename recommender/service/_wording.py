"""Wording the answers: explanations from the contributions, and each answer as the response
model lists it.

A part of :class:`~recommender.service._engine.RecommendationEngine` (mixed in): it reads the
engine's model, catalog, config, version, arm names and facts, complements and context when
it words an answer.
"""

from __future__ import annotations

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

    def _answers(self, ranked, request_ids, exclusions, assignments, outside, *, compact):
        """The answers of ranked rows, in order: per row ``(row, triage, ranking,
        explanation)`` in ``ranked``, and its request id, exclusions, assignment (or None)
        and, when ``outside`` is not None, the fields its profile has outside the training
        data. What every answer shares is looked up once, each answer's own built in one pass.
        """
        config = self.config
        version, catalog = self.version, self.catalog
        catalog_version, catalog_sha256 = catalog.version, catalog.sha256
        level = round(config.coverage, 6)
        disclaimer = None if compact else config.disclaimer
        context = None if compact else self.context
        facts = None if compact else self._arm_facts
        complements = self.complements
        control, names, basis = self.control, self._names, self._basis
        out = []
        for k, (row, triage, ranking, explanation) in enumerate(ranked):
            where = None if outside is None else outside[k]
            arms = ranking.arms
            recommended = arms[0].arm
            note = ranking.note
            extra = basis(str(row.get("role")), tuple([arm[0] for arm in arms]))
            if extra:
                note += " " + extra
            # the rare profile outside the training data: said in words, where effects are
            # shown (usual care alone, ranked at 0, has none to call extrapolated)
            if where and any(arm[0] != control for arm in arms):
                note += " " + extrapolation_note(where, config.coverage)
            assignment = assignments[k]
            served = None
            if assignment is not None:
                served = assignment.as_answer()
                if assignment.arm != recommended:
                    note += (
                        f" Served {names.get(assignment.arm, assignment.arm)} rather than "
                        f"the best-ranked arm: the data do not rule out that it is as good, and "
                        f"the program's {assignment.policy} exploration policy drew it with "
                        f"probability {assignment.probability:.2f}, so the program can learn "
                        "which helps more."
                    )
                recommended = assignment.arm
            # EE figures are finite (checked before ranking) and already rounded; DP and PA
            # figures are NaN when the model has no such outcome or interval, and JSON has no
            # NaN. A RankedArm's fields, unpacked rather than read one by one.
            ranked = []
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
            ) in arms:
                if not isfinite(dp + pa + dp_lower + dp_upper + pa_lower + pa_upper):
                    # (a sum of finite figures is finite but for an overflow, read apart too)
                    dp = dp if isfinite(dp) else None
                    dp_lower = dp_lower if isfinite(dp_lower) else None
                    dp_upper = dp_upper if isfinite(dp_upper) else None
                    pa = pa if isfinite(pa) else None
                    pa_lower = pa_lower if isfinite(pa_lower) else None
                    pa_upper = pa_upper if isfinite(pa_upper) else None
                item = {
                    "arm": arm,
                    "rank": rank,
                    "ee_effect": effect,
                    "ee_lower": lower,
                    "ee_upper": upper,
                    "dp_effect": dp,
                    "dp_lower": dp_lower,
                    "dp_upper": dp_upper,
                    "pa_effect": pa,
                    "pa_lower": pa_lower,
                    "pa_upper": pa_upper,
                }
                if facts is not None:
                    item.update(facts[arm])
                ranked.append(item)
            out.append(
                {
                    "request_id": request_ids[k],
                    "model_version": version,
                    "catalog_version": catalog_version,
                    "catalog_sha256": catalog_sha256,
                    "recommended": recommended,
                    "interval_level": level,
                    "ranking": ranked,
                    "ranking_meaningful": ranking.meaningful,
                    "ranking_note": note,
                    "excluded": [{"arm": e.arm, "reason": e.reason} for e in exclusions[k]],
                    "explanation": {
                        "versus_usual_care": _contribution_items(explanation.versus_usual_care),
                        "runner_up": explanation.runner_up,
                        "versus_runner_up": _contribution_items(explanation.versus_runner_up),
                        "sentence": explanation.sentence,
                    },
                    "outside_training_data": where,
                    "safety": safety_block(triage),
                    "disclaimer": disclaimer,
                    "complements": [] if compact else complements,
                    "context": context,
                    "assignment": served,
                }
            )
        return out


def _contribution_items(contributions) -> list[dict]:
    # What Contribution._asdict() gives, built directly (_asdict zips the fields each time).
    return [{"feature": f, "value": v, "points": p} for f, v, p in contributions]
