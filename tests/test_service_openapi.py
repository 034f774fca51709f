"""The OpenAPI document (/docs.json) describes what the service sends and accepts.

A program generates its client from this document: every answer the service gives, crisis
answers and refusals included, must validate against the schema the document gives for its
route and status, and every body the service accepts against the request schema. (BentoML's
own document said ``recommended`` was never null, and listed none of the refusals' statuses.)
"""

import json
import re

import jsonschema_rs
import pytest

from service_fixtures import (  # noqa: F401  (fixtures)
    KEYS,
    PROFILE,
    LinearModel,
    asgi_client,
    auth,
    linear_model,
    profile,
    service_home,
    with_training_support,
)


@pytest.fixture
def document(asgi_client):
    response = asgi_client.get("/docs.json")
    assert response.status_code == 200
    return response.json()


def _validator(document: dict, schema: dict):
    return jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]})


def _answer_schema(document, path, status, method="post"):
    responses = document["paths"][path][method]["responses"]
    assert str(status) in responses, f"{path} answers {status}, which its document leaves out"
    return responses[str(status)]["content"]["application/json"]["schema"]


def assert_documented(document, path, response, method="post"):
    schema = _answer_schema(document, path, response.status_code, method)
    errors = [
        f"{'/'.join(map(str, e.instance_path))}: {e.message}"
        for e in _validator(document, schema).iter_errors(response.json())
    ]
    assert errors == [], f"{path} {response.status_code}: {errors[:5]}"


def assert_accepted_by_the_document(document, path, body):
    schema = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    errors = [e.message for e in _validator(document, schema["schema"]).iter_errors(body)]
    assert errors == [], f"{path}: the document refuses a body the service answers: {errors[:3]}"


def test_every_reference_resolves_and_the_document_is_ours(document):
    refs = set(re.findall(r"#/components/schemas/([A-Za-z0-9_.-]+)", json.dumps(document)))
    assert refs <= set(document["components"]["schemas"])
    assert document["openapi"].startswith("3.1")  # JSON Schema 2020-12, as pydantic writes it
    assert document["info"]["title"] == "burnout-recommender"
    assert document["info"]["version"] not in ("None", "")
    assert "BentoML Slack" not in json.dumps(document["info"])
    assert "not a diagnosis" in document["info"]["description"]


@pytest.mark.parametrize(
    "path, method, roles",
    [
        ("/recommend", "post", "program, scientist"),
        ("/outcomes", "post", "program"),
        ("/reload", "post", "scientist"),
        ("/audit/export", "get", "auditor"),
        ("/model_card.json", "get", "auditor, scientist"),
    ],
)
def test_protected_routes_say_how_to_send_a_key_and_which_roles_may_call(
    document, path, method, roles
):
    operation = document["paths"][path][method]
    schemes = document["components"]["securitySchemes"]
    assert {name for option in operation["security"] for name in option} <= set(schemes)
    assert schemes["bearer"]["scheme"] == "bearer" and schemes["apiKey"]["name"] == "x-api-key"
    assert f"Roles: {roles}." in operation["description"]
    assert "401" in operation["responses"] and "403" in operation["responses"]


def test_answers_and_crisis_answers_match_the_documented_schema(asgi_client, document):
    answers = {
        "an answer": asgi_client.post("/recommend", json=PROFILE, headers=auth("program")),
        # recommended, explanation, assignment are null in a crisis answer
        "a crisis answer": asgi_client.post(
            "/recommend", json={"crisis_risk": True, "role": "nurse"}, headers=auth("program")
        ),
    }
    for name, response in answers.items():
        assert response.status_code == 200, name
        assert_documented(document, "/recommend", response)
    crisis = answers["a crisis answer"].json()
    assert crisis["recommended"] is None and crisis["safety"]["resources"]


class TestOutsideTheTrainingData:
    """Answers for profiles outside the data the served model learnt from."""

    @pytest.fixture
    def linear_model(self):  # served by asgi_client: a model that records its support
        return with_training_support(LinearModel())

    def test_answers_naming_the_fields_match_the_documented_schema_and_say_so(
        self, asgi_client, document
    ):
        outside = profile(person_id="far", age=80, role="app")
        fields = ["age", "role"]
        one = asgi_client.post("/recommend", json=outside, headers=auth("program"))
        assert one.status_code == 200
        assert_documented(document, "/recommend", one)
        assert [item["field"] for item in one.json()["outside_training_data"]] == fields
        assert "effects are extrapolated" in one.json()["ranking_note"]

        batch = asgi_client.post(
            "/recommend_batch",
            json={"profiles": [outside, PROFILE, {"crisis_risk": True}]},
            headers=auth("program"),
        )
        assert batch.status_code == 200
        assert_documented(document, "/recommend_batch", batch)
        results = batch.json()["results"]
        assert [item["field"] for item in results[0]["outside_training_data"]] == fields
        assert "effects are extrapolated" in results[0]["ranking_note"]
        assert [r["outside_training_data"] for r in results[1:]] == [[], None]

        plan = asgi_client.post(
            "/allocate", json={"profiles": [outside, PROFILE]}, headers=auth("program")
        )
        assert plan.status_code == 200
        assert_documented(document, "/allocate", plan)
        far, near = plan.json()["assignments"]
        assert [item["field"] for item in far["outside_training_data"]] == fields
        assert "effects are extrapolated" in far["note"]
        assert near["outside_training_data"] == [] and near["note"] is None


def test_a_crisis_flagged_body_missing_fields_is_allowed_by_the_document(document):
    assert_accepted_by_the_document(document, "/recommend", {"crisis_risk": True})
    assert_accepted_by_the_document(document, "/recommend", PROFILE)
    assert_accepted_by_the_document(
        document, "/allocate", {"profiles": [PROFILE, {"crisis_risk": True}], "budget": None}
    )


def test_a_batch_with_refused_and_crisis_entries_matches_the_documented_schema(
    asgi_client, document
):
    bodies = [PROFILE, profile(age=3), {"crisis_risk": True}, {"x": 1}]
    response = asgi_client.post(
        "/recommend_batch", json={"profiles": bodies}, headers=auth("program")
    )
    assert response.status_code == 200
    assert_documented(document, "/recommend_batch", response)


@pytest.mark.parametrize(
    "path, body, headers, status",
    [
        ("/recommend", profile(age=3), auth("program"), 422),
        ("/recommend", profile(crisis_risk=True), {}, 401),  # crisis_results all the same
        ("/recommend", PROFILE, auth("auditor"), 403),
        ("/recommend_batch", {"profiles": []}, auth("program"), 422),
        ("/allocate", {"profiles": [PROFILE], "budget": -1}, auth("program"), 422),
        ("/outcomes", {"outcomes": [{"person_id": "p"}]}, auth("program"), 422),
        ("/reload", None, auth("program"), 403),
    ],
)
def test_refusals_are_documented_with_their_status_and_body(
    asgi_client, document, path, body, headers, status
):
    response = asgi_client.post(path, json=body, headers=headers)
    assert response.status_code == status
    assert_documented(document, path, response)
    if status == 401:
        assert response.json()["crisis_results"]


def test_a_body_that_is_not_json_is_a_documented_400(asgi_client, document):
    response = asgi_client.post(
        "/recommend",
        content=b"{not json",
        headers={**auth("program"), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert_documented(document, "/recommend", response)


def test_the_audit_export_is_documented_as_csv(asgi_client, document):
    response = asgi_client.get(
        "/audit/export", headers={"Authorization": f"Bearer {KEYS['auditor']}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "text/csv" in document["paths"]["/audit/export"]["get"]["responses"]["200"]["content"]


def test_every_effect_an_answer_gives_has_its_documented_interval(asgi_client, document):
    # DP and PA too, not EE alone (the one that ranks): in one answer's ranking and in a
    # batch's, each bound documented beside its effect.
    schemas = document["components"]["schemas"]
    for name in ("ArmFigures", "ArmEstimate"):
        fields = list(schemas[name]["properties"])
        for outcome in ("ee", "dp", "pa"):
            at = fields.index(f"{outcome}_effect")
            assert fields[at : at + 3] == [f"{outcome}_{k}" for k in ("effect", "lower", "upper")]
            assert "interval" in schemas[name]["properties"][f"{outcome}_lower"]["description"]
    one = asgi_client.post("/recommend", json=PROFILE, headers=auth("program")).json()
    batch = asgi_client.post(
        "/recommend_batch", json={"profiles": [PROFILE]}, headers=auth("program")
    ).json()
    for ranking in (one["ranking"], batch["results"][0]["ranking"]):
        for item in ranking:
            for outcome in ("ee", "dp", "pa"):
                lower, effect, upper = (
                    item[f"{outcome}_{k}"] for k in ("lower", "effect", "upper")
                )
                assert lower <= effect <= upper, (item["arm"], outcome)
                if item["arm"] != "none":
                    assert lower < upper
