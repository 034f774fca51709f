"""Answering recommendation requests, HTTP aside: triage, score once, rank, explain, audit.

The BentoML service, the in-process benchmark and the FastAPI anchor all call
:meth:`RecommendationEngine.recommend`, so they do exactly the same work. Triage comes first
(crisis rows never reach the model); the other rows are encoded once into the model's input,
every arm's effect and interval is predicted for all of them in one pass, eligibility is found
for all of them at once, and the contributions each explanation needs (best and runner-up arm
against usual care) come from the same encoded rows, one call per arm.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import ValidationError

from recommender.cohort import PROFILE_COLUMNS
from recommender.errors import InputError
from recommender.explain import evidence_for, explain
from recommender.policy import Exclusion, eligible_mask, offered_arms, rank_arms, triage
from recommender.service._profiles import extra_features, profile_schema

__all__ = ["RecommendationEngine", "AuditUnavailable", "load_champion_model", "safety_block"]


class AuditUnavailable(RuntimeError):
    """The audit log could not be written, so the answers must not be given."""


def load_champion_model():
    """``(RecommendationModel, version)`` of the registry's champion (the one MLflow call)."""
    from recommender.registry import load_champion

    return load_champion()


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class RecommendationEngine:
    """One served model with everything needed to answer for it.

    Parameters
    ----------
    model : RecommendationModel
        Provides ``treatment_arms``, ``features`` (the feature schema it was fitted on),
        ``encode(rows)`` (validated rows to the model's input, once per request),
        ``predict(encoded, alpha=...)`` (a :class:`~recommender.model.Prediction`) and
        ``explain(encoded, needs)`` (contributions versus usual care).
    version : str
        Registered version of ``model``.
    catalog : Catalog
        The intervention catalog (names, costs, evidence, eligibility).
    config : ServeConfig
        Alpha, ranking and explanation settings, safety rules, disclaimer.
    audit : AuditLog
        Where every answer is recorded before it is returned.

    Attributes
    ----------
    profiles : ProfileSchema
        What a profile must hold for this model: the data contract's fields and the model's
        extra features, if it was trained with any.

    Raises
    ------
    InputError
        When the model's extra features cannot be requested (named like a request field).
    """

    def __init__(self, model, version, *, catalog, config, audit):
        self.model = model
        self.profiles = profile_schema(extra_features(model.features))
        self._columns = (*PROFILE_COLUMNS, *(x.name for x in self.profiles.extras))
        self.version = str(version)
        self.catalog = catalog
        self.config = config
        self.audit = audit
        self.control = catalog.control
        self.modelled = frozenset(model.treatment_arms)
        self._names = {arm.id: arm.name for arm in catalog.arms}
        # The arms in the catalog's order that the model can rank; eligibility is found for
        # them once per request, for every row at once.
        self._ranked_arms = [arm for arm in catalog.treatment_arms if arm in self.modelled]
        getattr(model, "compiled", None)  # compile now (older artifacts), not on a request
        # Per-arm parts of every answer, built once: they depend on the catalog only.
        self._arm_facts = {
            arm.id: {"name": arm.name, "cost_per_person": float(arm.cost_per_person),
                     "evidence": evidence_for(catalog, arm.id)}
            for arm in catalog.arms
        }

    # -- checking ---------------------------------------------------------------------------
    def check_row(self, raw, *, prefix: str = "") -> dict:
        """Validate one request body (a mapping) against this model's profile and the catalog.

        Raises
        ------
        InputError
            With ``problems`` naming field, value and what is accepted.
        """
        try:
            row = self.profiles.validate(raw)
        except ValidationError as error:
            problems = self.profiles.problems(error, prefix=prefix)
            raise InputError(_summary(problems), problems=problems) from None
        self.check_offered(row, prefix=prefix)
        return row

    def check_rows(self, raws: Sequence, *, field: str = "profiles") -> tuple[list, list, list]:
        """Validate many request bodies: ``(valid rows, their positions, errors)``.

        One pydantic call checks the whole list when it is valid (the usual case); otherwise
        every entry is checked on its own so that each error names its entry.
        """
        try:
            rows = self.profiles.validate_many(raws)
            for i, row in enumerate(rows):
                self.check_offered(row, prefix=f"{field}[{i}]")
            return rows, list(range(len(rows))), []
        except (ValidationError, InputError):
            pass
        valid, index, errors = [], [], []
        for i, raw in enumerate(raws):
            try:
                valid.append(self.check_row(raw, prefix=f"{field}[{i}]"))
                index.append(i)
            except InputError as error:
                errors.append({"index": i, "error": str(error), "problems": error.problems})
        return valid, index, errors

    def check_offered(self, row: Mapping, *, prefix: str = "") -> None:
        """Refuse arm ids the catalog does not know (the rest of the row is already valid)."""
        offered = row.get("offered")
        if not offered:
            return
        known = self.catalog.arm_ids
        problems = [
            {"field": f"{prefix}{'.' if prefix else ''}offered[{i}]", "value": arm,
             "accepted": f"an arm of catalog {self.catalog.version}: {', '.join(known)}",
             "message": "unknown arm"}
            for i, arm in enumerate(offered) if arm not in known
        ]
        if problems:
            raise InputError(_summary(problems), problems=problems)

    # -- answering ---------------------------------------------------------------------------
    def recommend(self, rows: Sequence[Mapping], *, caller_role: str,
                  batch_id: str | None = None, compact: bool = False) -> list[dict]:
        """Answer validated rows (see :meth:`check_row`) and record them in the audit log.

        Returns one answer per row, in order. ``compact=True`` (batches) leaves out what is the
        same for every answer: each arm's name, cost and evidence, and the disclaimer, which
        a batch gives once (:meth:`arm_facts`). Raises :class:`AuditUnavailable` (and answers
        nothing) when the audit log cannot be written.
        """
        config = self.config
        answers: list[dict | None] = [None] * len(rows)
        triages = [triage(row, config.safety, crisis_risk=bool(row.get("crisis_risk")))
                   for row in rows]
        # Crisis rows never reach the model.
        ranked_rows = [i for i, t in enumerate(triages) if t.rank_interventions]
        rankings, explanations, exclusions = {}, {}, {}
        if ranked_rows:
            ranked = [rows[i] for i in ranked_rows]
            # Encoded once: the model predicts and explains from the same rows.
            encoded = self.model.encode(ranked)
            figures = self._figures(self.model.predict(encoded, alpha=config.alpha),
                                    len(ranked_rows))
            allowed = eligible_mask(self.catalog, ranked, self._ranked_arms).tolist()
            for k, i in enumerate(ranked_rows):
                eligible = [arm for arm, ok in zip(self._ranked_arms, allowed[k]) if ok]
                arms, excluded = offered_arms(self.catalog, rows[i], offered=rows[i].get("offered"),
                                              modelled=self.modelled, eligible=eligible)
                effects = {}
                for arm in arms:
                    values = tuple(column[k] for column in figures[arm])
                    if math.isfinite(values[0] + values[1] + values[2]):
                        effects[arm] = values
                    else:
                        excluded.append(Exclusion(arm, "the model returned no estimate"))
                rankings[i] = rank_arms(effects, control=self.control,
                                        max_overlap=config.max_overlap, names=self._names,
                                        coverage=config.coverage)
                exclusions[i] = excluded
            explanations = self._explain(encoded, ranked_rows, rows, rankings)
        records = []
        for i, row in enumerate(rows):
            answer = self._answer(row, triages[i], rankings.get(i), explanations.get(i),
                                  exclusions.get(i, []), compact)
            answers[i] = answer
            records.append({
                "request_id": answer["request_id"], "batch_id": batch_id,
                "model_version": self.version, "caller_role": caller_role,
                "person_id": row["person_id"], "safety_level": triages[i].level,
                "recommended": answer["recommended"],
                "ranking_meaningful": answer["ranking_meaningful"],
                "effects": {a["arm"]: [a["ee_effect"], a["ee_lower"], a["ee_upper"]]
                            for a in answer["ranking"]},
            })
        self.record(records)
        return answers

    def _figures(self, prediction, n: int) -> dict:
        """Per arm, the five figures as Python lists (NaN when the model lacks an outcome).

        Indexing lists is what the per-row loop does a thousand times. Rounded to 0.001
        points here, vectorized, rather than figure by figure in every answer; finer
        differences mean nothing on a 0-54 scale.
        """
        missing = [float("nan")] * n
        columns = {arm: j for j, arm in enumerate(prediction.arms)}
        kinds = [prediction.effect, prediction.lower, prediction.upper,
                 prediction.secondary.get("dp"), prediction.secondary.get("pa")]
        kinds = [None if table is None else np.asarray(table, dtype=float).round(3).T.tolist()
                 for table in kinds]
        return {arm: [missing if table is None or arm not in columns else table[columns[arm]]
                      for table in kinds]
                for arm in self.modelled}

    def record(self, records: Sequence[Mapping]) -> None:
        """Append answers to the audit log (see :meth:`AuditLog.append`) before they are given.

        Raises
        ------
        AuditUnavailable
            When the store cannot be written: then nothing may be answered.
        """
        try:
            self.audit.append(records)
        except Exception as error:  # any store failure: answer nothing rather than unlogged
            raise AuditUnavailable(f"the audit log could not be written ({type(error).__name__})"
                                   ) from error

    def _explain(self, encoded, ranked_rows, rows, rankings) -> dict:
        """Explanations for every ranked row, from one contributions call to the model.

        The learners explain ``effect[a] - effect[b]`` as the difference of each arm's
        contributions against usual care (usual care's own being zero), so the contributions of
        every arm a row needs (its best and its runner-up) against usual care give both
        comparisons: recommended vs usual care, and recommended vs runner-up.
        """
        control, model = self.control, self.model
        needs = defaultdict(list)  # arm -> positions k (in frame) of rows that need it
        for k, i in enumerate(ranked_rows):
            for arm in rankings[i].arms[:2]:
                if arm.arm != control:
                    needs[arm.arm].append(k)
        against_care = {}  # (k, arm) -> contributions vs usual care (features..., base)
        names = [*(f["name"] for f in model.features), "base"]
        for arm, part in model.explain(encoded, needs).items():
            for k, values in zip(needs[arm], np.asarray(part, dtype=float)):
                against_care[(k, arm)] = values
        top = self.config.top

        def leading(values):
            # Only the largest few reach the explanation; picking them here, vectorized,
            # spares sorting every feature of every row in Python.
            order = np.argsort(-np.abs(values[:-1]), kind="stable")[:top]
            return {names[j]: values[j] for j in order}

        care_rows, next_rows = {}, {}
        for k, i in enumerate(ranked_rows):
            best, second = rankings[i].recommended, rankings[i].runner_up
            a = against_care.get((k, best))
            if a is not None:
                care_rows[k] = leading(a)
            if second is not None:
                b = against_care.get((k, second))
                lead = a if b is None else (-b if a is None else a - b)
                next_rows[k] = leading(lead)
        out = {}
        for k, i in enumerate(ranked_rows):
            ranking = rankings[i]
            first = ranking.arms[0]
            second = ranking.arms[1] if len(ranking.arms) > 1 else None
            out[i] = explain(
                recommended=first.arm, runner_up=None if second is None else second.arm,
                effect=first.effect, lower=first.lower, upper=first.upper,
                runner_up_effect=None if second is None else second.effect,
                versus_usual_care=care_rows.get(k), versus_runner_up=next_rows.get(k),
                profile=rows[i], control=control, names=self._names,
                coverage=self.config.coverage, top=self.config.top,
            )
        return out

    def arm_facts(self, answers: Sequence[Mapping]) -> dict[str, dict]:
        """Name, cost and evidence of every arm ranked in ``answers``, once per arm."""
        arms = {item["arm"] for answer in answers for item in answer["ranking"]}
        return {arm: self._arm_facts[arm] for arm in self.catalog.arm_ids if arm in arms}

    def _answer(self, row, safety, ranking, explanation, excluded, compact) -> dict:
        config = self.config
        answer = {
            "request_id": uuid.uuid4().hex,
            "model_version": self.version,
            "catalog_version": self.catalog.version,
            "recommended": None,
            "interval_level": round(config.coverage, 6),
            "ranking": [],
            "ranking_meaningful": None,
            "ranking_note": None,
            "excluded": [{"arm": e.arm, "reason": e.reason} for e in excluded],
            "explanation": None,
            "safety": safety_block(safety),
            "disclaimer": None if compact else config.disclaimer,
        }
        if ranking is None:
            return answer
        answer["recommended"] = ranking.recommended
        answer["ranking_meaningful"] = ranking.meaningful
        answer["ranking_note"] = ranking.note
        # EE figures are finite (checked before ranking) and already rounded; DP and PA are
        # NaN when the model has no such outcome, and JSON has no NaN.
        ranked = [{"arm": a.arm, "rank": a.rank, "ee_effect": a.effect, "ee_lower": a.lower,
                   "ee_upper": a.upper, "dp_effect": _finite(a.effect_dp),
                   "pa_effect": _finite(a.effect_pa)}
                  for a in ranking.arms]
        if not compact:
            for item in ranked:
                item.update(self._arm_facts[item["arm"]])
        answer["ranking"] = ranked
        answer["explanation"] = {
            "versus_usual_care": [_contribution(c) for c in explanation.versus_usual_care],
            "runner_up": explanation.runner_up,
            "versus_runner_up": [_contribution(c) for c in explanation.versus_runner_up],
            "sentence": explanation.sentence,
        }
        return answer


def safety_block(safety) -> dict:
    """A triage (:func:`recommender.policy.triage`) as the answers' ``safety`` block."""
    return {"level": safety.level, "notice": safety.notice, "rule": safety.matched_rule,
            "resources": [{"name": r.name, "contact": r.contact, "url": r.url}
                          for r in safety.resources]}


def _contribution(c) -> dict:
    # top_contributions has rounded the points and dropped non-finite ones.
    return {"feature": c.feature, "value": c.value, "points": c.points}


def _summary(problems: list[dict]) -> str:
    first = problems[0]
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return (f"{first['field']}: {first['value']!r} is not accepted; accepted: "
            f"{first['accepted']}{more}")
