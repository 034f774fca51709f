"""Refusals name the field, never repeat a person id or an unknown field's text (red-team
redprivacy).

On main /outcomes already answered "(hidden)" for a person_id and "(not shown)" for an unknown
column, but /recommend, /recommend_batch and /allocate repeated both in their 422 problems and a
crisis answer's ``ignored`` list: an e-mail sent as person_id, a "name" or "notes" field a
program filled with a person's name or a remark about them came back in error bodies, which
clients and gateways commonly log. The field and what is accepted say what to fix.
"""

from __future__ import annotations

import json

from service_fixtures import (  # noqa: F401  (fixtures)
    asgi_client,
    auth,
    linear_model,
    profile,
    service_home,
)

EMAIL = "jane.doe@hospital.example"
NOTE = "Jane said she wants to quit"


def _said(answer) -> str:
    return json.dumps(answer.json())


def test_recommend_refusals_repeat_no_person_id_nor_unknown_text(asgi_client):
    for sent in (
        profile(person_id=EMAIL * 4),  # too long
        profile(person_id=EMAIL, age="forty"),
        profile(person_id=EMAIL, name="Jane Doe", notes=NOTE),
    ):
        answer = asgi_client.post("/recommend", json=sent, headers=auth("program"))
        assert answer.status_code == 422, answer.text
        said = _said(answer)
        assert "jane" not in said.lower(), said
    fields = {p["field"]: p for p in answer.json()["problems"]}
    assert set(fields) == {"name", "notes"}  # named, with what is accepted
    assert fields["name"]["value"] == "(not shown)" and "known fields" in fields["name"]["accepted"]
    number = asgi_client.post("/recommend", json=profile(person_id=4711), headers=auth("program"))
    assert number.status_code == 422 and "4711" not in _said(number)
    assert number.json()["problems"][0]["value"] == "(hidden)"
    age = asgi_client.post("/recommend", json=profile(age="forty"), headers=auth("program"))
    assert age.json()["problems"][0]["value"] == "forty"  # other values are still shown


def test_a_crisis_answer_lists_ignored_fields_without_their_text(asgi_client):
    sent = {"person_id": EMAIL, "crisis_risk": True, "name": "Jane Doe", "notes": NOTE}
    answer = asgi_client.post("/recommend", json=sent, headers=auth("program"))
    assert answer.status_code == 200 and answer.json()["safety"]["resources"]
    assert {p["field"] for p in answer.json()["ignored"]} == {"name", "notes"}
    assert "jane" not in _said(answer).lower()


def test_batch_and_plan_refusals_repeat_no_person_id(asgi_client):
    batch = asgi_client.post(
        "/recommend_batch",
        json={
            "profiles": [
                profile(person_id="a"),
                profile(person_id=EMAIL, age=-4),
                profile(person_id=EMAIL * 4),
                profile(person_id="b", remark=NOTE),
            ]
        },
        headers=auth("program"),
    )
    assert batch.status_code == 200, batch.text
    assert batch.json()["rejected"] == 3 and "jane" not in _said(batch).lower()
    plan = asgi_client.post(
        "/allocate",
        json={"profiles": [profile(person_id=EMAIL), profile(person_id=EMAIL)], "budget": 1e6},
        headers=auth("program"),
    )
    assert plan.status_code == 422, plan.text
    assert "duplicate person_id" in _said(plan) and "profiles[0] has this one" in _said(plan)
    assert "jane" not in _said(plan).lower()


def test_an_entry_that_is_no_object_is_not_repeated(asgi_client):
    # A person id (or a list of them) sent where a profile, an outcome row or the whole body
    # belongs was repeated in clear as the refused value: ids a program sent as
    # ["p-000123", ...] came back in error bodies, which clients and gateways log.
    sent = {
        "/recommend": [EMAIL],
        "/recommend_batch": {"profiles": [profile(person_id="a"), EMAIL, [EMAIL]]},
        "/allocate": {"profiles": [EMAIL, profile(person_id="a")]},
        "/outcomes": {"outcomes": [EMAIL]},
    }
    for route, body in sent.items():
        answer = asgi_client.post(route, json=body, headers=auth("program"))
        assert answer.status_code in (200, 400, 422), (route, answer.text)
        assert "jane" not in _said(answer).lower(), (route, _said(answer))
        problems = answer.json().get("problems") or [
            p for error in answer.json()["errors"] for p in error["problems"]
        ]
        assert problems and all(p["value"] == "(not shown)" for p in problems), problems
        assert all("object" in p["accepted"] for p in problems), problems  # still says what to send
    said = asgi_client.post("/recommend", json="p-000123", headers=auth("program"))
    assert "p-000123" not in _said(said) and said.json()["problems"][0]["field"] == "body"


def test_a_body_that_is_not_json_repeats_no_person_id(asgi_client):
    # A byte-order mark (a file saved by Notepad and posted as it is) or half an emoji (a client
    # cutting an id at 64 UTF-16 units): the 400 repeated the body's first 100 characters, the
    # person id among them. A body that is not JSON is named as the body; a lone surrogate is
    # named at its field, its value hidden as every person_id is.
    headers = {**auth("program"), "Content-Type": "application/json"}
    row = {"person_id": EMAIL, "measured_at": "2026-03-12", "arm_taken": "none"}
    bodies = {
        "/outcomes": [
            (b"\xef\xbb\xbf" + json.dumps({"outcomes": [row]}).encode(), "body", "(not shown)"),
            (
                json.dumps({"outcomes": [row]}).replace(".example", ".example\\ud83d").encode(),
                "outcomes[0].person_id",
                "(hidden)",
            ),
        ],
        "/recommend_batch": [
            (
                b"\xef\xbb\xbf" + json.dumps({"profiles": [profile(person_id=EMAIL)]}).encode(),
                "body",
                "(not shown)",
            ),
        ],
        "/allocate": [
            (
                json.dumps({"profiles": [profile(person_id=EMAIL + "\ud800")]}).encode(),
                "profiles[0].person_id",
                "(hidden)",
            ),
        ],
    }
    for route, sent in bodies.items():
        for body, field, shown in sent:
            answer = asgi_client.post(route, content=body, headers=headers)
            assert "jane" not in answer.text.lower(), (route, answer.text)
            assert answer.status_code == 400, answer.text
            (problem,) = answer.json()["problems"]
            assert problem["field"] == field and problem["value"] == shown, problem


def test_a_person_id_of_spaces_alone_is_refused_as_a_file_s_blank_id_is(asgi_client):
    # A fixed-width export writes a missing id as spaces: /recommend answered it, and every
    # such person shared one hash, so one's outcome could be linked to another's answer.
    # validate already reads a cell of spaces as missing.
    blank = " " * 10
    one = asgi_client.post("/recommend", json=profile(person_id=blank), headers=auth("program"))
    assert one.status_code == 422, one.text
    (problem,) = one.json()["problems"]
    assert problem["field"] == "person_id" and "not only spaces" in problem["accepted"]
    batch = asgi_client.post(
        "/recommend_batch",
        json={"profiles": [profile(person_id="a"), profile(person_id="\t")]},
        headers=auth("program"),
    )
    assert batch.status_code == 200 and batch.json()["rejected"] == 1, batch.text
    row = {"person_id": blank, "measured_at": "2026-03-12", "arm_taken": "none"}
    row.update(ee_followup=20, dp_followup=5, pa_followup=30)
    outcome = asgi_client.post("/outcomes", json={"outcomes": [row]}, headers=auth("program"))
    assert outcome.status_code == 422
    (problem,) = outcome.json()["problems"]
    assert problem["field"] == "outcomes[0].person_id" and "not only spaces" in problem["accepted"]
