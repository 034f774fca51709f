"""The answers' JSON, byte for byte what the response models give, without validating every
answer as a model (which was most of an answer's serialisation time)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic_core import to_json

from recommender.service._responses import (
    ArmFacts,
    ArmFigures,
    BatchRecommendation,
    BatchResponse,
    ComplementItem,
    ContextBlock,
    Recommendation,
)

__all__ = ["AnswerJSON", "batch_response_json"]

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
        ``arm -> {"name", "cost_per_person", "cost_is_assumption", "cost_basis", "evidence"}``,
        the very dicts the answers use.
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
