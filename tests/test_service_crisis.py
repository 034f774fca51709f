"""Issue 9, item 4: a crisis flag always gets crisis resources, whatever else fails.

At the ASGI level (the service's own app in process): a flag with nothing but a person_id, a
real read-only audit database, a champion that cannot be loaded, a crisis row inside an invalid
batch and inside a plan that cannot be made. Item 5's three statements are checked at the end.
"""

import json
import logging
import sqlite3

import pytest
import yaml

from recommender.catalog import load_catalog
from recommender.service._responses import BatchResponse, Recommendation
from service_fixtures import (  # noqa: F401  (fixtures)
    PROFILE,
    LinearModel,
    _app,
    asgi_client,
    auth,
    linear_model,
    profile,
    service_home,
)

CRISIS_ONLY = {"person_id": "x-77", "crisis_risk": True}


def names(answer):
    return [r["name"] for r in answer["safety"]["resources"]]


def audit_rows(client):
    export = client.get("/audit/export", headers=auth("auditor"))
    assert export.status_code == 200
    return export.text.strip().splitlines()[1:]


# -- a flag and a person_id are enough ---------------------------------------------------------
def test_a_person_id_and_the_flag_alone_get_crisis_resources(asgi_client, linear_model):
    response = asgi_client.post("/recommend", json=CRISIS_ONLY, headers=auth("program"))
    assert response.status_code == 200, response.text
    answer = response.json()
    Recommendation.model_validate(answer)
    assert answer["safety"]["level"] == "crisis" and answer["ranking"] == []
    assert answer["safety"]["recorded_in"] == "audit log" and answer["ignored"] == []
    assert any("988" in r["contact"] for r in answer["safety"]["resources"])
    assert linear_model.calls == []
    (row,) = audit_rows(asgi_client)
    assert ",crisis," in row and "x-77" not in row


@pytest.mark.parametrize("flag", [True, "true", 1])
def test_a_flag_sent_in_a_loose_type_still_counts(asgi_client, flag):
    answer = asgi_client.post(
        "/recommend", json={"person_id": "x", "crisis_risk": flag}, headers=auth("program")
    ).json()
    assert answer["safety"]["level"] == "crisis"


def test_each_role_gets_only_the_resources_that_serve_it(asgi_client):
    def resources(role):
        return asgi_client.post(
            "/recommend", json={**CRISIS_ONLY, "role": role}, headers=auth("program")
        ).json()["safety"]["resources"]

    for role in ("physician", "resident"):
        line = next(r for r in resources(role) if r["name"].startswith("Physician Support Line"))
        assert line["contact"] == "1-888-409-0141"
        assert "Eastern" in line["hours"] and "physicians" in line["serves"]
    for role in ("nurse", "app"):
        given = resources(role)
        assert not any("Physician" in r["name"] for r in given)
        assert any("988" in r["contact"] for r in given)
    for resource in resources("nurse"):  # every resource says whom it serves and when
        assert resource["serves"] and resource["hours"]


def test_a_severe_profile_is_referred_where_its_role_is_served(asgi_client):
    def referral(role):
        body = profile(role=role, ee=50, dp=20, specialty="internal_medicine")
        safety = asgi_client.post("/recommend", json=body, headers=auth("program")).json()["safety"]
        assert safety["level"] == "referral"
        return safety["referral"]

    physician, nurse, app = referral("physician"), referral("nurse"), referral("app")
    assert "physician health program" in physician["to"]
    assert "physician health program" not in nurse["to"] and "nurses" in nurse["to"]
    assert "employee assistance program" in app["to"]
    for item in (physician, nurse, app):
        assert "confidential" in item["confidentiality"]


# -- a real read-only audit database -------------------------------------------------------------
@pytest.fixture
def read_only_audit(service_home, monkeypatch):
    """serve.yaml pointing at an audit database that SQLite opens read-only."""
    from recommender.paths import config_path
    from recommender.service import AuditLog

    path = service_home / "audit-ro.db"
    AuditLog(f"sqlite:///{path}", salt=None).close()  # the tables exist; nothing may be added
    settings = yaml.safe_load(config_path("serve.yaml").read_text())
    settings["audit"]["url"] = f"sqlite:///file:{path}?mode=ro&uri=true"
    config = service_home / "serve-ro.yaml"
    config.write_text(yaml.safe_dump(settings))
    monkeypatch.setenv("RECOMMENDER_SERVE_CONFIG", str(config))
    return path


def test_a_read_only_audit_database_still_gives_crisis_answers(
    read_only_audit, asgi_client, linear_model, caplog
):
    with caplog.at_level(logging.WARNING, logger="recommender.service"):
        response = asgi_client.post("/recommend", json=CRISIS_ONLY, headers=auth("program"))
    assert response.status_code == 200, response.text
    safety = response.json()["safety"]
    assert safety["level"] == "crisis" and safety["resources"]
    assert safety["recorded_in"].startswith("service log (fallback")
    assert "OperationalError" in safety["recorded_in"]
    # recorded in the service log with the hashed id, never the raw one
    fallback = [r.getMessage() for r in caplog.records if "not in the audit log" in r.getMessage()]
    assert len(fallback) == 1 and "x-77" not in caplog.text
    entry = json.loads(fallback[0].split(": ", 1)[1])
    assert entry["request_id"] == response.json()["request_id"]
    assert entry["safety_level"] == "crisis" and len(entry["person_hash"]) == 64

    # everything else is unanswered (503), the crisis rows of a batch answered all the same
    single = asgi_client.post("/recommend", json=PROFILE, headers=auth("program"))
    assert single.status_code == 503 and "please retry" in single.json()["error"]
    batch = asgi_client.post(
        "/recommend_batch",
        headers=auth("program"),
        json={"profiles": [profile(person_id="a"), {"person_id": "b", "crisis_risk": True}]},
    )
    assert batch.status_code == 503
    (crisis,) = batch.json()["crisis_results"]
    assert crisis["index"] == 1 and crisis["answer"]["safety"]["resources"]
    assert crisis["answer"]["safety"]["recorded_in"].startswith("service log")


# -- an audit store that could not be opened at start ---------------------------------------------
def test_a_store_that_could_not_be_opened_is_a_503_for_every_answer_but_a_crisis_one(
    service_home, monkeypatch, linear_model
):
    """Found with a real `recommender serve` given a wrong database password: the worker starts
    without a store, and every routine /recommend (and a batch without crisis rows) was a 500."""
    from starlette.testclient import TestClient

    from recommender.service import service as service_module

    (service_home / "not-a-folder").write_text("")
    monkeypatch.setenv("RECOMMENDER_AUDIT_URL", f"sqlite:///{service_home}/not-a-folder/a.db")
    monkeypatch.setattr(service_module, "load_champion_model", lambda: (linear_model, "7"))
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        assert client.get("/readyz").status_code != 200
        crisis = client.post("/recommend", json=CRISIS_ONLY, headers=auth("program"))
        assert crisis.status_code == 200 and crisis.json()["safety"]["resources"]
        assert crisis.json()["safety"]["recorded_in"].startswith("service log (fallback")
        refused = client.post("/recommend", json=PROFILE, headers=auth("program"))
        assert refused.status_code == 503, refused.text
        assert "could not be opened when the service started" in refused.json()["error"]
        batch = client.post(
            "/recommend_batch", json={"profiles": [profile(person_id="a")]}, headers=auth("program")
        )
        assert batch.status_code == 503, batch.text
    assert linear_model.calls == []  # nothing was scored that could not be recorded


# -- an audit store another process holds locked ------------------------------------------------
def test_a_locked_audit_store_does_not_hold_back_a_crisis_answer(
    asgi_client, service_home, monkeypatch
):
    from recommender.service import _crisis

    monkeypatch.setattr(_crisis, "CRISIS_RECORD_WAIT", 0.2)
    assert asgi_client.post("/recommend", json=PROFILE, headers=auth("program")).status_code == 200
    locker = sqlite3.connect(service_home / "audit.db", isolation_level=None, timeout=1)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        response = asgi_client.post(
            "/recommend", json={"person_id": "c-6", "crisis_risk": True}, headers=auth("program")
        )
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert response.status_code == 200, response.text
    safety = response.json()["safety"]
    assert safety["level"] == "crisis" and safety["resources"]
    # Given while the store was still locked: recorded in the service log, and said so.
    assert safety["recorded_in"].startswith("service log (fallback")
    assert "did not confirm" in safety["recorded_in"]


@pytest.mark.parametrize("route", ["/recommend_batch", "/allocate"])
def test_a_locked_audit_store_does_not_hold_back_a_batchs_crisis_rows(
    asgi_client, service_home, monkeypatch, linear_model, route
):
    from recommender.service import _crisis

    monkeypatch.setattr(_crisis, "CRISIS_RECORD_WAIT", 0.2)
    assert asgi_client.post("/recommend", json=PROFILE, headers=auth("program")).status_code == 200
    scored = list(linear_model.calls)
    rows = [profile(person_id="ok"), {"person_id": "c-7", "crisis_risk": True}]
    body = {"profiles": rows, "budget": 10_000} if route == "/allocate" else {"profiles": rows}
    locker = sqlite3.connect(service_home / "audit.db", isolation_level=None, timeout=1)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        response = asgi_client.post(route, json=body, headers=auth("program"))
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    # The crisis records were not confirmed in time, so the store is not waited for again for
    # the others (SQLite's busy timeout): 503 at once, the crisis answer given.
    assert response.status_code == 503, response.text
    assert "did not take this request's crisis answers" in response.json()["error"]
    (crisis,) = response.json()["crisis_results"]
    assert crisis["index"] == 1 and crisis["answer"]["safety"]["resources"]
    assert linear_model.calls == scored  # the others were neither scored nor planned


def test_an_audit_file_deleted_while_serving_is_not_ready_and_still_gives_crisis_answers(
    asgi_client, service_home
):
    assert asgi_client.post("/recommend", json=PROFILE, headers=auth("program")).status_code == 200
    assert asgi_client.get("/readyz").status_code == 200
    for part in service_home.glob("audit.db*"):
        part.unlink()
    # Every answer but a crisis one is 503 until a restart: /readyz says so, so that traffic
    # goes to replicas that can answer.
    assert asgi_client.get("/readyz").status_code != 200
    refused = asgi_client.post("/recommend", json=PROFILE, headers=auth("program"))
    assert refused.status_code == 503 and "AuditFileReplaced" in refused.json()["error"]
    assert "restart" in refused.json()["error"]
    crisis = asgi_client.post("/recommend", json=CRISIS_ONLY, headers=auth("program"))
    assert crisis.status_code == 200
    assert crisis.json()["safety"]["recorded_in"].startswith("service log (fallback")


# -- a champion that cannot be loaded -------------------------------------------------------------
@pytest.fixture
def unloadable_champion(service_home, monkeypatch):
    """The service's app whose champion cannot be loaded (a broken artifact), and a switch to
    make the next load work."""
    from starlette.testclient import TestClient

    from recommender.service import service as service_module

    state = {"model": None}

    def load():
        if state["model"] is None:
            raise OSError("the champion's artifact folder is missing: model.pkl")
        return state["model"], "9"

    monkeypatch.setattr(service_module, "load_champion_model", load)
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        yield client, state


def test_without_a_loadable_champion_crisis_answers_are_given_and_reload_brings_the_model(
    unloadable_champion,
):
    client, state = unloadable_champion
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code != 200
    crisis = client.post(
        "/recommend", json={**CRISIS_ONLY, "role": "nurse"}, headers=auth("program")
    )
    assert crisis.status_code == 200, crisis.text
    answer = crisis.json()
    Recommendation.model_validate(answer)
    assert answer["safety"]["level"] == "crisis" and answer["model_version"] is None
    assert not any("Physician" in name for name in names(answer))
    assert answer["context"]["organisational_change"]

    refused = client.post("/recommend", json=PROFILE, headers=auth("program"))
    assert refused.status_code == 503
    assert "artifact folder is missing" in refused.json()["error"]
    plan = client.post(
        "/allocate",
        headers=auth("program"),
        json={"profiles": [profile(person_id="a"), {"person_id": "b", "crisis_risk": True}]},
    )
    assert plan.status_code == 503 and plan.json()["crisis_results"][0]["index"] == 1
    assert client.get("/model_card", headers=auth("auditor")).status_code == 503

    state["model"] = LinearModel()
    reloaded = client.post("/reload", headers=auth("scientist"))
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json() == {
        "previous_version": None,
        "model_version": "9",
        "announced": True,
        "catalog_version": load_catalog().version,
        "catalog_sha256": load_catalog().sha256,
    }
    assert client.get("/readyz").status_code == 200
    assert (
        client.post("/recommend", json=PROFILE, headers=auth("program")).json()["recommended"]
        == "coaching"
    )
    rows = audit_rows(client)
    assert len(rows) == 3 and sum(",crisis," in row for row in rows) == 2


def test_a_broken_catalog_still_gives_crisis_answers_and_reload_loads_it_once_fixed(
    service_home, monkeypatch, tmp_path
):
    # A program's edit broke configs/interventions.yaml: every worker failed at start (the
    # catalog was read before anything could answer), so a flagged request got no answer.
    import shutil

    from starlette.testclient import TestClient

    from recommender.paths import config_dir
    from recommender.service import service as service_module

    configs = tmp_path / "configs"
    shutil.copytree(config_dir(), configs)
    catalog = configs / "interventions.yaml"
    good = catalog.read_text()
    catalog.write_text(good.replace("version:", "version: [", 1))
    monkeypatch.setenv("RECOMMENDER_CONFIG_DIR", str(configs))
    monkeypatch.setattr(service_module, "load_champion_model", lambda: (LinearModel(), "9"))
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        assert client.get("/livez").status_code == 200
        assert client.get("/readyz").status_code != 200
        crisis = client.post(
            "/recommend", json={**CRISIS_ONLY, "role": "resident"}, headers=auth("program")
        )
        assert crisis.status_code == 200, crisis.text
        answer = crisis.json()
        Recommendation.model_validate(answer)
        assert answer["safety"]["level"] == "crisis" and names(answer)
        refused = client.post("/recommend", json=PROFILE, headers=auth("program"))
        assert refused.status_code == 503
        assert "the intervention catalog could not be loaded" in refused.json()["error"]
        outcome = client.post("/outcomes", json={"outcomes": []}, headers=auth("program"))
        assert outcome.status_code in (422, 503) and outcome.status_code != 500
        still = client.post("/reload", headers=auth("scientist"))
        assert still.status_code == 409
        assert "catalog could not be loaded" in still.json()["error"]

        catalog.write_text(good)
        reloaded = client.post("/reload", headers=auth("scientist"))
        assert reloaded.status_code == 200, reloaded.text
        assert client.get("/readyz").status_code == 200
        served = client.post("/recommend", json=PROFILE, headers=auth("program"))
        assert served.status_code == 200 and served.json()["recommended"] == "coaching"


# -- a crisis row neither blocks nor is blocked --------------------------------------------------
def test_a_crisis_row_inside_an_invalid_batch_gets_its_resources(asgi_client, linear_model):
    rows = [
        {"person_id": "c1", "crisis_risk": True, "age": 5},  # crisis, and invalid
        profile(person_id="bad", age=5),
        profile(person_id="ok"),
        {"person_id": "c2", "crisis_risk": True},
    ]
    response = asgi_client.post(
        "/recommend_batch", json={"profiles": rows}, headers=auth("program")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    BatchResponse.model_validate(body)
    assert body["result_index"] == [0, 2, 3] and [e["index"] for e in body["errors"]] == [1]
    first, scored, last = body["results"]
    assert first["safety"]["level"] == last["safety"]["level"] == "crisis"
    assert [p["field"] for p in first["ignored"]] == ["profiles[0].age"]
    assert scored["recommended"] and linear_model.calls == [1]  # crisis rows never scored


def test_a_plan_refused_for_an_invalid_profile_still_carries_the_crisis_answers(
    asgi_client, linear_model
):
    rows = [
        profile(person_id="a", ee=30),
        profile(person_id="b", age=5),
        {"person_id": "c", "crisis_risk": True, "role": "physician"},
    ]
    response = asgi_client.post("/allocate", json={"profiles": rows}, headers=auth("program"))
    assert response.status_code == 422
    body = response.json()
    assert [p["field"] for p in body["problems"]] == ["profiles[1].age"]
    (crisis,) = body["crisis_results"]
    assert crisis["index"] == 2 and crisis["answer"]["safety"]["level"] == "crisis"
    assert "Physician Support Line (US)" in names(crisis["answer"])
    assert linear_model.calls == []  # nothing reached the model, nor the solver
    assert len(audit_rows(asgi_client)) == 1  # the crisis answer is recorded


def test_a_plan_puts_crisis_rows_aside_and_plans_for_the_others(asgi_client, linear_model):
    rows = [profile(person_id="a", ee=30), {"person_id": "c", "crisis_risk": True}]
    body = asgi_client.post(
        "/allocate", json={"profiles": rows, "budget": 5000}, headers=auth("program")
    ).json()
    planned, crisis = body["assignments"]
    assert planned["allocated"] and crisis["allocated"] is None
    assert crisis["safety"]["level"] == "crisis" and linear_model.calls == [1]
    assert body["context"]["organisational_change"]


# -- item 5: every answer and plan says three things ----------------------------------------------
def test_every_answer_says_organisational_change_training_data_and_one_effect_arms(
    service_home, monkeypatch
):
    from starlette.testclient import TestClient

    from recommender.service import service as service_module

    model = LinearModel()
    model.metadata = {
        "data": "simulated: scenario default, n = 20000, seed 7, rct assignment",
        "data_source": "simulated",
        "one_effect_arms": ["peer_group"],
    }
    monkeypatch.setattr(service_module, "load_champion_model", lambda: (model, "7"))
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        single = client.post("/recommend", json=PROFILE, headers=auth("program")).json()
        batch = client.post(
            "/recommend_batch", json={"profiles": [PROFILE]}, headers=auth("program")
        ).json()
        plan = client.post(
            "/allocate", json={"profiles": [PROFILE]}, headers=auth("program")
        ).json()
    for context in (single["context"], batch["context"], plan["context"]):
        assert "complement organisational change" in context["organisational_change"]
        assert context["training_data"]["source"] == "simulated"
        assert "SIMULATED" in context["training_data"]["statement"]
        (arm,) = context["one_effect_for_everyone"]
        assert arm["arm"] == "peer_group"
        assert "no measurable benefit in personalising" in arm["statement"]
    assert batch["results"][0]["context"] is None  # the batch says it once


def test_a_model_without_recorded_data_says_so(asgi_client):
    context = asgi_client.post("/recommend", json=PROFILE, headers=auth("program")).json()[
        "context"
    ]
    assert context["training_data"]["source"] == "not recorded"
    assert context["one_effect_for_everyone"] == []
