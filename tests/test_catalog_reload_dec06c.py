"""A program edits its intervention catalog while the service runs: every answer names the
catalog by version and content digest, ``POST /reload`` puts an edited catalog in force without
a restart, and a catalog the checks refuse changes nothing (the service keeps serving the
previous catalog and model). In process, over the stand-in model (tests/service_fixtures.py)
and a copy of the configs folder (RECOMMENDER_CONFIG_DIR).
"""

from __future__ import annotations

import hashlib
import shutil

import pytest
import yaml
from service_fixtures import (  # noqa: F401 - service_home: a fixture
    ENV_KEYS,
    PROFILE,
    SALT,
    LinearModel,
    _app,
    auth,
    profile,
    service_home,
)
from service_fixtures import champion_home, copy_champion  # noqa: F401 - fixtures

from recommender.catalog import catalog_sha256, load_catalog
from recommender.paths import config_dir


@pytest.fixture
def catalog_file(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    shutil.copytree(config_dir(), folder)
    monkeypatch.setenv("RECOMMENDER_CONFIG_DIR", str(folder))
    return folder / "interventions.yaml"


@pytest.fixture
def client(service_home, catalog_file, monkeypatch):  # noqa: F811
    from starlette.testclient import TestClient

    from recommender.service import service as service_module

    model = LinearModel()
    monkeypatch.setattr(service_module, "load_champion_model", lambda: (model, "7"))
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        yield client


def _edit(path, change):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _arm(data, arm_id):
    return next(arm for arm in data["arms"] if arm["id"] == arm_id)


def _cost(answer, arm_id):
    return next(a["cost_per_person"] for a in answer["ranking"] if a["arm"] == arm_id)


def test_the_digest_is_the_sha256_of_the_file_the_training_run_tags(catalog_file):
    catalog = load_catalog(catalog_file)
    assert catalog.sha256 == hashlib.sha256(catalog_file.read_bytes()).hexdigest()
    assert catalog_sha256(catalog_file) == catalog.sha256
    # An edit that keeps the version is told apart by the digest alone.
    _edit(catalog_file, lambda data: _arm(data, "coaching").update(cost_per_person=999))
    edited = load_catalog(catalog_file)
    assert edited.version == catalog.version and edited.sha256 != catalog.sha256


def test_every_answer_names_the_catalog_by_version_and_digest(client, catalog_file):
    version, digest = load_catalog().version, catalog_sha256(catalog_file)
    answer = client.post("/recommend", json=PROFILE, headers=auth("program")).json()
    assert (answer["catalog_version"], answer["catalog_sha256"]) == (version, digest)
    crisis = client.post("/recommend", json=profile(crisis_risk=True), headers=auth("program"))
    assert crisis.json()["catalog_sha256"] == digest
    batch = client.post(
        "/recommend_batch",
        json={"profiles": [profile(person_id="p-1"), profile(person_id="p-2", crisis_risk=True)]},
        headers=auth("program"),
    ).json()
    assert [r["catalog_sha256"] for r in batch["results"]] == [digest, digest]
    plan = client.post(
        "/allocate", json={"profiles": [profile(person_id="p-1")]}, headers=auth("program")
    ).json()
    assert (plan["catalog_version"], plan["catalog_sha256"]) == (version, digest)
    card = client.get("/model_card.json", headers=auth("auditor"))
    if card.status_code == 200:  # the stand-in model has no card on disk: 404 then
        assert card.json()["serving"]["catalog"] == {"version": version, "sha256": digest}
    # The OpenAPI document says so, as an optional field (clients of before are unaffected).
    document = client.get("/docs.json").json()
    for path in ("/recommend", "/allocate", "/reload"):
        ok = document["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]
        schema = _resolved(document, ok["schema"])
        assert "catalog_sha256" in schema["properties"], path
        assert "catalog_sha256" not in schema.get("required", []), path


def _resolved(document, schema):
    ref = schema.get("$ref")
    return schema if ref is None else document["components"]["schemas"][ref.split("/")[-1]]


def test_reload_puts_an_edited_catalog_in_force_and_says_which(client, catalog_file):
    before = client.post("/recommend", json=PROFILE, headers=auth("program")).json()
    assert _cost(before, "coaching") != 1234.0
    _edit(catalog_file, lambda data: _arm(data, "coaching").update(cost_per_person=1234))
    # Not before the reload: requests go on with the catalog read at start.
    unchanged = client.post("/recommend", json=PROFILE, headers=auth("program")).json()
    assert unchanged["catalog_sha256"] == before["catalog_sha256"]
    reloaded = client.post("/reload", headers=auth("scientist"))
    assert reloaded.status_code == 200, reloaded.text
    digest = catalog_sha256(catalog_file)
    assert reloaded.json()["catalog_sha256"] == digest != before["catalog_sha256"]
    assert reloaded.json()["catalog_version"] == before["catalog_version"]
    after = client.post("/recommend", json=PROFILE, headers=auth("program")).json()
    assert after["catalog_sha256"] == digest
    assert _cost(after, "coaching") == 1234.0


def test_a_refused_catalog_on_reload_is_409_naming_the_field_and_nothing_changes(
    client, catalog_file
):
    before = client.post("/recommend", json=PROFILE, headers=auth("program")).json()
    _edit(catalog_file, lambda data: _arm(data, "coaching").update(cost_per_person=-5))
    refused = client.post("/reload", headers=auth("scientist"))
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert "cost_per_person" in body["error"] and "still serving version 7" in body["error"]
    assert before["catalog_sha256"] in body["error"]  # the catalog still in force
    problem = next(p for p in body["problems"] if p["field"].endswith("cost_per_person"))
    assert problem["value"] == -5 and problem["accepted"]
    assert client.get("/readyz").status_code == 200
    after = client.post("/recommend", json=PROFILE, headers=auth("program")).json()
    assert after["model_version"] == "7"
    assert after["catalog_sha256"] == before["catalog_sha256"]
    assert _cost(after, "coaching") == _cost(before, "coaching")


def test_a_worker_following_a_reload_of_the_same_version_reads_the_edited_catalog(
    client, catalog_file
):
    import bentoml

    service = bentoml.get_current_service()
    model = service.engine.model
    _edit(catalog_file, lambda data: _arm(data, "coaching").update(cost_per_person=777))
    # Another worker's /reload, which kept version 7 but put the edited catalog in force.
    service.audit.announce_reload("7", "scientist")
    service._follow_once()
    assert service.engine.catalog.sha256 == catalog_sha256(catalog_file)
    assert service.engine.model is model  # the same model: nothing downloaded again
    after = client.post("/recommend", json=PROFILE, headers=auth("program")).json()
    assert _cost(after, "coaching") == 777.0


def test_score_and_allocate_name_the_catalog_file_they_used_by_its_digest(
    tmp_path, copy_champion, catalog_file, monkeypatch, capsys
):
    from pipelines.allocate import plan_cohort
    from recommender.cli import main
    from recommender.simulate import load_scenario, simulate_cohort

    home = copy_champion(tmp_path / "home")
    monkeypatch.setenv("RECOMMENDER_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # The program edits a cost and keeps the version: only the digest tells the files apart.
    _edit(catalog_file, lambda data: _arm(data, "coaching").update(cost_per_person=1234))
    digest = catalog_sha256(catalog_file)
    cohort = simulate_cohort(load_scenario("default"), 40, seed=5, assignment="rct")
    data = tmp_path / "cohort.csv"
    cohort.to_csv(data, index=False)
    plan = plan_cohort("champion", data, tmp_path / "plan.csv")
    assert plan.catalog_sha256 == digest
    assert f"(sha256 {digest})" in plan.summary_lines()[0]
    assert main(["score", "--data", str(data), "--out", str(tmp_path / "scored.csv")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(f"(sha256 {digest}) ->" in line for line in out)


# -- renamed arms ------------------------------------------------------------------------------


def _rename_balint(data):
    arm = _arm(data, "balint_group")
    arm.update(id="balint", renamed_from="balint_group")


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda data: _arm(data, "coaching").update(renamed_from="mindfulness"), "still has"),
        (
            lambda data: [
                _arm(data, arm).update(id=f"{arm}_2", renamed_from="balint_group")
                for arm in ("balint_group", "peer_group")
            ],
            "renamed from it too",
        ),
    ],
    ids=["names an arm present", "claimed twice"],
)
def test_a_renamed_from_naming_an_arm_present_or_twice_is_refused(catalog_file, change, rule):
    from recommender.errors import InputError

    _edit(catalog_file, change)
    with pytest.raises(InputError) as error:
        load_catalog(catalog_file)
    (problem,) = [p for p in error.value.problems if p["field"] == "renamed_from"]
    assert rule in problem["rule"] and problem["accepted"]


def test_a_renamed_arm_is_served_with_what_the_model_learnt_under_its_former_id(
    client, catalog_file, caplog
):
    import bentoml

    before = client.post("/recommend", json=PROFILE, headers=auth("program")).json()
    learnt = next(a for a in before["ranking"] if a["arm"] == "balint_group")
    _edit(catalog_file, _rename_balint)
    with caplog.at_level("INFO"):
        assert client.post("/reload", headers=auth("scientist")).status_code == 200
    said = [r.getMessage() for r in caplog.records]
    assert not any("never learnt" in line for line in said)
    assert any("balint (formerly balint_group)" in line for line in said)
    assert "formerly balint_group" in bentoml.get_current_service().engine.catalog_note
    after = client.post("/recommend", json=PROFILE, headers=auth("program")).json()
    served = next(a for a in after["ranking"] if a["arm"] == "balint")
    assert (served["ee_effect"], served["ee_lower"], served["ee_upper"]) == (
        learnt["ee_effect"],
        learnt["ee_lower"],
        learnt["ee_upper"],
    )
    assert "balint" not in {e["arm"] for e in after["excluded"]}
    assert "balint_group" not in {a["arm"] for a in after["ranking"]}
    chosen = client.post(
        "/recommend", json=profile(offered=["balint"]), headers=auth("program")
    ).json()
    assert chosen["recommended"] == "balint" and chosen["explanation"] is not None


def test_a_real_champion_serves_a_renamed_arm_without_the_never_learnt_warning(
    tmp_path, copy_champion, catalog_file, monkeypatch, caplog
):
    from starlette.testclient import TestClient

    from recommender.service import service as service_module

    home = copy_champion(tmp_path / "home")
    for name, value in (("RECOMMENDER_HOME", home), ("BENTOML_HOME", home / "bentoml")):
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("RECOMMENDER_API_KEYS", ENV_KEYS)
    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", SALT)
    monkeypatch.delenv("RECOMMENDER_SERVE_CONFIG", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _edit(catalog_file, _rename_balint)
    with caplog.at_level("INFO"), TestClient(_app(service_module)) as client:
        said = [r.getMessage() for r in caplog.records]
        assert not any("never learnt" in line for line in said)
        assert any("balint (formerly balint_group)" in line for line in said)
        card = client.get("/model_card.json", headers=auth("auditor")).json()["serving"]
        assert any("formerly balint_group" in c for c in card["concerns"])
        assert card["catalog"]["sha256"] == catalog_sha256(catalog_file)
        answer = client.post(
            "/recommend", json=profile(offered=["balint"]), headers=auth("program")
        ).json()
        assert not any("never learnt" in e["reason"] for e in answer["excluded"])
        assert "balint" in {arm["arm"] for arm in answer["ranking"]}
