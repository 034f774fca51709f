"""Request and response models of the HTTP API, built from the data contract.

The profile fields, their ranges and their categories come from :mod:`recommender.cohort`, so
the API accepts exactly what the contract accepts. Unknown fields are rejected. Validation
errors are turned into problems that name the field, the value received and what is accepted.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError, to_json

from recommender.cohort import CATEGORIES, PROFILE_COLUMNS, RANGES
from recommender.cohort._contract import INTEGER_COLUMNS, PERSON_ID_MAX_LENGTH

__all__ = [
    "ProfileRequest",
    "ServedProfileRequest",
    "BatchRequest",
    "Problem",
    "ErrorResponse",
    "ArmEstimate",
    "ArmFigures",
    "Recommendation",
    "BatchRecommendation",
    "BatchResponse",
    "batch_response_json",
    "AnswerJSON",
    "ReloadRequest",
    "ReloadResponse",
    "problems_from",
    "as_problems",
    "profile_list_adapter",
    "example_profile",
    "accepted_for",
    "MAX_BATCH_ROWS",
    "PROFILE_FIELDS",
]

MAX_BATCH_ROWS = 10_000
_MAX_OFFERED = 64
_MAX_VALUE_CHARS = 120

_DESCRIPTIONS = {
    "person_id": "Pseudonymous id of the person (never a name, e-mail or staff number); stored "
    "only as a salted hash.",
    "age": "Age in years.",
    "gender": "Gender.",
    "role": "Role; 'app' is an advanced practice provider (nurse practitioner, physician "
    "assistant).",
    "specialty": "Specialty.",
    "setting": "Practice setting.",
    "years_in_practice": "Years in practice (0 for trainees).",
    "weekly_hours": "Usual working hours a week.",
    "ee": "MBI-HSS Emotional Exhaustion subscale score (9 items scored 0-6).",
    "dp": "MBI-HSS Depersonalization subscale score (5 items scored 0-6).",
    "pa": "MBI-HSS Personal Accomplishment subscale score (8 items scored 0-6; higher is better).",
}


def example_profile() -> dict:
    """A valid ``/recommend`` body (the README's and ``serve --print-example``'s example)."""
    return {
        "person_id": "p-000123",
        "age": 41,
        "gender": "female",
        "role": "physician",
        "specialty": "internal_medicine",
        "setting": "academic",
        "years_in_practice": 11.0,
        "weekly_hours": 58.0,
        "ee": 31,
        "dp": 11,
        "pa": 34,
        "offered": ["coaching", "mindfulness", "peer_group"],
    }


def accepted_for(field: str) -> str:
    """What the API accepts for a request field, in words."""
    return _accepted_text(field) or "see the OpenAPI document (/docs.json)"


def _accepted_text(field: str) -> str | None:
    if field == "person_id":
        return f"a string of 1 to {PERSON_ID_MAX_LENGTH} characters"
    if field in CATEGORIES:
        return "one of " + ", ".join(CATEGORIES[field])
    if field in RANGES:
        lo, hi = RANGES[field]
        kind = "an integer" if field in INTEGER_COLUMNS else "a number"
        return f"{kind} from {lo:g} to {hi:g}"
    if field == "crisis_risk":
        return "true or false"
    if field == "offered":
        return f"a list of 1 to {_MAX_OFFERED} arm ids of the intervention catalog"
    if field == "profiles":
        return f"a list of 1 to {MAX_BATCH_ROWS:,} profile objects"
    return None


def _profile_field(name: str):
    description = f"{_DESCRIPTIONS.get(name, name)} Accepted: {accepted_for(name)}."
    if name == "person_id":
        return (
            str,
            Field(
                min_length=1,
                max_length=PERSON_ID_MAX_LENGTH,
                description=description,
                examples=["p-000123"],
            ),
        )
    if name in CATEGORIES:
        return (
            Literal[CATEGORIES[name]],
            Field(description=description, examples=[CATEGORIES[name][0]]),
        )
    lo, hi = RANGES[name]
    if name in INTEGER_COLUMNS:
        return (
            Annotated[int, _NUMBER_ONLY],
            Field(ge=int(lo), le=int(hi), description=description, examples=[int((lo + hi) // 2)]),
        )
    return (
        Annotated[float, _NUMBER_ONLY],
        Field(
            ge=lo,
            le=hi,
            allow_inf_nan=False,
            description=description,
            examples=[float((lo + hi) // 2)],
        ),
    )


def _number_only(value):
    # Lax parsing would read "41" as 41 and true as 1; a number field takes JSON numbers only
    # (41 for a float, and 41.0 for an integer, still are: JSON does not tell them apart).
    if isinstance(value, (str, bytes, bool)):
        kind = "true or false" if isinstance(value, bool) else "text"
        raise PydanticCustomError(
            "number_type", "Input should be a JSON number, not {kind}", {"kind": kind}
        )
    return value


_NUMBER_ONLY = BeforeValidator(_number_only)


_STRICT = ConfigDict(extra="forbid")

ProfileRequest = create_model(
    "ProfileRequest",
    __config__=_STRICT,
    __doc__="One person's profile (the data contract's profile columns) and what the program "
    "can offer.",
    **{name: _profile_field(name) for name in PROFILE_COLUMNS},
    # Strict: only true or false; "yes", 1 or "false" would be guesses about a crisis flag.
    crisis_risk=(
        StrictBool,
        Field(
            False,
            description="Set when the program knows of a risk of "
            "self-harm: the answer then holds crisis resources only, no "
            "intervention ranking. A flagged request needs no other field (a "
            "person_id is enough); fields sent but not accepted are listed in "
            "the answer's 'ignored' instead of refusing it.",
        ),
    ),
    offered=(
        list[str] | None,
        Field(
            None,
            min_length=1,
            max_length=_MAX_OFFERED,
            description="Arm ids the program can offer this person "
            "(default: every arm of the catalog). Usual care is always "
            "the baseline.",
            examples=[["coaching", "peer_group"]],
        ),
    ),
)


class ServedProfileRequest(ProfileRequest):
    """One person's profile and what the program can offer. A model trained with extra features
    (columns a program added to the data contract) also takes each of them, by name: a number,
    or one of the values the model was trained on. A request missing one is answered 422 with
    the field and what it accepts; so is a field the served model does not know.
    """

    # Which extra fields are known depends on the model loaded at run time; the front door
    # (recommender.service._gate) checks them against it before this model is parsed.
    model_config = ConfigDict(extra="allow")

    # A body flagged crisis_risk, kept as sent when it is not a valid profile: a crisis answer
    # needs nothing but the flag, so a missing or invalid field must not refuse it.
    _crisis_body: dict | None = PrivateAttr(None)

    @model_validator(mode="wrap")
    @classmethod
    def _crisis_needs_no_profile(cls, data, handler):
        try:
            return handler(data)
        except ValidationError:
            from recommender.service._crisis import crisis_flagged

            if not crisis_flagged(data):
                raise
        request = cls.model_construct(crisis_risk=True)
        request._crisis_body = dict(data)
        return request

    def body(self) -> dict:
        """The request as a plain mapping: as sent for a crisis flag that is no valid profile."""
        return dict(self._crisis_body) if self._crisis_body is not None else self.model_dump()


class BatchRequest(BaseModel):
    """Many profiles at once; each entry has the fields of a ``/recommend`` body."""

    model_config = _STRICT

    profiles: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH_ROWS,
        description="Up to 10,000 profiles, each with the fields of a /recommend request body. "
        "Invalid entries get their own error entry; valid ones are answered.",
    )


class Problem(BaseModel):
    """One thing wrong with a request."""

    field: str = Field(description="Where: field name, list index or 'body'.")
    value: Any = Field(None, description="The value received (shortened when long).")
    accepted: str = Field(description="What would be accepted there.")
    message: str = Field("", description="The validator's own message.")


class ErrorResponse(BaseModel):
    """A request the service will not answer, with every problem found."""

    error: str = Field(description="Summary.")
    problems: list[Problem] = Field(default_factory=list, description="Each problem.")
    crisis_results: list[dict] = Field(
        default_factory=list,
        description="Batches and plans: "
        "the crisis answers given all the same, each with the "
        "position of its entry ('index') and its 'answer'.",
    )


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
        description="Expected change in Depersonalization points "
        "(negative = better); null when the model has no DP model."
    )
    pa_effect: float | None = Field(
        description="Expected change in Personal Accomplishment "
        "points (positive = better); null when not modelled."
    )


class ArmEstimate(ArmFigures):
    """One arm in the ranking, with its catalog facts. Effects are expected changes against
    usual care."""

    # Catalog facts: in batch answers they are given once per arm, in the batch's 'arms' map.
    name: str | None = Field(None, description="Readable name (batch: see 'arms').")
    cost_per_person: float | None = Field(
        None, description="Default cost of a full course, US$ (batch: see 'arms')."
    )
    evidence: list[EvidenceItem] = Field(
        default_factory=list, description="Published evidence for this arm (batch: see 'arms')."
    )


class ArmFacts(BaseModel):
    name: str = Field(description="Readable name.")
    cost_per_person: float = Field(description="Default cost of a full course, US$.")
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
        description="Top contributions to the recommended arm's effect against usual care."
    )
    runner_up: str | None = Field(None, description="The second-ranked arm.")
    versus_runner_up: list[ContributionItem] = Field(
        description="Top contributions to the recommended arm's lead over the runner-up."
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
        "could not be written, the service log (marked so).",
    )


class TrainingData(BaseModel):
    source: Literal["simulated", "program", "not recorded"] = Field(
        description="What the served model learned from (from its metadata)."
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
        "meaningful."
    )
    ranking_note: str | None = Field(description="The same in words.")
    excluded: list[ExclusionItem] = Field(description="Offered arms not ranked, with reasons.")
    explanation: ExplanationBlock | None = Field(description="Why the recommended arm.")
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


# A batch's answers as BatchRecommendation lists its fields: the engine's ranked answers hold
# them all but `ignored` (which only a crisis answer fills), with every nested block already in
# its model's field order and types (tests/test_fastpath4_equivalence.py holds the bytes equal).
_BATCH_ANSWER_FIELDS = tuple(f for f in BatchRecommendation.model_fields if f != "ignored")
_RESULTS_KEY = b'"results":[]'


_FIGURES = tuple(ArmFigures.model_fields)


class AnswerJSON:
    """One ``/recommend`` answer's JSON, byte for byte what ``Recommendation``'s
    ``model_dump_json`` gives, for the answers of one engine.

    What is the same in every answer (each arm's catalog facts with their evidence, the
    complements, the context) is validated and dumped once, here; validating it again for
    every answer was most of the 0.25 ms the response model took per request. An answer
    whose facts are not this engine's (a crisis answer, or any other) goes through the model.

    Parameters
    ----------
    arm_facts : mapping
        ``arm -> {"name", "cost_per_person", "evidence"}``, the very dicts the answers use.
    complements : list
        The answers' ``complements`` (the very list).
    context : dict or None
        The answers' ``context`` (the very dict).
    """

    def __init__(self, arm_facts, complements, context):
        self._evidence = {arm: facts["evidence"] for arm, facts in arm_facts.items()}
        self._facts = {
            arm: ArmFacts.model_validate(facts).model_dump(mode="json")
            for arm, facts in arm_facts.items()
        }
        self._complements = complements
        self._context = context
        self._dumped_complements = [
            ComplementItem.model_validate(item).model_dump(mode="json") for item in complements
        ]
        self._dumped_context = (
            None
            if context is None
            else ContextBlock.model_validate(context).model_dump(mode="json")
        )

    def recommendation(self, answer: Mapping) -> bytes:
        """The JSON of ``Recommendation.model_validate(answer)``."""
        if not self._is_ours(answer):
            return Recommendation.model_validate(answer).model_dump_json().encode()
        plain = {field: answer[field] for field in _BATCH_ANSWER_FIELDS}
        plain["ranking"] = [
            {**{field: item[field] for field in _FIGURES}, **self._facts[item["arm"]]}
            for item in answer["ranking"]
        ]
        plain["complements"] = self._dumped_complements
        plain["context"] = self._dumped_context
        plain["ignored"] = []
        return to_json(plain, inf_nan_mode="null")  # as the models write NaN

    def _is_ours(self, answer: Mapping) -> bool:
        return (
            "ignored" not in answer
            and answer.get("complements") is self._complements
            and answer.get("context") is self._context
            and all(
                item.get("evidence") is self._evidence.get(item.get("arm"))
                for item in answer.get("ranking", ())
            )
        )


def batch_response_json(results: list[dict], **envelope) -> bytes:
    """The JSON of ``BatchResponse(results=results, **envelope)``, byte for byte what its
    ``model_dump_json`` gives (what BentoML sends for a returned model), without building the
    25 objects per answer that validating 1,000 answers as models takes (about 100 ms).

    The envelope (arms, errors, context) still goes through :class:`BatchResponse`; a crisis
    answer goes through :class:`BatchRecommendation` (its resources carry more than the
    schema shows); the engine's ranked answers are put in the schema's field order and
    serialised by the same encoder in one call.
    """
    head = BatchResponse.model_validate({**envelope, "results": []}).model_dump_json().encode()
    answers = [
        BatchRecommendation.model_validate(answer).model_dump(mode="json")
        if "ignored" in answer
        else {**{field: answer[field] for field in _BATCH_ANSWER_FIELDS}, "ignored": []}
        for answer in results
    ]
    # `results` follows batch_id, model_version, answered and rejected, none of which can hold
    # these bytes unescaped, so the first occurrence is the field itself.
    return head.replace(_RESULTS_KEY, b'"results":' + to_json(answers, inf_nan_mode="null"), 1)


class OutcomesRequest(BaseModel):
    """Follow-up scores of people the service has served (checked row by row on arrival)."""

    model_config = _STRICT

    outcomes: list[dict] = Field(
        min_length=1,
        max_length=MAX_BATCH_ROWS,
        description=(
            "Each: person_id (as sent with the recommendation), measured_at (ISO 8601), arm_taken "
            "(the arm the person actually took), ee_followup (0-54), dp_followup (0-30), "
            "pa_followup (0-48)."
        ),
    )


class OutcomesResponse(BaseModel):
    recorded: int = Field(description="Outcomes stored, each linked to its recommendation.")
    already_recorded: int = Field(
        description="Identical outcomes already stored (always 0 "
        "over HTTP, where a duplicate is refused with 409)."
    )


class ReloadRequest(BaseModel):
    """``/reload`` takes no fields; an empty body or ``{}``."""

    model_config = _STRICT


class ReloadResponse(BaseModel):
    previous_version: str | None = Field(
        description="Version served before the reload (null: none was loaded)."
    )
    model_version: str = Field(description="Version served now.")


def _short(value: Any) -> Any:
    # Echo the value so the caller can find it, but never a megabyte of it.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):  # JSON has no NaN or Infinity: name them instead
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray)):
        return _short(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, int):
        return value if abs(value) < 10**15 else _short(str(value))
    if isinstance(value, str):
        return value if len(value) <= _MAX_VALUE_CHARS else value[:_MAX_VALUE_CHARS] + "..."
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        text = repr(value)
    else:
        if len(text) <= _MAX_VALUE_CHARS:
            return value  # small lists and objects are echoed as they came
    return text if len(text) <= _MAX_VALUE_CHARS else text[:_MAX_VALUE_CHARS] + "..."


def _field_name(loc: tuple, prefix: str) -> str:
    name = prefix
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += ("." if name else "") + str(part)
    return name or "body"


def problems_from(
    error: ValidationError,
    *,
    prefix: str = "",
    known: tuple[str, ...] = (),
    accepted: Mapping[str, str] | None = None,
) -> list[dict]:
    """Turn a pydantic error into problems naming field, value and what is accepted.

    ``prefix`` is put before every field name (``profiles[3]``); ``known`` lists the fields
    of the model, shown when an unknown field is sent; ``accepted`` describes fields beyond
    the data contract's (a served model's extra features, the ``/allocate`` fields).
    """
    accepted = accepted or {}
    problems = []
    for item in error.errors(include_url=False):
        loc = tuple(item.get("loc", ()))
        names = [part for part in loc if isinstance(part, str)]
        kind = item.get("type", "")
        if kind == "extra_forbidden":
            text = (
                "no such field; known fields: " + ", ".join(known)
                if known
                else "no fields: this request takes an empty body or {}"
            )
        elif kind.startswith("json") or not names:
            text = "a JSON object with the documented fields (see /docs.json)"
        else:
            text = _accepted_at(names, accepted)
        value = None if kind == "missing" else _short(item.get("input"))
        problems.append(
            {
                "field": _field_name(loc, prefix),
                "value": value,
                "accepted": text,
                "message": item.get("msg", ""),
            }
        )
    return problems


def _accepted_at(names: list[str], accepted: Mapping[str, str]) -> str:
    # The innermost field the API describes: in 'capacity.coaching', the arm id is a key
    # of 'capacity', which says what its values may be.
    for name in reversed(names):
        text = accepted.get(name) or _accepted_text(name)
        if text:
            return text
    return accepted_for(names[-1])


def as_problems(items) -> list[dict]:
    """Problems in this API's shape (field, value, accepted, message), whatever raised them.

    Library errors (a cohort or feature-frame check) report ``row``, ``column`` and ``rule``.
    """
    problems = []
    for item in items or []:
        item = dict(item) if isinstance(item, dict) else {"message": str(item)}
        if "field" not in item:
            where = [
                f"row {item['row']}" if item.get("row") is not None else "",
                str(item.get("column") or ""),
            ]
            item = {
                "field": ", ".join(w for w in where if w) or "body",
                "value": item.get("value"),
                "accepted": str(item.get("rule", "")),
                "message": str(item.get("message", "")),
            }
        problems.append(
            {
                "field": str(item["field"]),
                "value": _short(item.get("value")),
                "accepted": str(item.get("accepted", "")),
                "message": str(item.get("message", "")),
            }
        )
    return problems


PROFILE_FIELDS: tuple[str, ...] = tuple(ProfileRequest.model_fields)


@functools.cache
def profile_list_adapter() -> TypeAdapter:
    """Validates a whole list of profiles in one call (built once, when first needed)."""
    return TypeAdapter(list[ProfileRequest])
