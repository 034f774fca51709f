"""Every field a route takes says what it accepts, in the answer itself: a 422 naming a field
the service did not describe said "see the OpenAPI document (/docs.json)" (POST /erasures'
person_ids, dry_run; /outcomes' correct). The fields are walked in the service's own OpenAPI
document (every route's body, nested objects and list items included, and its query
parameters), so a field added later without words fails here. And /erasures refusals of
person_ids, through the app: field and position named, the accepted form given, no id echoed.
"""

from __future__ import annotations

import pytest

from recommender.service._requests import KEYED_FIELDS, MAX_BATCH_ROWS, STORED_ID_MAX_LENGTH
from recommender.service._requests import accepted_text
from service_fixtures import asgi_client, auth, linear_model, service_home  # noqa: F401

_SEE_DOCS = "see the OpenAPI"


def _properties(schema: dict, schemas: dict, seen: frozenset = frozenset()):
    """``(name, schema)`` of every property in ``schema``, through references, alternatives,
    list items and map values."""
    reference = schema.get("$ref")
    if reference:
        name = reference.rsplit("/", 1)[-1]
        if name not in seen:
            yield from _properties(schemas[name], schemas, seen | {name})
        return
    for name, inner in schema.get("properties", {}).items():
        yield name, inner
        yield from _properties(inner, schemas, seen)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for inner in schema.get(key, []):
            yield from _properties(inner, schemas, seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from _properties(schema[key], schemas, seen)


def _route_properties(document: dict) -> dict[str, list[tuple[str, dict]]]:
    """Per ``METHOD path``, the properties its body holds (at any depth) and its parameters,
    each with its schema."""
    schemas = document.get("components", {}).get("schemas", {})
    routes = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            found = [(p["name"], p.get("schema", {})) for p in operation.get("parameters", [])]
            for content in operation.get("requestBody", {}).get("content", {}).values():
                found += _properties(content.get("schema", {}), schemas)
            routes[f"{method.upper()} {path}"] = found
    return routes


def test_every_field_of_every_route_says_what_it_accepts(asgi_client):
    routes = _route_properties(asgi_client.get("/docs.json").json())
    fields = {route: {name for name, _ in found} for route, found in routes.items()}
    # the walk reaches nested fields and query parameters, not only the top of each body
    assert {"person_ids", "dry_run"} <= fields["POST /erasures"]
    assert {"outcomes", "correct", "measured_at", "arm_taken"} <= fields["POST /outcomes"]
    assert {"profiles", "budget", "capacity", "floors", "person_id"} <= fields["POST /allocate"]
    assert {"since", "table"} <= fields["GET /audit/export"]
    assert {"age", "offered", "crisis_risk"} <= fields["POST /recommend"]
    undescribed = {
        f"{route}: {name}"
        for route, names in fields.items()
        for name in names
        if accepted_text(name) is None
    }
    assert not undescribed, sorted(undescribed)


def test_every_object_keyed_by_the_callers_names_is_known_as_such(asgi_client):
    # Its keys are no fields: a key named like one ("age") must not take that field's text.
    routes = _route_properties(asgi_client.get("/docs.json").json())
    keyed = {
        name
        for found in routes.values()
        for name, schema in found
        # a map: the schema of its values, no properties of its own
        if isinstance(schema.get("additionalProperties"), dict) and not schema.get("properties")
    }
    assert keyed == KEYED_FIELDS


def test_a_key_named_like_a_field_is_described_by_its_object(asgi_client):
    body = {"profiles": [{"person_id": "p-0"}], "capacity": {"age": -1}, "floors": {"gender": 2}}
    answer = asgi_client.post("/allocate", json=body, headers=auth("program"))
    assert answer.status_code == 422, answer.text
    accepted = {p["field"]: p["accepted"] for p in answer.json()["problems"]}
    assert accepted == {
        "capacity.age": accepted_text("capacity"),
        "floors.gender": accepted_text("floors"),
    }


def _refused(client, body) -> dict:
    answer = client.post("/erasures", json=body, headers=auth("program"))
    assert answer.status_code == 422, answer.text
    assert _SEE_DOCS not in answer.text
    return answer.json()


_LONG = "p-" + "q" * (STORED_ID_MAX_LENGTH - 1)  # one character more than any store holds


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"person_ids": "p-0"}, "person_ids", "valid array"),
        ({"person_ids": ["p-0"] * (MAX_BATCH_ROWS + 1)}, "person_ids", f"{MAX_BATCH_ROWS}"),
        ({"person_ids": ["p-0", 7]}, "person_ids[1]", "valid string"),
        ({"person_ids": ["p-0", {"id": "p-1"}]}, "person_ids[1]", "valid string"),
        (
            {"person_ids": ["p-0", "p-1", _LONG]},
            "person_ids[2]",
            f"at most {STORED_ID_MAX_LENGTH} characters",
        ),
        ({"person_ids": ["p-0", "   "]}, "person_ids[1]", "only spaces"),  # erase_people's
    ],
)
def test_a_refused_person_ids_names_its_position_and_the_accepted_form(
    asgi_client, body, field, message
):
    refused = _refused(asgi_client, body)
    (problem,) = refused["problems"]
    assert problem["field"] == field and problem["value"] == "(hidden)"
    assert message in problem["message"]
    accepted = problem["accepted"]
    assert f"1 to {MAX_BATCH_ROWS:,} person ids" in accepted
    assert f"1 to {STORED_ID_MAX_LENGTH:,} characters" in accepted
    assert refused["error"].startswith(field) and "accepted:" in refused["error"]
    for person in ("p-0", "p-1", "qqqq"):
        assert person not in refused["error"] and person not in str(refused["problems"])


def test_an_id_as_long_as_a_store_holds_is_looked_for_and_a_crisis_answer_keeps_it_erasable(
    asgi_client,
):
    # A crisis answer needs no valid profile: it keeps the first characters of any id, as many
    # as /erasures takes, so the person it recorded can be erased by them.
    crisis = asgi_client.post(
        "/recommend",
        json={"person_id": _LONG + "tail", "crisis_risk": True},
        headers=auth("program"),
    )
    assert crisis.status_code == 200, crisis.text
    kept = _LONG[:STORED_ID_MAX_LENGTH]
    found = asgi_client.post(
        "/erasures",
        json={"person_ids": [kept, "p-nobody"], "dry_run": True},
        headers=auth("program"),
    )
    assert found.status_code == 200, found.text
    assert (found.json()["found"], found.json()["missing"]) == (1, [1])
    assert "qqqq" not in found.text


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/erasures", {"person_ids": ["p-0"], "dry_run": "yes"}, "dry_run"),
        ("/outcomes", {"outcomes": [{}], "correct": 1}, "correct"),
    ],
)
def test_a_flag_that_said_see_the_openapi_document_says_true_or_false(
    asgi_client, path, body, field
):
    answer = asgi_client.post(path, json=body, headers=auth("program"))
    assert answer.status_code == 422, answer.text
    (problem,) = [p for p in answer.json()["problems"] if p["field"] == field]
    assert problem["accepted"] == "true or false" and _SEE_DOCS not in answer.text


def test_an_unknown_export_table_names_every_table(asgi_client):
    answer = asgi_client.get("/audit/export?table=people", headers=auth("auditor"))
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["problems"]
    assert problem["field"] == "table" and problem["value"] == "people"
    assert all(
        table in problem["accepted"] for table in ("recommendations", "outcomes", "erasures")
    )
