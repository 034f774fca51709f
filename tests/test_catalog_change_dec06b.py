"""A program changes its intervention catalog after its champion was trained: an arm removed,
added or renamed, an eligibility rule changed. The champion is the session's real one (a small
T-learner of the installed catalog, tests/service_fixtures.py); each test serves or scores it
under a changed copy of the configs folder (RECOMMENDER_CONFIG_DIR).
"""

from __future__ import annotations

import copy
import shutil

import pandas as pd
import pytest
import yaml
from service_fixtures import ENV_KEYS, SALT, _app, auth, copy_champion, free_port, profile  # noqa: F401
from service_fixtures import champion_home  # noqa: F401 - a fixture too

from recommender.catalog import load_catalog
from recommender.paths import config_dir


def _arm(data, arm_id):
    return next(arm for arm in data["arms"] if arm["id"] == arm_id)


def _removed(data):
    data["arms"] = [arm for arm in data["arms"] if arm["id"] != "balint_group"]


def _renamed(data):
    _arm(data, "balint_group")["id"] = "balint"


def _added(data):
    yoga = copy.deepcopy(_arm(data, "resilience_training"))
    yoga.update(id="yoga", name="Yoga classes", evidence=[])
    data["arms"].append(yoga)


def _coaching_for_residents_only(data):
    rules = _arm(data, "coaching")["eligibility"]
    rules["roles"] = ["resident"]
    rules["exclusions"] = [
        *(rules.get("exclusions") or []),
        *(
            {
                "excludes": f"role {role}",
                "reason": "program choice",
                "source": None,
                "assumption": True,
            }
            for role in ("physician", "app")
        ),
    ]


def _configs(tmp_path, change):
    folder = tmp_path / "configs"
    shutil.copytree(config_dir(), folder)
    data = yaml.safe_load((folder / "interventions.yaml").read_text(encoding="utf-8"))
    change(data)
    (folder / "interventions.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


@pytest.fixture
def under(tmp_path, copy_champion, monkeypatch):  # noqa: F811
    """``under(change)``: this test's copy of the champion's home, served and scored under the
    configs folder with ``change`` made to its catalog."""
    home = copy_champion(tmp_path / "home")

    def use(change):
        monkeypatch.setenv("RECOMMENDER_CONFIG_DIR", str(_configs(tmp_path, change)))
        monkeypatch.setenv("RECOMMENDER_HOME", str(home))
        monkeypatch.setenv("BENTOML_HOME", str(home / "bentoml"))
        monkeypatch.setenv("RECOMMENDER_API_KEYS", ENV_KEYS)
        monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", SALT)
        monkeypatch.delenv("RECOMMENDER_SERVE_CONFIG", raising=False)
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        return home

    return use


def _client():
    from starlette.testclient import TestClient

    from recommender.service import service as service_module

    return TestClient(_app(service_module), raise_server_exceptions=False)


def _excluded(answer) -> dict:
    return {item["arm"]: item["reason"] for item in answer["excluded"]}


def test_a_renamed_arm_is_served_ready_with_warnings_never_ranked_crisis_answered(under, caplog):
    under(_renamed)
    with caplog.at_level("WARNING"), _client() as client:
        assert client.get("/readyz").status_code == 200
        warned = [r.getMessage() for r in caplog.records if "never learnt" in r.getMessage()]
        assert len(warned) == 1 and "offers balint, which version 1 never learnt" in warned[0]
        assert "keep its id" in warned[0]
        concerns = client.get("/model_card.json", headers=auth("auditor")).json()["serving"][
            "concerns"
        ]
        assert any("offers balint, which version 1 never learnt" in c for c in concerns)
        answer = client.post("/recommend", json=profile(), headers=auth("program"))
        assert answer.status_code == 200
        body = answer.json()
        assert "balint" not in {arm["arm"] for arm in body["ranking"]}
        assert body["recommended"] != "balint"
        assert "never learnt this arm" in _excluded(body)["balint"]
        crisis = client.post("/recommend", json=profile(crisis_risk=True), headers=auth("program"))
        assert crisis.status_code == 200 and crisis.json()["safety"]["resources"]
        plan = client.post(
            "/allocate", json={"profiles": [profile(person_id="p-1")]}, headers=auth("program")
        )
        assert plan.status_code == 200
        assert plan.json()["assignments"][0]["allocated"] != "balint"


def test_an_added_arm_is_never_ranked_with_a_made_up_effect_every_answer_says_why(under):
    under(_added)
    with _client() as client:
        assert client.get("/readyz").status_code == 200
        batch = client.post(
            "/recommend_batch",
            json={
                "profiles": [
                    profile(person_id=f"p-{i}", role=r)
                    for i, r in enumerate(("physician", "resident", "app"))
                ]
            },
            headers=auth("program"),
        )
        assert batch.status_code == 200
        for answer in batch.json()["results"]:
            assert "yoga" not in {arm["arm"] for arm in answer["ranking"]}
            reason = _excluded(answer)["yoga"]
            assert "never learnt this arm" in reason and "did not have it" in reason
        concerns = client.get("/model_card.json", headers=auth("auditor")).json()["serving"][
            "concerns"
        ]
        said = next(c for c in concerns if "never learnt" in c)
        assert "offers yoga" in said and "no longer has" not in said and "train" in said


def test_a_removed_arm_is_served_without_it_and_refused_by_name_when_offered(under):
    under(_removed)
    with _client() as client:
        assert client.get("/readyz").status_code == 200
        answer = client.post("/recommend", json=profile(), headers=auth("program")).json()
        assert "balint_group" not in {arm["arm"] for arm in answer["ranking"]}
        assert answer["recommended"] != "balint_group"
        refused = client.post(
            "/recommend", json=profile(offered=["balint_group"]), headers=auth("program")
        )
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert "'balint_group' is not accepted" in error and "resilience_training" in error


def _score(tmp_path, offered=None):
    from pipelines.score import score_file
    from recommender.simulate import load_scenario, simulate_cohort

    cohort = simulate_cohort(load_scenario("default"), 200, seed=3, assignment="rct")
    data = tmp_path / "cohort.csv"
    cohort.to_csv(data, index=False)
    result = score_file("champion", data, tmp_path / "scored.csv", offered=offered)
    scored = pd.read_csv(result.path).merge(cohort[["person_id", "role"]], on="person_id")
    return result, scored


def test_score_recommends_only_what_the_catalog_in_force_offers_and_names_it(under, tmp_path):
    under(_coaching_for_residents_only)
    result, scored = _score(tmp_path)
    assert result.catalog_version == load_catalog().version
    given_coaching = set(scored.loc[scored["recommended"] == "coaching", "role"])
    assert given_coaching <= {"resident"}
    # the model's own catalog offered coaching to physicians: some of them would get it
    assert (scored["role"] == "physician").sum() > 20


def test_score_refuses_an_arm_no_longer_offered_naming_what_is_accepted(under, tmp_path):
    from recommender.errors import InputError

    under(_removed)
    with pytest.raises(InputError, match="balint_group.*not in intervention catalog") as error:
        _score(tmp_path, offered=["balint_group"])
    assert "accepted: none, coaching" in str(error.value)


def test_score_and_allocate_go_on_with_a_warning_for_a_renamed_arm_never_ranking_it(
    under, tmp_path, capsys
):
    from pipelines.allocate import plan_cohort
    from recommender.cli import main
    from recommender.simulate import load_scenario, simulate_cohort

    under(_renamed)
    cohort = simulate_cohort(load_scenario("default"), 50, seed=4, assignment="rct")
    cohort["crisis_risk"] = [True] + [False] * (len(cohort) - 1)
    data = tmp_path / "cohort.csv"
    cohort.to_csv(data, index=False)
    in_force = load_catalog().version
    plan = plan_cohort("champion", data, tmp_path / "plan.csv")
    assert plan.catalog_version == in_force
    lines = plan.summary_lines()
    warned = [line for line in lines if line.startswith("warning:")]
    assert len(warned) == 1 and "offers balint, which version 1 never learnt" in warned[0]
    assert f"intervention catalog {in_force}" in lines[0]
    planned = pd.read_csv(tmp_path / "plan.csv")
    assert "balint" not in set(planned.astype(str).stack()) and len(planned) >= 49
    assert plan.crisis == 1  # the flagged person has crisis resources (the referral column)
    flagged = planned.loc[planned["person_id"] == cohort["person_id"][0]]
    assert flagged["referral"].notna().all()

    assert main(["score", "--data", str(data), "--out", str(tmp_path / "scored.csv")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(f"intervention catalog {in_force}" in line for line in out)
    warned = [line for line in out if line.startswith("warning:")]
    assert len(warned) == 1 and "offers balint, which version 1 never learnt" in warned[0]
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert "balint" not in set(scored["recommended"].dropna())
    assert "balint_group" not in set(scored["recommended"].dropna())


def test_champions_and_serve_check_print_the_warning(under, capsys):
    from recommender.cli import main

    under(_added)
    assert main(["champions"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("warning:") and "offers yoga" in line for line in out)
    # --check says whether the port is free: one free now, not a fixed one another test may hold
    port = str(free_port())
    code = main(["serve", "--check", "--host", "127.0.0.1", "--port", port])
    said = capsys.readouterr()
    assert code == 0
    assert any(
        line.startswith("warning:") and "offers yoga" in line for line in said.err.splitlines()
    )


def test_offering_only_an_arm_never_learnt_is_said_never_made_up(under, tmp_path):
    from pipelines.allocate import plan_cohort
    from recommender.errors import InputError
    from recommender.simulate import load_scenario, simulate_cohort

    under(_added)
    with _client() as client:
        answer = client.post("/recommend", json=profile(offered=["yoga"]), headers=auth("program"))
        assert answer.status_code == 200
        body = answer.json()
        assert body["recommended"] == "none" and "never learnt" in _excluded(body)["yoga"]
    cohort = simulate_cohort(load_scenario("default"), 30, seed=5, assignment="rct")
    data = tmp_path / "cohort.csv"
    cohort.to_csv(data, index=False)
    with pytest.raises(InputError, match="yoga.*never learnt"):
        _score(tmp_path, offered=["yoga"])
    with pytest.raises(InputError, match=r"no effects for \['yoga'\]; it knows"):
        plan_cohort("champion", data, tmp_path / "plan.csv", offered=["yoga"])
    assert not (tmp_path / "plan.csv").exists()
