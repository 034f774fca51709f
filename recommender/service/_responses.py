"""Response models of the HTTP API: the answer for one person, a batch's answers, and the
small answers of ``/outcomes`` and ``/reload``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from recommender.service._problems import Problem

__all__ = [
    "ArmEstimate",
    "ArmFacts",
    "ArmFigures",
    "BatchRecommendation",
    "BatchResponse",
    "ComplementItem",
    "ContextBlock",
    "OutcomesResponse",
    "ErasureResponse",
    "OutsideItem",
    "Recommendation",
    "ReloadResponse",
    "SafetyBlock",
]


class EvidenceItem(BaseModel):
    """One published finding, as recorded in the intervention catalog (docs/evidence.md)."""

    citation: str = Field(description="First author, year, journal.")
    reference: str = Field(
        description="Full reference with DOI / PMID where the source gives them."
    )
    authors: str | None = Field(description="Authors; null when no stored source gives them.")
    year: int = Field(description="Publication year.")
    title: str | None = Field(description="Title; null when no stored source gives it.")
    journal: str = Field(description="Journal, volume and pages.")
    doi: str | None = Field(description="DOI, only where a source gives one.")
    pmid: str | None = Field(description="PubMed id, only where a source gives one.")
    population: str = Field(description="Who was studied.")
    setting: str = Field(description="Where and when.")
    design: str = Field(
        description="rct, controlled, pre_post, meta_analysis, systematic_review, observational ..."
    )
    outcome: str = Field(description="What was measured.")
    effect: str = Field(description="The finding as the study reports it.")
    measure: str = Field(description="What the reported number is.")
    value: float | None = Field(description="The reported number.")
    ci: list[float] = Field(
        default_factory=list,
        description="Its reported interval [lower, upper]; empty when the source reports none.",
    )
    comparison: str = Field(description="What was compared with what.")
    effect_kind: str = Field(
        description="between_group, within_group (pre-post), association or descriptive."
    )
    grade: str | None = Field(description="GRADE certainty where a review rated it.")
    certainty: str = Field(description="How sure the figure is and on what basis.")
    uptake: str | None = Field(description="Participation or uptake, where reported.")
    effect_points: float | None = Field(
        description="Difference from usual care in EE points "
        "(negative = better); only for between-group figures."
    )
    effect_points_ci: list[float] = Field(
        default_factory=list, description="Interval of effect_points; empty when there are none."
    )
    conversion: str | None = Field(description="How effect_points were obtained, or why not.")
    roles: list[str] = Field(description="Roles the evidence concerns.")
    specific_to_arm: bool = Field(
        description="False for estimates pooled over several kinds of intervention."
    )
    checked_against: str = Field(description="Where the record was checked.")
    note: str | None = Field(description="Caveats.")


class ComplementEvidence(BaseModel):
    citation: str = Field(description="First author, year, journal.")
    reference: str = Field(description="Full reference.")
    design: str = Field(description="Study design.")
    effect: str = Field(description="The finding as reported.")
    grade: str | None = Field(description="GRADE certainty where rated.")
    certainty: str = Field(description="How sure the finding is and on what basis.")


class ComplementItem(BaseModel):
    """A measure the model does not rank; individual interventions do not replace it."""

    id: str = Field(description="Catalog id.")
    name: str = Field(description="Readable name.")
    level: str = Field(description="Where it acts (team, organisation).")
    description: str = Field(description="What it is.")
    roles: list[str] = Field(description="Roles it concerns.")
    ranked: bool = Field(description="Always false: the model does not rank it.")
    note: str = Field(description="Why it is listed with every answer.")
    evidence: list[ComplementEvidence] = Field(description="Published findings, with certainty.")


def _secondary_bound(outcome: str, side: str):
    return Field(
        description=f"{side} bound of the interval of {outcome}_effect, at the same level as "
        f"EE's (interval_level); null when {outcome}_effect is null or the model gives it no "
        "interval."
    )


class ArmFigures(BaseModel):
    """One arm in a batch answer's ranking: its figures (its catalog facts are in the batch's
    'arms' map, given once). Effects are expected changes against usual care."""

    arm: str = Field(description="Arm id.")
    rank: int = Field(description="1 = best (lowest expected EE change).")
    ee_effect: float = Field(
        description="Expected change in Emotional Exhaustion points "
        "against usual care (negative = less exhaustion)."
    )
    ee_lower: float = Field(description="Lower bound of the interval of ee_effect.")
    ee_upper: float = Field(description="Upper bound of the interval of ee_effect.")
    dp_effect: float | None = Field(
        description="Expected change in Depersonalization points against usual care "
        "(negative = better); null when the model has no DP estimate for the arm (the "
        "evidence-only model has none)."
    )
    dp_lower: float | None = _secondary_bound("dp", "Lower")
    dp_upper: float | None = _secondary_bound("dp", "Upper")
    pa_effect: float | None = Field(
        description="Expected change in Personal Accomplishment points against usual care "
        "(positive = better); null when the model has no PA estimate for the arm."
    )
    pa_lower: float | None = _secondary_bound("pa", "Lower")
    pa_upper: float | None = _secondary_bound("pa", "Upper")


class ArmEstimate(ArmFigures):
    """One arm in the ranking, with its catalog facts. Effects are expected changes against
    usual care."""

    # Catalog facts: in batch answers they are given once per arm, in the batch's 'arms' map.
    name: str | None = Field(None, description="Readable name (batch: see 'arms').")
    cost_per_person: float | None = Field(
        None, description="Default cost of a full course, US$ (batch: see 'arms')."
    )
    cost_is_assumption: bool | None = Field(
        None,
        description="True when the catalog's cost is an assumption (a default to replace), "
        "not a price from a source (batch: see 'arms').",
    )
    cost_basis: str | None = Field(
        None, description="Where the cost comes from, as the catalog says (batch: see 'arms')."
    )
    evidence: list[EvidenceItem] = Field(
        default_factory=list, description="Published evidence for this arm (batch: see 'arms')."
    )


class ArmFacts(BaseModel):
    name: str = Field(description="Readable name.")
    cost_per_person: float = Field(description="Default cost of a full course, US$.")
    cost_is_assumption: bool = Field(
        description="True when the catalog's cost is an assumption (a default to replace), "
        "not a price from a source."
    )
    cost_basis: str = Field(description="Where the cost comes from, as the catalog says.")
    evidence: list[EvidenceItem] = Field(description="Published evidence for this arm.")


class ContributionItem(BaseModel):
    feature: str = Field(description="Profile field.")
    value: Any = Field(None, description="The person's value of that field.")
    points: float = Field(
        description="EE points this field contributes to the difference "
        "(negative favours the recommended arm)."
    )


class ExplanationBlock(BaseModel):
    versus_usual_care: list[ContributionItem] = Field(
        description="Top contributions (largest first; none under 0.05 points) to how far "
        "the recommended arm's effect against usual care lies from the arm's average for this "
        "profile: negative ones make the benefit larger, positive ones smaller."
    )
    runner_up: str | None = Field(None, description="The second-ranked arm.")
    versus_runner_up: list[ContributionItem] = Field(
        description="Top contributions (largest first; none under 0.05 points) to how far "
        "the recommended arm's lead over the runner-up lies from its average for this profile: "
        "negative ones widen the lead, positive ones narrow it."
    )
    sentence: str = Field(description="The same in one plain-language sentence.")


class ResourceItem(BaseModel):
    name: str = Field(description="Service.")
    contact: str = Field(description="How to reach it.")
    url: str | None = Field(None, description="Web address.")
    serves: str = Field(
        "everyone",
        description="Whom it serves (each person gets only the resources that serve their role).",
    )
    hours: str | None = Field(None, description="When it is open.")
    confidentiality: str | None = Field(None, description="What it keeps private.")


class ReferralItem(BaseModel):
    to: str = Field(description="Where a person of this role is referred.")
    confidentiality: str = Field(description="What confidentiality it has, in plain words.")


class SafetyBlock(BaseModel):
    level: Literal["routine", "referral", "crisis"] = Field(
        description="routine; referral (ranking plus a confidential-referral notice); crisis "
        "(crisis resources only, no ranking)."
    )
    notice: str | None = Field(None, description="What the program should do.")
    rule: str | None = Field(None, description="The referral rule that matched.")
    resources: list[ResourceItem] = Field(default_factory=list, description="Crisis resources.")
    referral: ReferralItem | None = Field(
        None, description="For a referral: where to, for this person's role."
    )
    recorded_in: str = Field(
        "audit log",
        description="Where this answer was recorded: the "
        "audit log, or for a crisis answer given while the audit store "
        "could not be written or did not confirm the record in time, the service log "
        "(marked so).",
    )


class TrainingData(BaseModel):
    source: Literal["simulated", "program", "evidence", "not recorded"] = Field(
        description="What the served model learned from (from its metadata); evidence: no "
        "data, the catalog's published effects (the evidence-only model)."
    )
    description: str | None = Field(None, description="The training data, as recorded.")
    statement: str = Field(description="The same in words.")


class OneEffectArm(BaseModel):
    arm: str = Field(description="Arm id.")
    statement: str = Field(
        description="That the model found no measurable benefit in "
        "personalising this arm, so it gives one effect for everyone."
    )


class ContextBlock(BaseModel):
    """Said with every answer (a batch or plan says it once)."""

    organisational_change: str = Field(
        description="Individual programs complement organisational change."
    )
    training_data: TrainingData | None = Field(
        None, description="What the served model learned from; null when no model is loaded."
    )
    one_effect_for_everyone: list[OneEffectArm] = Field(
        default_factory=list, description="Arms the model gives one effect for everyone."
    )


class OutsideItem(BaseModel):
    """A field where the profile lies outside the data the model learnt from."""

    field: str = Field(description="Profile field.")
    value: Any = Field(None, description="The person's value of that field.")
    seen: str = Field(description="What training had: a number's range, a level's few rows.")


# The answers' field: one description for /recommend, its batch and /allocate's lines.
OUTSIDE_DESCRIPTION = (
    "The fields where this profile lies outside the data the model learnt from: a number "
    "below the lowest or above the highest of the training rows, or a level (role, specialty, "
    "setting, ...) too few training rows had. Empty when inside; null when the model records "
    "no training data (the evidence-only model) or no model answered (a crisis answer). When "
    "not empty the effects are extrapolated, the intervals may not hold, and the answer says "
    "so in words."
)


class ExclusionItem(BaseModel):
    arm: str = Field(description="Arm id.")
    reason: str = Field(description="Why it is not ranked for this person.")


class AssignmentBlock(BaseModel):
    arm: str = Field(description="The arm served (equals 'recommended').")
    probability: float = Field(
        description="Probability with which this arm was served under "
        "the exploration policy (1 when nothing was explored)."
    )
    policy: str = Field(
        description="Exploration policy applied: thompson, epsilon or greedy "
        "(severe profiles are always served greedily)."
    )
    cycle: int = Field(description="Survey cycle; the same person gets the same arm within it.")


class Recommendation(BaseModel):
    """The answer for one person."""

    request_id: str = Field(description="Id of this answer, as recorded in the audit log.")
    model_version: str | None = Field(
        description="Registered model version that answered "
        "(null: a crisis answer given while no model is loaded)."
    )
    catalog_version: str | None = Field(description="Intervention catalog version.")
    catalog_sha256: str | None = Field(
        None,
        description="SHA-256 of the intervention catalog file that answered (hex): tells two "
        "edits of the catalog apart when its version was not changed.",
    )
    recommended: str | None = Field(
        description="Recommended arm id ('none' = usual care); "
        "null when crisis resources are returned instead."
    )
    interval_level: float = Field(description="Coverage of the intervals (0.9 = 90 %).")
    ranking: list[ArmEstimate] = Field(
        description="Every offered, eligible arm and usual care, "
        "best first; empty for a crisis answer."
    )
    ranking_meaningful: bool | None = Field(
        description="False when the two best arms' "
        "intervals overlap so much that their order is not "
        "meaningful; null when no order was made: usual care is "
        "the only arm ranked (no offered arm is eligible and "
        "estimated), or crisis resources are returned instead."
    )
    ranking_note: str | None = Field(description="The same in words.")
    excluded: list[ExclusionItem] = Field(description="Offered arms not ranked, with reasons.")
    explanation: ExplanationBlock | None = Field(description="Why the recommended arm.")
    outside_training_data: list[OutsideItem] | None = Field(None, description=OUTSIDE_DESCRIPTION)
    safety: SafetyBlock = Field(description="Safety triage.")
    disclaimer: str | None = Field(
        description="Decision support, not a diagnosis. Null in "
        "batch answers, which give it once for the batch."
    )
    complements: list[ComplementItem] = Field(
        default_factory=list,
        description="Measures the model does not rank (Schwartz Rounds, mentoring, workload, "
        "EHR, leadership). Empty in batch answers, which give them once.",
    )
    assignment: AssignmentBlock | None = Field(
        default=None,
        description="The arm served and the probability it was drawn with; "
        "null for a crisis answer.",
    )
    context: ContextBlock | None = Field(
        None,
        description="Organisational change, training "
        "data, arms given one effect for everyone. Null in "
        "batch answers, which give it once for the batch.",
    )
    ignored: list[Problem] = Field(
        default_factory=list,
        description="Crisis answers only: "
        "fields sent but not accepted, which a crisis answer does "
        "not need; they were neither used nor stored.",
    )


class BatchRecommendation(Recommendation):
    """The answer for one person in a batch: what is the same for every answer (each arm's
    name, cost and evidence, the disclaimer, complements and context) is given once, beside the
    results."""

    ranking: list[ArmFigures] = Field(
        description="Every offered, eligible arm and usual care, best first; empty for a "
        "crisis answer. Names, costs and evidence: the batch's 'arms' map."
    )


class RowError(BaseModel):
    index: int = Field(description="Position of the entry in 'profiles'.")
    error: str = Field(description="Summary.")
    problems: list[Problem] = Field(description="Each problem.")


class BatchResponse(BaseModel):
    """Answers for the valid entries and errors for the others."""

    batch_id: str = Field(description="Id of this batch in the audit log.")
    model_version: str = Field(description="Registered model version that answered.")
    answered: int = Field(description="Entries answered.")
    rejected: int = Field(description="Entries rejected.")
    results: list[BatchRecommendation] = Field(
        description="Answers to the valid entries, in order."
    )
    result_index: list[int] = Field(description="Position in 'profiles' of each answer.")
    errors: list[RowError] = Field(description="One entry per rejected profile.")
    arms: dict[str, ArmFacts] = Field(
        description="Name, cost and evidence of every arm ranked in 'results', once per arm."
    )
    disclaimer: str = Field(description="Decision support, not a diagnosis.")
    complements: list[ComplementItem] = Field(
        default_factory=list, description="Measures the model does not rank, once for the batch."
    )
    context: ContextBlock | None = Field(None, description="Said once for every answer.")


class OutcomesResponse(BaseModel):
    recorded: int = Field(description="Outcomes stored, each linked to its recommendation.")
    corrected: int = Field(
        description="Corrections stored (with correct: true), each replacing the outcome in "
        "force of its recommendation, which is kept."
    )
    already_recorded: int = Field(
        description="Identical outcomes already stored (always 0 "
        "over HTTP, where a duplicate is refused with 409)."
    )


class ErasureResponse(BaseModel):
    asked: int = Field(description="Distinct person_ids given.")
    found: int = Field(description="Of them, those the audit store held rows of.")
    missing: list[int] = Field(
        description="Positions (from 0, in the order given) of the ids no row of the store "
        "holds: never served with this store's salt, or erased already. The ids themselves "
        "are never echoed."
    )
    answers_redacted: int = Field(description="Answers kept but stripped of the person.")
    crisis_answers_redacted: int = Field(description="Of them, crisis answers.")
    assignments_deleted: int = Field(description="Assignments (profiles) deleted.")
    outcomes_deleted: int = Field(description="Outcome rows deleted, corrections included.")
    dry_run: bool = Field(description="true: nothing was changed; the counts are what would be.")
    erasure_id: int | None = Field(
        description="The erasure's row in GET /audit/export?table=erasures (null: nothing changed)."
    )
    parts: int = Field(
        description="Transactions the erasure was written in (erasure.part_rows rows each at "
        "most); 0 for a dry run or when no one was found."
    )


class ReloadResponse(BaseModel):
    previous_version: str | None = Field(
        description="Version served before the reload (null: none was loaded)."
    )
    model_version: str = Field(description="Version served now.")
    announced: bool = Field(
        description="Whether the reload was recorded in the audit store, which is how the "
        "service's other workers learn of it (they follow within reload_poll_seconds). False: "
        "the store could not record it (the service log says why); this worker serves the new "
        "version, the others keep theirs until a /reload reaches them or they restart."
    )
    catalog_version: str | None = Field(
        None,
        description="Version of the intervention catalog in force now: /reload reads the "
        "catalog file again (a catalog the checks refuse is answered 409 and changes nothing).",
    )
    catalog_sha256: str | None = Field(
        None, description="SHA-256 of that catalog file (hex), as every answer names it."
    )
