"""A batch's JSON says of each person what that person's own ``/recommend`` answer says.

The batch path shares the model's calls, the rankings, the draws and the explanations among
its rows and writes its answers compactly (each arm's name, cost and evidence, the disclaimer,
the complements and the context once, in the envelope). Put back into each answer, what the
batch sends must be, byte for byte, the JSON of the person answered alone: crisis rows,
referral (severe) profiles, every role, offered lists and none, profiles outside the training
data, explored and greedy draws.
"""

import json

import pytest

from recommender.cohort import CATEGORIES
from recommender.service._answer_json import batch_response_json
from recommender.service._responses import Recommendation
from test_fastpath4_equivalence import engine_for, varied_bodies


def _batch_json(engine, bodies) -> dict:
    """What the service's /recommend_batch sends for ``bodies`` (see
    ``recommender.service._answering``), parsed."""
    rows, index, errors = engine.check_rows(bodies)
    answers = engine.recommend(rows, caller_role="program", batch_id="b", compact=True)
    envelope = {
        "batch_id": "b",
        "model_version": engine.version,
        "answered": len(answers),
        "rejected": len(errors),
        "result_index": index,
        "errors": errors,
        "arms": engine.arm_facts(answers),
        "disclaimer": engine.config.disclaimer,
        "complements": engine.complements,
        "context": engine.context,
    }
    body = batch_response_json(answers, **envelope)
    return json.loads(body)


def _whole(answer: dict, envelope: dict) -> bytes:
    """A batch's answer with what the envelope gives once put back, as /recommend writes it."""
    assert answer["disclaimer"] is None and answer["complements"] == []
    assert answer["context"] is None
    whole = {
        **answer,
        "request_id": "",
        "disclaimer": envelope["disclaimer"],
        "complements": envelope["complements"],
        "context": envelope["context"],
        "ranking": [{**item, **envelope["arms"][item["arm"]]} for item in answer["ranking"]],
    }
    return Recommendation.model_validate(whole).model_dump_json().encode()


@pytest.mark.parametrize("policy", ["thompson", "epsilon"])
def test_a_batchs_json_is_each_persons_own_answers_json(policy):
    engine = engine_for(policy, cycle=4, support=True)
    bodies = varied_bodies(240, seed=40 + len(policy))
    envelope = _batch_json(engine, bodies)
    results = envelope["results"]
    assert envelope["result_index"] == list(range(len(bodies))) and not envelope["errors"]
    # The batch holds every kind of answer the service gives differently.
    levels = {a["safety"]["level"] for a in results}
    assert levels == {"crisis", "referral", "routine"}
    assert {b["role"] for b in bodies} == set(CATEGORIES["role"])
    assert any("offered" in b for b in bodies) and any("offered" not in b for b in bodies)
    assert any(a["outside_training_data"] for a in results)
    assert any(a["excluded"] for a in results)
    assert any(a["assignment"] and a["assignment"]["probability"] < 1 for a in results)
    for body, answer in zip(bodies, results):
        row = body if body.get("crisis_risk") else engine.check_row(body)
        alone = engine.recommend([row], caller_role="program")[0]
        expected = engine.answer_json.recommendation({**alone, "request_id": ""})
        assert _whole(answer, envelope) == expected, body["person_id"]
