"""The eighth pass's shortcuts of the 1,000-row path give what they replace, exactly.

Each is held against its reference: a batch's request ids against ``uuid.uuid4().hex``'s
form, the sentences' remembered number texts against ``format``, the cheaper construction of
assignments and explanations against their constructors, and a batch whose rows share an
offered list (one eligibility mask for all of them) against each person answered alone, with
rows the model gives no estimate for mixed in.
"""

import math
import re
import uuid

import numpy as np
import pytest

from recommender.explain import Contribution, Explanation
from recommender.explain._reasons import _Formatted, _new_explanation
from recommender.policy._assignment import Assignment, _new_assignment
from recommender.service._answer_records import _request_ids
from service_fixtures import LinearModel
from test_fastpath4_equivalence import engine_for, varied_bodies


@pytest.mark.parametrize("n", [0, 1, 7, 8, 1000])
def test_request_ids_are_uuid4_hex(n):
    ids = _request_ids(n)
    assert len(ids) == n == len(set(ids))
    for text in ids:
        assert re.fullmatch(r"[0-9a-f]{32}", text)
        parsed = uuid.UUID(hex=text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and parsed.hex == text
    if n >= 1000:  # every digit but the version's is random; the variant's takes 8, 9, a, b
        for k in range(32):
            seen = {text[k] for text in ids}
            assert seen == {"4"} if k == 12 else seen == set("89ab") if k == 16 else len(seen) > 12


NUMBERS = [
    0.0,
    -0.0,
    0.04,
    -0.04,
    0.05,
    -0.05,
    0.25,
    1.84,
    -0.966,
    2.449999,
    12.345,
    -7.0,
    1e-9,
    -1e-9,
    1e300,
    math.inf,
    -math.inf,
    math.nan,
    3,
    -2,
    0,
    True,
    False,
    np.float64(-0.0),
    np.float64(1.25),
    np.float32(0.1),
]


@pytest.mark.parametrize("spec", ["+.1f", ".1f", ".0%"])
def test_remembered_number_texts_are_format(spec):
    formatted = _Formatted(spec)
    # Each number twice and in both orders, so that a remembered text is read back too (a zero
    # of one sign after the other, an int after its equal float).
    for number in [*NUMBERS, *NUMBERS[::-1], *NUMBERS]:
        assert formatted[number] == format(number, spec), (spec, number)
    rng = np.random.default_rng(8)
    for number in rng.normal(scale=4, size=2000).round(3).tolist() * 2:
        assert formatted[number] == format(number, spec)
    assert 0.0 not in formatted and not any(k != k for k in formatted)


def test_assignments_and_explanations_are_their_constructors():
    fields = ("coaching", 0.25, "thompson", 3, {"coaching": 0.25, "none": 0.75})
    made, built = _new_assignment(*fields), Assignment(*fields)
    assert made == built and repr(made) == repr(built) and hash(made.arm) == hash(built.arm)
    assert list(vars(made).items()) == list(vars(built).items())
    with pytest.raises(AttributeError):
        made.arm = "none"  # still frozen
    fields = (
        "coaching",
        "peer_group",
        (Contribution("role", "physician", -2.0), Contribution("ee", 33, -1.0)),
        (Contribution("role", "physician", -2.5),),
        "Coaching is expected to lower emotional exhaustion by 4.2 points.",
    )
    made, built = _new_explanation(*fields), Explanation(*fields)
    assert type(made) is Explanation and made == built and hash(made) == hash(built)
    assert repr(made) == repr(built) and list(vars(made)) == list(vars(built))


class GapModel(LinearModel):
    """Gives no estimate (NaN) for peer group to people with an EE score above 40, and none
    for balint group's interval to those with DP below 3."""

    def predict(self, encoded, *, alpha=0.1):
        prediction = super().predict(encoded, alpha=alpha)
        ee = encoded["ee"].to_numpy(dtype=float)
        dp = encoded["dp"].to_numpy(dtype=float)
        arms = list(prediction.arms)
        prediction.effect[ee > 40, arms.index("peer_group")] = np.nan
        prediction.upper[dp < 3, arms.index("balint_group")] = np.nan
        return prediction


@pytest.mark.parametrize("policy", ["thompson", "epsilon"])
def test_a_batch_sharing_offered_lists_is_each_persons_own(policy):
    engine = engine_for(policy, cycle=2)
    model = GapModel(
        base=engine.model.base, weights=engine.model.weights, half_width=engine.model.half_width
    )
    engine.model = model
    bodies = varied_bodies(300, seed=80 + len(policy))
    for k, body in enumerate(bodies):  # many rows share each offered list, some none
        if k % 3 == 0:
            body.pop("offered", None)
        elif k % 3 == 1:
            body["offered"] = ["coaching", "peer_group", "balint_group", "mindfulness"]
    rows, _, _ = engine.check_rows(bodies)
    together = engine.recommend(rows, caller_role="program", batch_id="b")
    alone = [engine.recommend([row], caller_role="program")[0] for row in rows]
    reasons = [e["reason"] for a in together for e in a["excluded"]]
    assert any("returned no estimate" in r for r in reasons)
    assert any("not eligible" in r for r in reasons)
    assert sum(not a["excluded"] for a in together) > 50
    for a, b in zip(together, alone):
        assert repr({**a, "request_id": ""}) == repr({**b, "request_id": ""})
