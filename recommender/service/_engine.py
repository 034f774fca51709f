"""Answering recommendation requests, HTTP aside: triage, score once, rank, explain, audit.

The BentoML service, the in-process benchmark and the FastAPI anchor all call
:meth:`RecommendationEngine.recommend`, so they do exactly the same work. Triage comes first
(crisis rows never reach the model); the other rows are encoded once into the model's input,
every arm's effect and interval is predicted for all of them in one pass, eligibility is found
for all of them at once, and the contributions each explanation needs (best and runner-up arm
against usual care) come from the same encoded rows, one call per arm.
"""

from __future__ import annotations

import functools
import operator
import os
import uuid
from math import copysign, isfinite
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import ValidationError

from recommender.cohort import PROFILE_COLUMNS
from recommender.errors import InputError
from recommender.explain import complements_for, evidence_for, explain, top_contributions_many
from recommender.model import estimate_basis
from recommender.policy import (
    Exclusion,
    assign_many,
    eligible_mask,
    offered_arms,
    rank_many,
    triage,
)
from recommender.service._context import answer_context
from recommender.service._crisis import (
    AuditUnavailable,
    crisis_answer,
    record_answers,
    safety_block,
)
from recommender.service._profiles import extra_features, profile_schema
from recommender.service._answer_json import AnswerJSON

__all__ = ["RecommendationEngine", "AuditUnavailable", "load_champion_model", "safety_block"]


def load_champion_model():
    """``(RecommendationModel, version)`` of the registry's champion (the one MLflow call)."""
    from recommender.registry import load_champion

    return load_champion()


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
        # What the audit log keeps of a profile: every field but the identifier.
        self._logged_columns = tuple(
            c
            for c in (*PROFILE_COLUMNS, *(x.name for x in self.profiles.extras))
            if c != "person_id"
        )
        self._logged_profile = _getter(self._logged_columns)
        self.version = str(version)
        self.catalog = catalog
        self.config = config
        self.audit = audit
        self.control = catalog.control
        self.modelled = frozenset(model.treatment_arms)
        # The columns of every ranking table: the modelled arms, in catalog order.
        self._ranked_columns = [a for a in catalog.treatment_arms if a in self.modelled]
        self._names = {arm.id: arm.name for arm in catalog.arms}
        # The profile fields the catalog's eligibility rules read (to say why an arm is not
        # eligible), as a key: years with its type and sign (0.0 and -0.0 read apart).
        self._rule_fields = _rule_fields(catalog)
        getattr(model, "compiled", None)  # compile now (older artifacts), not on a request
        # Per-arm parts of every answer, built once: they depend on the catalog only.
        self._arm_facts = {
            arm.id: {
                "name": arm.name,
                "cost_per_person": float(arm.cost_per_person),
                "evidence": evidence_for(catalog, arm.id),
            }
            for arm in catalog.arms
        }
        # Every answer lists what the model does not rank (organisational measures).
        self.complements = complements_for(catalog)
        # What every answer says of organisational change and of this model (item 5 of issue 9).
        self.context = answer_context(config, model, names=self._names)
        # What an answer must say of figures not learnt from this program's staff (an
        # evidence-only model's, or a retrained model's arms carried over): it depends on the
        # role and the ranked arms alone, so it is worded once per pair.
        self._basis = functools.lru_cache(maxsize=4096)(self._evidence_basis)
        # The answers' JSON as the response model gives it, the facts above dumped once.
        self.answer_json = AnswerJSON(self._arm_facts, self.complements, self.context)

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
            {
                "field": f"{prefix}{'.' if prefix else ''}offered[{i}]",
                "value": arm,
                "accepted": f"an arm of catalog {self.catalog.version}: {', '.join(known)}",
                "message": "unknown arm",
            }
            for i, arm in enumerate(offered)
            if arm not in known
        ]
        if problems:
            raise InputError(_summary(problems), problems=problems)

    # -- answering ---------------------------------------------------------------------------
    def recommend(
        self,
        rows: Sequence[Mapping],
        *,
        caller_role: str,
        batch_id: str | None = None,
        compact: bool = False,
    ) -> list[dict]:
        """Answer validated rows (see :meth:`check_row`) and record them in the audit log.

        Returns one answer per row, in order. ``compact=True`` (batches) leaves out what is the
        same for every answer: each arm's name, cost and evidence, and the disclaimer, which
        a batch gives once (:meth:`arm_facts`). Raises :class:`AuditUnavailable` (and answers
        nothing) when the audit log cannot be written.
        """
        config = self.config
        answers: list[dict | None] = [None] * len(rows)
        # Triage first, outside the model call: crisis rows never reach the model and are
        # answered by the crisis path alone (recommender.service._crisis).
        crisis, triages, crisis_records = [], [], {}
        for i, row in enumerate(rows):
            if row.get("crisis_risk"):
                crisis.append(i)
                triages.append(None)
                answers[i], crisis_records[i] = self.crisis_answer(
                    row, caller_role=caller_role, batch_id=batch_id, compact=compact
                )
            else:
                triages.append(triage(row, config.safety))
        ranked_rows = [i for i, t in enumerate(triages) if t is not None]
        rankings, explanations, exclusions, assignments, hashes = {}, {}, {}, {}, {}
        if ranked_rows:
            ranked = [rows[i] for i in ranked_rows]
            # Encoded once: the model predicts and explains from the same rows.
            encoded = self.model.encode(ranked)
            figures, estimated = self._figures(
                self.model.predict(encoded, alpha=config.alpha), len(ranked_rows)
            )
            # Every arm of the catalog: one the model does not estimate is excluded for that
            # reason, not as ineligible.
            catalog_arms = list(self.catalog.treatment_arms)
            allowed = eligible_mask(self.catalog, ranked, catalog_arms).tolist()
            # What is ranked depends on the offered list, the eligibility found above and, to
            # say why an arm is not eligible, the profile fields the catalog's rules read:
            # people alike in these share it (worked out once, read only).
            shared: dict = {}
            reads = self._rule_fields
            columns = self._ranked_columns
            at = {arm: j for j, arm in enumerate(columns)}
            # Rows with an estimate for every modelled arm: their mask is their arms' alone.
            complete = (
                np.array([estimated[arm] for arm in self.modelled], dtype=bool).all(axis=0)
                if self.modelled
                else np.ones(len(ranked_rows), dtype=bool)
            ).tolist()
            ranks = []
            person_hash = self.audit.person_hash
            for k, i in enumerate(ranked_rows):
                row = rows[i]
                offered = row.get("offered")
                key = None if offered is None else tuple(offered)
                ok = allowed[k]
                # Eligible for every arm: no rule's reasons are read.
                group = (key,) if all(ok) else (key, tuple(ok), reads(row))
                found = shared.get(group)
                if found is None:
                    eligible = [arm for arm, yes in zip(catalog_arms, ok) if yes]
                    arms, excluded = offered_arms(
                        self.catalog,
                        row,
                        offered=offered,
                        modelled=self.modelled,
                        eligible=eligible,
                    )
                    mask = [False] * len(columns)
                    for arm in arms:
                        mask[at[arm]] = True
                    found = shared[group] = arms, excluded, mask
                arms, excluded, mask = found
                hashes[i] = person_hash(row["person_id"])
                if complete[k]:  # the shared mask and exclusions, read only
                    ranks.append(mask)
                    exclusions[i] = excluded
                    continue
                excluded = list(excluded)  # a row's own: an arm without estimate is added
                mask = [False] * len(columns)
                for arm in arms:
                    if estimated[arm][k]:
                        mask[at[arm]] = True
                    else:
                        excluded.append(Exclusion(arm, "the model returned no estimate"))
                ranks.append(mask)
                exclusions[i] = excluded
            ranks = np.array(ranks, dtype=bool).reshape(len(ranked_rows), len(columns))
            # Every row ranked at once (the same rankings as rank_arms, one person at a time).
            table = list(zip(*(figures[arm] for arm in columns))) if columns else [()] * len(ranks)
            for i, ranking in zip(
                ranked_rows,
                rank_many(
                    table,
                    columns,
                    ranks,
                    control=self.control,
                    max_overlap=config.max_overlap,
                    names=self._names,
                    coverage=config.coverage,
                ),
            ):
                rankings[i] = ranking
            # Every row's draw at once; severe profiles are served the best arm: nobody there
            # is experimented on.
            served = assign_many(
                [rankings[i] for i in ranked_rows],
                [hashes[i] for i in ranked_rows],
                config.exploration,
                control=self.control,
                explore=[triages[i].level == "routine" for i in ranked_rows],
            )
            assignments = dict(zip(ranked_rows, served))
            # What the explanations need of the model, before any record is handed over.
            contributions = self._contributions(encoded, ranked_rows, rankings)
        # Every decision is made: the records go to the audit writer now, and the explanations
        # and answers are worded while it inserts and commits them. No answer leaves before
        # the commit (record_answers waits for it).
        records = []
        logged = self._logged_profile
        request_ids = _request_ids(len(ranked_rows))
        ids = dict(zip(ranked_rows, request_ids))
        for i, row in enumerate(rows):
            if triages[i] is None:
                records.append(crisis_records[i])
                continue
            ranking, assignment = rankings[i], assignments.get(i)
            records.append(
                {
                    "request_id": ids[i],
                    "batch_id": batch_id,
                    "model_version": self.version,
                    "caller_role": caller_role,
                    "person_id": row["person_id"],
                    "person_hash": hashes.get(i),  # hashed once, for the draw and the log
                    "safety_level": triages[i].level,
                    # What the answer says it recommends: the arm served.
                    "recommended": ranking.recommended if assignment is None else assignment.arm,
                    "ranking_meaningful": ranking.meaningful,
                    # The answer's ranking, as the answer shows it.
                    # (effect, lower, upper) as a tuple: the stored JSON is a list either way
                    "effects": {a[0]: a[2:5] for a in ranking.arms},
                    # What retraining from the log needs: every candidate's probability and the
                    # profile without its identifier.
                    "assignment": _logged_assignment(assignment),
                    "profile": dict(zip(self._logged_columns, logged(row))),
                }
            )
        started = None
        if self.audit is not None:
            try:
                started = self.audit.start_append(records)
            except Exception as error:  # noqa: BLE001 - record_answers decides what is given
                started = error
        # A few answers are worded in less time than a commit takes: waiting first spares the
        # two threads' turns on a busy machine.
        recorded = len(ranked_rows) < _OVERLAP_ROWS
        if recorded:
            record_answers(self.audit, records, answers, crisis, started=started)
        if ranked_rows:
            explanations = self._explain(contributions, ranked_rows, rows, rankings)
            for i in ranked_rows:
                answers[i] = self._answer(
                    ids[i],
                    rows[i],
                    triages[i],
                    rankings[i],
                    explanations[i],
                    exclusions.get(i, []),
                    compact,
                    assignments.get(i),
                )
            # What only the wording needed is freed now, while the writer commits, rather
            # than after the commit when this returns (a few ms for a 1,000-row batch).
            del encoded, figures, estimated, allowed, table, ranks, contributions, explanations
        rankings.clear()
        assignments.clear()
        exclusions.clear()
        if not recorded:
            record_answers(self.audit, records, answers, crisis, started=started)
        return answers

    def crisis_answer(
        self,
        raw: Mapping,
        *,
        caller_role: str,
        batch_id: str | None = None,
        compact: bool = False,
        prefix: str = "",
    ) -> tuple[dict, dict]:
        """``(answer, audit record)`` for a body flagged for crisis risk (see
        :func:`recommender.service._crisis.crisis_answer`); nothing of the model is used but
        its version, and nothing of the body but the flag and the role."""
        config = self.config
        answer, record = crisis_answer(
            raw,
            config.safety,
            model_version=self.version,
            catalog_version=self.catalog.version,
            coverage=config.coverage,
            disclaimer=None if compact else config.disclaimer,
            context=None if compact else self.context,
            caller_role=caller_role,
            batch_id=batch_id,
            prefix=prefix,
        )
        # This model's extra features are known fields, not ignored ones.
        extras = {f"{prefix}{'.' if prefix else ''}{x.name}" for x in self.profiles.extras}
        answer["ignored"] = [p for p in answer["ignored"] if p["field"] not in extras]
        answer["complements"] = [] if compact else self.complements
        return answer, record

    def _figures(self, prediction, n: int) -> tuple[dict, dict]:
        """Per arm, each row's five figures as a tuple (NaN when the model lacks an outcome),
        and whether each row's EE effect and interval are finite (an estimate to rank).

        Indexing a list is what the per-row loop does a thousand times. Rounded to 0.001
        points here, vectorized, rather than figure by figure in every answer; finer
        differences mean nothing on a 0-54 scale.
        """
        missing = [float("nan")] * n
        columns = {arm: j for j, arm in enumerate(prediction.arms)}
        kinds = [
            prediction.effect,
            prediction.lower,
            prediction.upper,
            prediction.secondary.get("dp"),
            prediction.secondary.get("pa"),
        ]
        kinds = [
            None if table is None else np.asarray(table, dtype=float).round(3) for table in kinds
        ]
        # effect + lower + upper, as the figures' own sum (inf - inf is not finite either).
        finite = np.isfinite(kinds[0] + kinds[1] + kinds[2]).T.tolist()
        kinds = [None if table is None else table.T.tolist() for table in kinds]
        figures = {
            arm: list(
                zip(
                    *(
                        missing if table is None or arm not in columns else table[columns[arm]]
                        for table in kinds
                    )
                )
            )
            for arm in self.modelled
        }
        estimated = {
            arm: finite[columns[arm]] if arm in columns else [False] * n for arm in self.modelled
        }
        return figures, estimated

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
            raise AuditUnavailable(
                f"the audit log could not be written ({type(error).__name__})"
            ) from error

    def _contributions(self, encoded, ranked_rows, rankings) -> tuple:
        """What the explanations of every ranked row need of the model, in one contributions
        call: ``(stacked, best, second, none)``, each row's best and runner-up arm's
        contributions as rows ``best[k]`` and ``second[k]`` of ``stacked`` (``none``: usual
        care's, all zero).

        The learners explain ``effect[a] - effect[b]`` as the difference of each arm's
        contributions against usual care (usual care's own being zero), so the contributions of
        every arm a row needs (its best and its runner-up) against usual care give both
        comparisons: recommended vs usual care, and recommended vs runner-up.
        """
        control, model = self.control, self.model
        needs = defaultdict(list)  # arm -> positions k (in frame) of rows that need it
        # Per row, where its best and its runner-up are among their arm's rows: (arm, r), or
        # None for usual care (or no runner-up).
        slots = []
        for k, i in enumerate(ranked_rows):
            pair = [None, None]
            for j, arm in enumerate(rankings[i].arms[:2]):
                if arm.arm != control:
                    rows_of_arm = needs[arm.arm]
                    pair[j] = arm.arm, len(rows_of_arm)
                    rows_of_arm.append(k)
            slots.append(pair)
        names = [f["name"] for f in model.features]
        # Every part the model gives, stacked: an arm's rows start at ``start[arm]``.
        parts, start = [], {}
        for arm, part in model.explain(encoded, needs).items():
            start[arm] = sum(len(p) for p in parts)
            parts.append(np.asarray(part, dtype=float))
        # A last row of zeros stands for usual care's own contributions (index ``none``).
        stacked = np.concatenate([*parts, np.zeros((1, len(names) + 1))])
        none = len(stacked) - 1
        best, second = [], []
        for pair in slots:
            for out, slot in zip((best, second), pair):
                out.append(
                    none if slot is None or slot[0] not in start else start[slot[0]] + slot[1]
                )
        return stacked, best, second, none

    def _explain(self, contributions, ranked_rows, rows, rankings) -> dict:
        """Explanations for every ranked row from its contributions (:meth:`_contributions`)."""
        control = self.control
        stacked, best, second, none = contributions
        names = [f["name"] for f in self.model.features]
        profiles = [rows[i] for i in ranked_rows]
        top = self.config.top
        # Recommended against usual care: the recommended arm's own contributions.
        care = [k for k, b in enumerate(best) if b != none]
        care_rows = dict(
            zip(
                care,
                top_contributions_many(
                    stacked[[best[k] for k in care]],
                    names,
                    [profiles[k] for k in care],
                    top=top,
                ),
            )
        )
        # Recommended against the runner-up: the difference of the two (usual care's own being
        # zero: a - 0 is a, and 0 - b is -b but for the sign of a zero, which no explanation
        # shows).
        pairs = [k for k, (b, c) in enumerate(zip(best, second)) if b != none or c != none]
        next_rows = dict(
            zip(
                pairs,
                top_contributions_many(
                    stacked[[best[k] for k in pairs]] - stacked[[second[k] for k in pairs]],
                    names,
                    [profiles[k] for k in pairs],
                    top=top,
                ),
            )
        )
        out = {}
        for k, i in enumerate(ranked_rows):
            ranking = rankings[i]
            first = ranking.arms[0]
            second = ranking.arms[1] if len(ranking.arms) > 1 else None
            out[i] = explain(
                recommended=first.arm,
                runner_up=None if second is None else second.arm,
                effect=first.effect,
                lower=first.lower,
                upper=first.upper,
                runner_up_effect=None if second is None else second.effect,
                versus_usual_care=care_rows.get(k),
                versus_runner_up=next_rows.get(k),
                profile=rows[i],
                control=control,
                names=self._names,
                coverage=self.config.coverage,
                top=top,
            )
        return out

    def arm_facts(self, answers: Sequence[Mapping]) -> dict[str, dict]:
        """Name, cost and evidence of every arm ranked in ``answers``, once per arm."""
        arms = {item["arm"] for answer in answers for item in answer["ranking"]}
        return {arm: self._arm_facts[arm] for arm in self.catalog.arm_ids if arm in arms}

    def _evidence_basis(self, role: str, ranked: tuple) -> str | None:
        """See :func:`recommender.model.estimate_basis` (``ranked``: best first)."""
        metadata = getattr(self.model, "metadata", None) or {}
        return estimate_basis(metadata, list(ranked), role, self._names)

    def _answer(
        self, request_id, row, safety, ranking, explanation, excluded, compact, assignment=None
    ) -> dict:
        config = self.config
        answer = {
            "request_id": request_id,
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
        # EE figures are finite (checked before ranking) and already rounded; DP and PA are
        # NaN when the model has no such outcome, and JSON has no NaN.
        ranked = [
            {
                "arm": arm,
                "rank": rank,
                "ee_effect": effect,
                "ee_lower": lower,
                "ee_upper": upper,
                "dp_effect": dp if isfinite(dp) else None,
                "pa_effect": pa if isfinite(pa) else None,
            }
            # a RankedArm's fields, unpacked rather than read one by one
            for arm, rank, effect, lower, upper, dp, pa in ranking.arms
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


def _request_ids(n: int) -> list[str]:
    """``n`` of ``uuid.uuid4().hex``: random version-4 UUIDs as 32 hex digits, for many
    answers from one read of the system's random source (uuid4 reads it for each)."""
    if n < _FEW_IDS:
        return [uuid.uuid4().hex for _ in range(n)]
    octets = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    # What uuid.UUID(bytes=..., version=4) sets: the version in the high four bits of the
    # seventh octet, the RFC 4122 variant in the high two bits of the ninth.
    octets[:, 6] = (octets[:, 6] & 0x0F) | 0x40
    octets[:, 8] = (octets[:, 8] & 0x3F) | 0x80
    digits = octets.tobytes().hex()
    return [digits[k : k + 32] for k in range(0, 32 * n, 32)]


# From this many ranked rows on, the answers are worded while their records are committed.
_OVERLAP_ROWS = 64

# Fewer ids than this are made one by one (numpy's per-call cost exceeds uuid4's).
_FEW_IDS = 8


def _rule_fields(catalog):
    """``row -> key`` of the fields the catalog's eligibility rules read (role always)."""
    rules = [catalog.arm(arm).eligibility for arm in catalog.treatment_arms]
    specialty = any(rule.specialties is not None for rule in rules)
    years = any(
        rule.min_years_in_practice is not None or rule.max_years_in_practice is not None
        for rule in rules
    )

    def read(row):
        key = [row.get("role")]
        if specialty:
            key.append(row.get("specialty"))
        if years:
            value = row.get("years_in_practice")
            sign = copysign(1.0, value) if type(value) is float else None
            key.append((type(value), value, sign))
        return tuple(key)

    if not specialty and not years:
        return lambda row: row.get("role")
    return read


def _getter(keys: Sequence[str]):
    """``row -> tuple of row[key]`` for ``keys`` (itemgetter's result is a bare value for one key)."""
    if len(keys) == 1:
        return lambda row: (row[keys[0]],)
    return operator.itemgetter(*keys) if keys else lambda row: ()


def _contribution_items(contributions) -> list[dict]:
    # What Contribution._asdict() gives, built directly (_asdict zips the fields each time).
    return [{"feature": f, "value": v, "points": p} for f, v, p in contributions]


def _logged_assignment(assignment) -> dict | None:
    if assignment is None:
        return None
    return {
        "arm": assignment.arm,
        "probability": assignment.probability,
        "policy": assignment.policy,
        "cycle": assignment.cycle,
        "probabilities": assignment.probabilities,
    }


def _summary(problems: list[dict]) -> str:
    first = problems[0]
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return (
        f"{first['field']}: {first['value']!r} is not accepted; accepted: {first['accepted']}{more}"
    )
