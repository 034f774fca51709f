"""Answering recommendation requests, HTTP aside: triage, score once, rank, explain, audit.

The BentoML service, the in-process benchmark and the FastAPI anchor all call
:meth:`RecommendationEngine.recommend`, so they do exactly the same work. Triage comes first
(crisis rows never reach the model); the other rows are encoded once into the model's input,
every arm's effect and interval is predicted for all of them in one pass, eligibility is found
for all of them at once, and the contributions each explanation needs (best and runner-up arm
against usual care) come from the same encoded rows, one call per arm.

Checking request bodies (:mod:`~recommender.service._checking`) and wording the answers
(:mod:`~recommender.service._wording`) are parts of the engine kept in modules of their own;
each arm's figures and the explanations' contributions come from
:mod:`~recommender.service._scoring`. What an answer's audit record holds beside the
ranking (request ids, the logged profile and assignment) is in
:mod:`~recommender.service._answer_records`; loading the model from the registry, in
:mod:`~recommender.service._model_loading`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np

from recommender.cohort import PROFILE_COLUMNS
from recommender.errors import InputError
from recommender.explain import complements_for, evidence_for
from recommender.model import (
    arms_not_learnt,
    catalog_difference,
    model_min_cell,
    support_check,
    unlearnt_arms,
)
from recommender.policy import (
    Exclusion,
    assign_many,
    eligible_mask,
    offered_arms,
    rank_many,
    triage,
)
from recommender.service._answer_json import AnswerJSON
from recommender.service._answer_records import (
    _getter,
    _logged_assignment,
    _request_ids,
    _secondary_figures,
)
from recommender.service._checking import RequestChecking
from recommender.service._collector import collector_held
from recommender.service._context import answer_context
from recommender.service._crisis import (
    AuditUnavailable,
    crisis_answer,
    record_answers,
    safety_block,
)
from recommender.service._profiles import extra_features, profile_schema
from recommender.service._scoring import arm_figures, explanation_contributions, rule_fields
from recommender.service._wording import AnswerWording

__all__ = [
    "RecommendationEngine",
    "AuditUnavailable",
    "safety_block",
]


class RecommendationEngine(RequestChecking, AnswerWording):
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
    catalog_note : str or None
        Said when the model was trained under another catalog than ``catalog`` (which
        figures come from which) or never learnt an arm ``catalog`` offers (not ranked), for
        the log and the card; ``None`` when neither.

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
        # Served all the same, with warnings: another catalog's model, and the arms of this
        # catalog it never learnt (never ranked: each answer names them among its excluded arms).
        notes = [
            catalog_difference(model, catalog.version, version=self.version),
            arms_not_learnt(model, catalog, version=self.version),
        ]
        self.catalog_note = "; and ".join(n for n in notes if n is not None) or None
        self.config = config
        self.audit = audit
        self.control = catalog.control
        self.modelled = frozenset(model.treatment_arms)
        trained = getattr(model, "catalog", None)  # None: a model that records no catalog
        unlearnt = (
            []
            if trained is None
            else unlearnt_arms(catalog, model.treatment_arms, trained.treatment_arms)
        )
        # Why an arm of this catalog has no effect, said in every answer that leaves it out.
        self._unmodelled = {
            arm: f"the served model (version {self.version}) never learnt this arm: its "
            f"intervention catalog {trained.version} did not have it, so it is not ranked until "
            f"a model trained under catalog {catalog.version} is promoted"
            for arm in unlearnt
        }
        # The columns of every ranking table: the modelled arms, in catalog order.
        self._ranked_columns = [a for a in catalog.treatment_arms if a in self.modelled]
        self._names = {arm.id: arm.name for arm in catalog.arms}
        # The profile fields the catalog's eligibility rules read (to say why an arm is not
        # eligible), as a key: years with its type and sign (0.0 and -0.0 read apart).
        self._rule_fields = rule_fields(catalog)
        getattr(model, "compiled", None)  # compile now (older artifacts), not on a request
        # Per-arm parts of every answer, built once: they depend on the catalog only.
        self._arm_facts = {
            arm.id: {
                "name": arm.name,
                "cost_per_person": float(arm.cost_per_person),
                "cost_is_assumption": bool(arm.cost_is_assumption),
                "cost_basis": " ".join(str(arm.cost_basis).split()),
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
        # Where a profile lies outside the data the model learnt from (None: it records none).
        self.support = support_check(model)
        # The smallest group a plan's fairness reports on: the model's card's (min_cell).
        self.min_cell = model_min_cell(model)
        # The answers' JSON as the response model gives it, the facts above dumped once.
        self.answer_json = AnswerJSON(self._arm_facts, self.complements, self.context)

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
        if len(rows) < _HELD_ROWS:
            return self._recommend(rows, caller_role, batch_id, compact)
        # A batch's objects all live until it is answered: the collector walks them once,
        # after, rather than a hundred times while they are made (recommender.service._collector).
        with collector_held():
            return self._recommend(rows, caller_role, batch_id, compact)

    def _recommend(self, rows, caller_role, batch_id, compact) -> list[dict]:
        config = self.config
        # Read once: the service hands the engine a store opened after it started.
        audit = self.audit
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
        if ranked_rows and audit is None:
            # No store is open yet: nothing is scored that could not be recorded, the
            # crisis answers go to the service log and the rest is refused (AuditUnavailable).
            records = [crisis_records.get(i) for i in range(len(rows))]
            record_answers(None, records, answers, crisis)
        rankings, explanations, exclusions, assignments, hashes = {}, {}, {}, {}, {}
        if ranked_rows:
            ranked = [rows[i] for i in ranked_rows]
            # Encoded once: the model predicts and explains from the same rows.
            encoded = self.model.encode(ranked)
            outside = None if self.support is None else self.support.outside(encoded)
            figures, estimated = arm_figures(
                self.model.predict(encoded, alpha=config.alpha), len(ranked_rows), self.modelled
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
            person_hash = audit.person_hash
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
                        unmodelled=self._unmodelled,
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
            contributions = explanation_contributions(
                self.model, self.control, encoded, ranked_rows, rankings
            )
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
            served_arm = ranking.recommended if assignment is None else assignment.arm
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
                    "recommended": served_arm,
                    "ranking_meaningful": ranking.meaningful,
                    # The answer's ranking, as the answer shows it.
                    # (effect, lower, upper) as a tuple: the stored JSON is a list either way
                    "effects": {a[0]: a[2:5] for a in ranking.arms},
                    # and the served arm's DP and PA figures, as the answer shows them
                    "dp_pa": _secondary_figures(ranking, served_arm),
                    # What retraining from the log needs: every candidate's probability and the
                    # profile without its identifier.
                    "assignment": _logged_assignment(assignment),
                    "profile": dict(zip(self._logged_columns, logged(row))),
                }
            )
        started = None
        if audit is not None:
            try:
                started = audit.start_append(records)
            except Exception as error:  # noqa: BLE001 - record_answers decides what is given
                started = error
        # A few answers are worded in less time than a commit takes: waiting first spares the
        # two threads' turns on a busy machine.
        recorded = len(ranked_rows) < _OVERLAP_ROWS
        if recorded:
            record_answers(audit, records, answers, crisis, started=started)
        if ranked_rows:
            explanations = self._explain(contributions, ranked_rows, rows, rankings)
            worded = self._answers(
                [(rows[i], triages[i], rankings[i], explanations[i]) for i in ranked_rows],
                request_ids,
                [exclusions.get(i, ()) for i in ranked_rows],
                [assignments.get(i) for i in ranked_rows],
                outside,
                compact=compact,
            )
            for i, answer in zip(ranked_rows, worded):
                answers[i] = answer
            del worded
            # What only the wording needed is freed now, while the writer commits, rather
            # than after the commit when this returns (a few ms for a 1,000-row batch).
            del encoded, figures, estimated, allowed, table, ranks, contributions, explanations
        rankings.clear()
        assignments.clear()
        exclusions.clear()
        if not recorded:
            record_answers(audit, records, answers, crisis, started=started)
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
            catalog_sha256=self.catalog.sha256,
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
        # An offered arm the catalog does not have is refused 422 without the flag; with it,
        # it is named here, as any field sent but not accepted is.
        offered = raw.get("offered")
        if isinstance(offered, list) and all(isinstance(arm, str) for arm in offered):
            try:
                self.check_offered({"offered": offered}, prefix=prefix)
            except InputError as error:
                answer["ignored"] = [*answer["ignored"], *error.problems]
        answer["complements"] = [] if compact else self.complements
        return answer, record

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


# From this many ranked rows on, the answers are worded while their records are committed.
_OVERLAP_ROWS = 64
# From this many rows on, the cyclic collector is held off while the answers are built.
_HELD_ROWS = 64
