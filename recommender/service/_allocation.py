"""``/allocate``: plan a cohort under a budget and capacities, with the safety of ``/recommend``.

The plan is :func:`recommender.policy.plan_allocation`'s (the planning behind ``recommender
allocate``): the largest expected benefit that fits the budget, each arm's places and group
sizes, and each person's eligibility. Around it, the service does what it does for every answer:
profiles are checked at the edge (each problem names its entry), crisis-flagged people never
reach the model and get crisis resources only, severe profiles get a confidential referral
besides what they are allocated, and every person's line is in the audit log (hashed id) before
the plan is returned.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat

from recommender.errors import InputError, PlanTimeout
from recommender.model import extrapolation_note
from recommender.policy import (
    MAX_CAPACITY,
    check_plan_options,
    fairness_records,
    plan_allocation,
    triage,
)
from recommender.service._crisis import crisis_flagged, record_answers, safety_block
from recommender.service._audit_tables import PLAN_ID_PREFIX
from recommender.service._problems import Problem
from recommender.service._requests import _NUMBER_ONLY, MAX_BATCH_ROWS, ProfileEntry
from recommender.service._requests import accepted_text
from recommender.service._responses import (
    OUTSIDE_DESCRIPTION,
    ComplementItem,
    ContextBlock,
    OutsideItem,
    SafetyBlock,
)

__all__ = [
    "AllocationRequest",
    "AllocationPlan",
    "ALLOCATION_ACCEPTED",
    "allocate_cohort",
]

# What each /allocate field accepts, in words (``profiles`` as in /recommend_batch).
ALLOCATION_ACCEPTED = {
    name: accepted_text(name) for name in ("budget", "capacity", "confident_only", "floors")
}


class AllocationRequest(BaseModel):
    """A cohort to plan, and the money and places available for it."""

    model_config = ConfigDict(extra="forbid")

    profiles: list[ProfileEntry] = Field(
        min_length=1,
        max_length=MAX_BATCH_ROWS,
        description="Up to 10,000 people, each with the fields of a /recommend request body "
        "(person_id unique in the cohort). No plan is made while an entry is invalid; "
        "every invalid entry is named in the answer.",
    )
    budget: Annotated[StrictFloat, Field(ge=0, allow_inf_nan=False)] | None = Field(
        None,
        description="Money available for the cohort, US$, at the catalog's cost per "
        f"person. Accepted: {ALLOCATION_ACCEPTED['budget']}.",
        examples=[20000.0],
    )
    # A whole number as JSON sends it, 20 or 20.0 (JSON does not tell them apart; a program's
    # arithmetic gives 20.0), as the profiles' whole numbers; never "20", true or 20.5.
    capacity: dict[str, Annotated[int, _NUMBER_ONLY, Field(ge=0, le=MAX_CAPACITY)]] = Field(
        default_factory=dict,
        description="Places per intervention this cycle, overriding the catalog's; arms not "
        f"named keep the catalog's. Accepted: {ALLOCATION_ACCEPTED['capacity']}.",
        examples=[{"coaching": 10, "peer_group": 20}],
    )
    confident_only: StrictBool = Field(
        False,
        description="Allocate an arm only to people whose interval for it excludes no "
        f"benefit. Accepted: {ALLOCATION_ACCEPTED['confident_only']}.",
    )
    floors: dict[str, Annotated[StrictFloat, Field(ge=0, le=1)]] = Field(
        default_factory=dict,
        description="Minimum share of each named role's people given an arm, held by the "
        "solver; a plan that cannot meet them all within budget and places is "
        f"refused, saying so. Accepted: {ALLOCATION_ACCEPTED['floors']}.",
        examples=[{"nurse": 0.2, "app": 0.2}],
    )


class ArmPlan(BaseModel):
    arm: str = Field(description="Arm id.")
    name: str = Field(description="Readable name.")
    people: int = Field(description="People allocated this arm.")
    groups: int = Field(description="Groups they form (people, for one-to-one arms).")
    capacity: int | None = Field(description="Places that were available (null: no limit).")
    cost_per_person: float = Field(description="US$ per participant (the catalog's).")
    cost_is_assumption: bool = Field(
        description="True when that cost is the catalog's assumption (a default to replace), "
        "not a price from a source."
    )
    cost: float = Field(description="What this arm costs for the people allocated, US$.")
    expected_points_avoided: float = Field(
        description="EE points this arm is expected to "
        "avoid over its people (a sum of point estimates)."
    )


class PersonPlan(BaseModel):
    request_id: str = Field(description="Id of this line in the audit log.")
    allocated: str | None = Field(
        description="The arm this person is given ('none' = usual "
        "care); null for a crisis flag, which gets crisis resources "
        "instead."
    )
    recommended: str | None = Field(
        description="The offered, eligible arm with the best "
        "expected effect for this person if there were no budget "
        "or capacity limit ('none' when no arm is expected to "
        "help); null for a crisis flag."
    )
    ee_effect: float | None = Field(
        description="Expected EE change under the allocated arm "
        "against usual care (0 for usual care; null for a crisis "
        "flag)."
    )
    ee_lower: float | None = Field(description="Lower bound of the interval of ee_effect.")
    ee_upper: float | None = Field(description="Upper bound of the interval of ee_effect.")
    outside_training_data: list[OutsideItem] | None = Field(None, description=OUTSIDE_DESCRIPTION)
    note: str | None = Field(
        None,
        description="What this person's figures rest on, in words, when there is something to "
        "say, as /recommend says it: that the allocated arm's figure comes from published "
        "trials, or was carried over, or was never measured on the person's role (extrapolated "
        "from other roles); that the profile lies outside the training data, so its effects "
        "are extrapolated and their intervals may not hold; null otherwise.",
    )
    safety: SafetyBlock = Field(description="Safety triage, as in /recommend.")
    ignored: list[Problem] = Field(
        default_factory=list,
        description="Crisis lines only: fields "
        "sent but not accepted, which a crisis answer does not need.",
    )


class AllocationPlan(BaseModel):
    """Who gets which intervention, what it costs and what it is expected to avoid."""

    plan_id: str = Field(description="Id of this plan: the batch_id of its lines in the audit log.")
    model_version: str = Field(description="Registered model version that estimated effects.")
    catalog_version: str = Field(description="Intervention catalog version.")
    catalog_sha256: str | None = Field(
        None,
        description="SHA-256 of the intervention catalog file planned with (hex): tells two "
        "edits of the catalog apart when its version was not changed.",
    )
    status: str = Field(
        description="'optimal', or how far from the best possible the plan may be, and why the "
        "solver stopped early when it did (the best plan it had found is then the answer)."
    )
    gap: float = Field(
        0.0,
        description="How far the plan may be from the best possible one, as a share of the "
        "bound the solver proved (0: proven optimal, up to a relative 1e-6).",
    )
    budget: float | None = Field(description="The budget planned for (null: no limit).")
    total_cost: float = Field(description="What the plan costs, US$.")
    expected_points_avoided: float = Field(
        description="EE points the plan is expected to "
        "avoid over the cohort (a sum of point estimates)."
    )
    interval_level: float = Field(description="Coverage of the intervals (0.9 = 90 %).")
    arms: list[ArmPlan] = Field(description="Per intervention, in catalog order.")
    notes: list[str] = Field(
        default_factory=list,
        description="Why an intervention some people may be given is given to nobody, whatever "
        "the plan: fewer of them than its smallest group, or a budget below what one place or "
        "its smallest group costs; empty when there is nothing to say.",
    )
    fairness: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Per role, gender and setting (of the planned profiles) and per arm ('any': "
        "any arm): people, share eligible, share allocated and, for 'any', the "
        "expected EE points avoided per person; groups under `min_cell` people suppressed "
        "(people, shares and benefit withheld), and with them the next smallest until the "
        "hidden groups of an attribute hold `min_cell` people together.",
    )
    min_cell: int = Field(
        description="The smallest group `fairness` reports on: the served model's card's "
        "`min_cell` (train.yaml's card.min_cell when it was trained; at least 11, and 11 for "
        "a model that recorded none), so that the plan hides every group its card hides.",
        examples=[11],
    )
    assignments: list[PersonPlan] = Field(description="One per profile, in the order sent.")
    disclaimer: str = Field(description="Decision support, not a diagnosis.")
    complements: list[ComplementItem] = Field(
        default_factory=list,
        description="Measures the model does not rank; the plan complements them.",
    )
    context: ContextBlock | None = Field(
        None,
        description="Organisational change, training data, arms given one effect for everyone.",
    )


def allocate_cohort(
    engine,
    request: AllocationRequest,
    *,
    caller_role: str,
    time_limit: float,
    plan_id: str | None = None,
    crisis: dict | None = None,
) -> AllocationPlan:
    """Plan ``request``'s cohort with ``engine``'s model and catalog; record and return the plan.

    The planning itself is :func:`recommender.policy.plan_allocation`, as for ``recommender
    allocate``; this adds the service's edges: crisis entries, the check of every profile,
    safety triage and the audit log.

    Parameters
    ----------
    engine : RecommendationEngine
        The served model, catalog, settings and audit log.
    request : AllocationRequest
        Checked as a whole; its profiles are checked here, against the served model.
    caller_role : str
        Recorded in the audit log.
    time_limit : float
        Seconds the solver may take; the best plan found by then is returned with its status.
    plan_id : str, optional
        The plan's id (its audit batch id); made here when not given.
    crisis : dict, optional
        ``{position: crisis answer}`` for entries already answered on the crisis path (see
        :mod:`recommender.service._crisis`): they are neither checked nor planned for, and
        their lines in the plan are their crisis answers. Entries flagged but not given here
        are answered on the crisis path as well.

    Returns
    -------
    AllocationPlan
        The response model itself: what ``/allocate`` sends is its documented schema.

    Raises
    ------
    InputError
        An invalid profile, a duplicate person_id or an unusable capacity (each problem names
        its field), or constraints no plan satisfies.
    PlanTimeout
        The solver ran out of time before finding any plan (nothing is recorded).
    AuditUnavailable
        The audit log cannot be written: nothing is answered.
    """
    catalog, config, control = engine.catalog, engine.config, engine.control
    plan_id = plan_id or f"{PLAN_ID_PREFIX}{uuid.uuid4().hex}"
    crisis = dict(crisis) if crisis is not None else {}
    flagged = [
        i for i, raw in enumerate(request.profiles) if i not in crisis and crisis_flagged(raw)
    ]
    if flagged:  # a library caller: answer them here, on the same crisis path
        pairs = [
            engine.crisis_answer(
                request.profiles[i],
                caller_role=caller_role,
                batch_id=plan_id,
                compact=True,
                prefix=f"profiles[{i}]",
            )
            for i in flagged
        ]
        answers = [answer for answer, _ in pairs]
        record_answers(engine.audit, [record for _, record in pairs], answers, range(len(pairs)))
        crisis.update(zip(flagged, answers))
    # The options before the profiles and the model, by name, as `recommender allocate` does:
    # a bad capacity or floor is the caller's to correct, not a plan the solver did not find.
    check_plan_options(
        catalog,
        _planned_arms(engine),
        capacity=request.capacity,
        floors=request.floors,
        budget=request.budget,
    )
    # Crisis entries never reach the check, the model or the solver.
    rows = _checked_cohort(engine, request.profiles, skip=crisis)
    planned = sorted(rows)
    cohort, estimates, outside = _planned_cohort(
        engine, [rows[i] for i in planned], request, time_limit
    )
    allocation = cohort.allocation
    where = {i: position for position, i in enumerate(planned)}

    assignments, records = [], []
    for i in range(len(request.profiles)):
        if i in crisis:
            assignments.append(_crisis_line(crisis[i]))
            continue
        position = where[i]
        triaged = triage(rows[i], config.safety)
        allocated = str(cohort.allocated[position])
        figures = [round(float(v), 3) for v in cohort.figures[position]]
        request_id = uuid.uuid4().hex
        fields = None if outside is None else outside[position]
        assignments.append(
            PersonPlan(
                request_id=request_id,
                allocated=allocated,
                recommended=str(cohort.recommended[position]),
                ee_effect=figures[0],
                ee_lower=figures[1],
                ee_upper=figures[2],
                outside_training_data=fields,
                note=_person_note(engine, rows[i], allocated, fields),
                safety=safety_block(triaged),
            )
        )
        effects = {control: [0.0, 0.0, 0.0]}
        effects.update(
            {
                arm: [round(float(v), 3) for v in estimates[position, j]]
                for j, arm in enumerate(cohort.arms)
                if cohort.allowed[position, j]
            }
        )
        records.append(
            {
                "request_id": request_id,
                "batch_id": plan_id,
                "model_version": engine.version,
                "caller_role": caller_role,
                "person_id": rows[i]["person_id"],
                "safety_level": triaged.level,
                "recommended": allocated,
                "ranking_meaningful": None,
                "effects": effects,
            }
        )
    record_answers(engine.audit, records, (), ())
    arm_plans = _arm_plans(catalog, cohort.arms, cohort.limits, allocation.summary)
    return AllocationPlan(
        plan_id=plan_id,
        model_version=engine.version,
        catalog_version=catalog.version,
        catalog_sha256=catalog.sha256,
        status=allocation.status,
        gap=float(allocation.gap),
        budget=request.budget,
        total_cost=round(sum(a.cost for a in arm_plans), 2),
        expected_points_avoided=round(sum(a.expected_points_avoided for a in arm_plans), 3),
        interval_level=round(config.coverage, 6),
        arms=arm_plans,
        notes=list(allocation.notes),
        fairness=fairness_records(allocation.fairness) if allocation.fairness is not None else [],
        min_cell=allocation.min_cell,
        assignments=assignments,
        disclaimer=config.disclaimer,
        complements=engine.complements,
        context=engine.context,
    )


def _person_note(engine, row, allocated: str, outside) -> str | None:
    # What /recommend says of the same person's figure for this arm (published trials, carried
    # over, or not measured on their role), and of a profile outside the training data.
    said = [
        None if allocated == engine.control else engine._basis(str(row.get("role")), (allocated,)),
        extrapolation_note(outside, engine.config.coverage) if outside else None,
    ]
    return " ".join(text for text in said if text) or None


def _crisis_line(answer: dict) -> PersonPlan:
    # A crisis entry's line of the plan: its crisis answer, no arm and no figures.
    return PersonPlan(
        request_id=answer["request_id"],
        allocated=None,
        recommended=None,
        ee_effect=None,
        ee_lower=None,
        ee_upper=None,
        safety=answer["safety"],
        ignored=answer["ignored"],
    )


def _planned_cohort(engine, cohort, request, time_limit):
    """Score ``cohort`` once (no model call when it is empty) and plan it.

    Returns the policy's :class:`~recommender.policy.PlannedCohort`, every planned arm's
    figures (people x arms x effect, lower, upper), which the audit records, and each
    person's fields outside the training data (None when the model records none).
    """
    arms = _planned_arms(engine)
    outside = None if engine.support is None else [[] for _ in cohort]
    if cohort:
        encoded = engine.model.encode(cohort)
        if engine.support is not None:
            outside = engine.support.outside(encoded)
        prediction = engine.model.predict(encoded, alpha=engine.config.alpha)
        columns = [list(prediction.arms).index(arm) for arm in arms]
        # Planned on the model's full figures, as `recommender allocate` plans (rounded, a
        # near tie could be planned otherwise); the answer and the audit show three decimals.
        effect, lower, upper = (
            np.asarray(table, dtype=float)[:, columns]
            for table in (prediction.effect, prediction.lower, prediction.upper)
        )
    else:
        effect = lower = upper = np.zeros((0, len(arms)))
    try:
        plan = plan_allocation(
            engine.catalog,
            cohort,
            effect,
            lower,
            upper,
            arms=arms,
            offered_to=[row.get("offered") for row in cohort],
            budget=request.budget,
            capacity=request.capacity,
            confident_only=request.confident_only,
            floors=request.floors or None,
            time_limit=time_limit,
            min_cell=engine.min_cell,
        )
    except InputError as error:
        raise InputError(
            f"no plan was found for this cohort: {error}; nothing was allocated",
            problems=error.problems,
        ) from None
    except PlanTimeout as error:
        raise PlanTimeout(
            f"no plan was found for this cohort of {len(cohort):,} people in "
            f"time: {error}; nothing was allocated or recorded; please retry, or "
            "split the cohort into smaller ones"
        ) from None
    columns = [arms.index(arm) for arm in plan.arms]
    return plan, np.stack([effect, lower, upper], axis=2)[:, columns], outside


def _planned_arms(engine) -> list[str]:
    """The catalog's treatment arms the served model estimates, in catalog order."""
    return [arm for arm in engine.catalog.treatment_arms if arm in engine.modelled]


def _checked_cohort(engine, raws: Sequence, *, skip=()) -> dict[int, dict]:
    # A plan is for the whole cohort: leaving out an invalid entry would silently give its
    # places to others, so no plan is made until every entry is valid. Every problem is named
    # in one answer: invalid entries and person_ids given twice alike. Entries in ``skip``
    # (crisis flags, answered on their own) are neither checked nor planned for.
    rows, index, errors = engine.check_rows(raws)
    by_entry = {
        error["index"]: list(error["problems"]) for error in errors if error["index"] not in skip
    }
    kept = [(row, i) for row, i in zip(rows, index) if i not in skip]
    # A person flagged for crisis risk gets no arm: not from another entry with their id either.
    seen: dict[str, int] = {}
    for i in sorted(skip):
        person = raws[i].get("person_id") if isinstance(raws[i], Mapping) else None
        if isinstance(person, str):
            seen.setdefault(person, i)
    for row, i in kept:
        first = seen.setdefault(row["person_id"], i)
        if first != i:
            flagged = ", flagged for crisis risk" if first in skip else ""
            by_entry[i] = [
                {
                    "field": f"profiles[{i}].person_id",
                    "value": "(hidden)",  # the entries' positions say which
                    "accepted": f"a person_id no other entry has (profiles[{first}] has this "
                    f"one{flagged})",
                    "message": "duplicate person_id",
                }
            ]
    if by_entry:
        problems = [problem for i in sorted(by_entry) for problem in by_entry[i]]
        raise InputError(
            f"{len(by_entry):,} of {len(raws):,} profiles are not accepted, so no "
            f"plan was made; first: {problems[0]['field']}: "
            f"{problems[0]['accepted']}",
            problems=problems,
        )
    return {i: row for row, i in kept}


def _arm_plans(catalog, arms, limits, summary: pd.DataFrame) -> list[ArmPlan]:
    plans = []
    for arm in arms:
        counts = summary.loc[arm]
        people = int(counts["people"])
        cost_per_person = float(limits[arm].cost_per_person)
        plans.append(
            ArmPlan(
                arm=arm,
                name=catalog.arm(arm).name,
                people=people,
                groups=int(counts["groups"]),
                capacity=limits[arm].capacity,
                cost_per_person=cost_per_person,
                cost_is_assumption=bool(catalog.arm(arm).cost_is_assumption)
                and cost_per_person == float(catalog.arm(arm).cost_per_person),
                cost=round(people * cost_per_person, 2),
                expected_points_avoided=round(float(counts["expected_points_avoided"]), 3),
            )
        )
    return plans
