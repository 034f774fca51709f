"""Cohort planning at its edges, as a wellness program would send it and as it would send it by
mistake: a solver stopped by its time limit, a plan file of crisis rows only, an interval level
that must be the service's, and options named as the program typed them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_policy_planning import _person, _plan, catalog  # noqa: F401  (a fixture)

from service_fixtures import (  # noqa: F401  (fixtures)
    LinearModel,
    asgi_client,
    auth,
    profile,
    service_home,
)


def test_the_solver_skips_highs_presolve_which_does_not_heed_the_time_limit(catalog, monkeypatch):
    # HiGHS's presolve ran 29 s under a 1 s limit on 50,000 people with places for thousands:
    # every solve of a plan is asked to go without it, with the caller's time limit.
    import scipy.optimize

    real, asked = scipy.optimize.milp, []

    def recording(*args, options=None, **kwargs):
        asked.append(dict(options))
        return real(*args, options=options, **kwargs)

    monkeypatch.setattr(scipy.optimize, "milp", recording)
    people = [_person(i) for i in range(4)]
    plan = _plan(catalog, people, [[-3.0, -1.0, -0.5, -0.2, -0.1]] * 4, time_limit=7.0)
    assert plan.allocation.status == "optimal"
    assert asked and all(o["presolve"] is False and o["time_limit"] == 7.0 for o in asked)


def _stopped_at_half_the_bound(monkeypatch):
    # HiGHS stopped by its time limit with a plan worth half the bound it proved: a gap of
    # 50 %. The real solve gives the plan and its bound (the optimum, which the planner's own
    # relaxations cannot tighten); only the stop and the plan's worth are stood in for, so the
    # test does not depend on how fast this machine is.
    import scipy.optimize

    real = scipy.optimize.milp

    def stopped(*args, **kwargs):
        result = real(*args, **kwargs)
        result.status, result.mip_dual_bound = 1, result.fun
        result.fun = result.fun / 2
        result.message = "Time limit reached. (HiGHS Status 13: Time limit reached)"
        return result

    monkeypatch.setattr(scipy.optimize, "milp", stopped)


def _stopped_with_usual_care_for_everyone(monkeypatch):
    # HiGHS stopped by its time limit holding only its trivial plan (nobody given an arm)
    # while the bound it proved says a better one exists.
    import scipy.optimize

    real = scipy.optimize.milp

    def stopped(*args, **kwargs):
        result = real(*args, **kwargs)
        result.status, result.mip_dual_bound = 1, result.fun
        result.x, result.fun = np.zeros_like(result.x), 0.0
        result.message = "Time limit reached. (HiGHS Status 13: Time limit reached)"
        return result

    monkeypatch.setattr(scipy.optimize, "milp", stopped)


def _use_stand_in(monkeypatch, model):
    """``recommender allocate`` over the service tests' stand-in model."""
    from types import SimpleNamespace

    import recommender.registry as registry

    found = SimpleNamespace(uri="models:/stand-in", version="7")
    monkeypatch.setattr(registry, "resolve_model", lambda name: found)
    monkeypatch.setattr(registry, "load_model", lambda uri: model)


def _allocate(rows, tmp_path, *options, out="plan.csv"):
    """Run ``recommender allocate`` on ``rows``; (exit code, plan path)."""
    from recommender.cli import main

    data, out = tmp_path / "cohort.csv", tmp_path / out
    pd.DataFrame(rows).to_csv(data, index=False)
    return main(["allocate", "--data", str(data), "--out", str(out), *options]), out


def test_a_plan_stopped_by_the_time_limit_says_so_with_its_gap_everywhere(
    asgi_client, linear_model, tmp_path, monkeypatch, capsys
):
    _stopped_at_half_the_bound(monkeypatch)
    rows = [profile(person_id=f"p{i}", ee=20 + i) for i in range(3)]
    served = asgi_client.post(
        "/allocate", json={"profiles": rows, "budget": 2000}, headers=auth("program")
    )
    assert served.status_code == 200, served.text
    body = served.json()
    assert body["gap"] == pytest.approx(0.5)
    assert body["status"].startswith("stopped early (Time limit reached.")
    assert body["status"].endswith(
        "within 50.000% of the best possible (the bound the solver proved)"
    )
    # the command says the same of the same plan, in its summary
    _use_stand_in(monkeypatch, linear_model)
    code, out = _allocate(rows, tmp_path, "--budget", "2000")
    assert code == 0, capsys.readouterr().err
    assert f"{body['status']}; spent $" in capsys.readouterr().out
    assert pd.read_csv(out)["allocated"].tolist() == [a["allocated"] for a in body["assignments"]]


class _WidthByAlpha(LinearModel):
    """The stand-in model with intervals as wide as ``alpha`` makes them (1 point at 0.1)."""

    def predict(self, encoded, *, alpha=0.1):
        from scipy.stats import norm

        self.half_width = {arm: norm.ppf(1 - alpha / 2) / norm.ppf(0.95) for arm in self.base}
        return super().predict(encoded, alpha=alpha)


@pytest.fixture
def linear_model():
    # Coaching avoids 1.2 points: its 90 % interval (-2.2, -0.2) excludes no benefit, its 98 %
    # interval (-2.6, +0.2) does not.
    return _WidthByAlpha(base={"coaching": -1.2}, weights={}, half_width={"coaching": 1.0})


@pytest.fixture
def alpha_98(service_home, monkeypatch):
    from recommender.paths import config_path

    path = service_home / "serve.yaml"
    path.write_text(config_path("serve.yaml").read_text().replace("alpha: 0.1", "alpha: 0.02"))
    monkeypatch.setenv("RECOMMENDER_SERVE_CONFIG", str(path))


def test_confident_only_plans_on_the_services_intervals_on_the_command_line_too(
    alpha_98, asgi_client, linear_model, tmp_path, monkeypatch, capsys
):
    # `recommender allocate` planned on 90 % intervals whatever the service's alpha was, so
    # --confident-only gave coaching to people whom /allocate left in usual care.
    rows = [profile(person_id=f"p{i}") for i in range(2)]
    served = asgi_client.post(
        "/allocate", json={"profiles": rows, "confident_only": True}, headers=auth("program")
    )
    assert served.status_code == 200, served.text
    assert [a["allocated"] for a in served.json()["assignments"]] == ["none", "none"]
    _use_stand_in(monkeypatch, linear_model)
    code, out = _allocate(rows, tmp_path, "--confident-only")
    assert code == 0, capsys.readouterr().err
    assert pd.read_csv(out)["allocated"].tolist() == ["none", "none"]
    # --alpha still chooses other intervals: 90 % ones exclude no benefit here
    code, out = _allocate(rows, tmp_path, "--confident-only", "--alpha", "0.1")
    assert code == 0, capsys.readouterr().err
    assert pd.read_csv(out)["allocated"].tolist() == ["coaching", "coaching"]


def test_a_plan_of_crisis_rows_only_keeps_every_plans_column_types(
    linear_model, tmp_path, monkeypatch, capsys
):
    import pyarrow.parquet as pq

    _use_stand_in(monkeypatch, linear_model)
    rows = [profile(person_id=f"p{i}") for i in range(3)]
    code, planned = _allocate(rows, tmp_path, out="planned.parquet")
    assert code == 0 and capsys.readouterr().out.startswith("planned 3 people")
    flagged = [dict(row, crisis_risk="yes") for row in rows]
    code, crisis = _allocate(flagged, tmp_path, out="crisis.parquet")
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert printed.out.startswith("planned 0 of 3 people")  # nobody flagged is planned for
    assert pq.read_schema(crisis).types == pq.read_schema(planned).types
    plan = pd.read_parquet(crisis)
    assert plan["allocated"].isna().all() and plan["recommended"].isna().all()
    assert (plan["safety_level"] == "crisis").all()
    assert plan["referral"].str.startswith("CRISIS").all()  # resources, never withheld


@pytest.mark.parametrize(
    "option, said",
    [
        (
            ["--floor", "nurse:0.2"],
            "--floor: 'nurse:0.2' is not ROLE=SHARE (e.g. nurse=0.2,app=0.2)",
        ),
        (["--floor", "nurse=20%"], "--floor: 'nurse=20%' is not ROLE=SHARE"),
        (
            ["--cost", "coaching=$1200"],
            "--cost: 'coaching=$1200' is not ARM=USD (e.g. coaching=1200)",
        ),
        (["--capacity", "coaching=20,"], "--capacity: '' is not ARM=NUMBER (e.g. coaching=20"),
        (["--offered", "Coaching"], "offered: unknown arm(s) ['Coaching']; accepted: arms the"),
    ],
)
def test_an_option_typed_wrong_is_named_with_the_form_it_takes(
    linear_model, tmp_path, monkeypatch, capsys, option, said
):
    _use_stand_in(monkeypatch, linear_model)
    code, out = _allocate([profile()], tmp_path, *option)
    assert code == 2
    assert said in capsys.readouterr().err
    assert not out.exists() and linear_model.calls == []


@pytest.mark.parametrize(
    "data, out",
    [("cohort.csv", "cohort.csv"), ("plan.crisis.csv", "plan.csv")],  # the plan, a file beside it
)
def test_a_plan_is_never_written_over_the_cohort_it_plans(
    linear_model, tmp_path, monkeypatch, capsys, data, out
):
    # `--data cohort.csv --out cohort.csv` replaced the program's cohort with its plan.
    from recommender.cli import main

    _use_stand_in(monkeypatch, linear_model)
    data = tmp_path / data
    pd.DataFrame([profile(person_id=f"p{i}") for i in range(2)]).to_csv(data, index=False)
    before = data.read_bytes()
    assert main(["allocate", "--data", str(data), "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err
    assert "the plan would be written over the cohort file it plans" in err
    assert "accepted: a path that is not the cohort file's" in err
    assert data.read_bytes() == before and linear_model.calls == []


def test_usual_care_for_everyone_is_no_plan_when_the_solver_stopped_before_a_better_one(
    asgi_client, linear_model, tmp_path, monkeypatch, capsys
):
    # It was answered 200 and audited person by person as if nobody were to be given anything:
    # it is the plan of not planning, so it is a solver out of time (retry, or split).
    _stopped_with_usual_care_for_everyone(monkeypatch)
    rows = [profile(person_id=f"p{i}") for i in range(3)]
    served = asgi_client.post("/allocate", json={"profiles": rows}, headers=auth("program"))
    assert served.status_code == 503, served.text
    assert "better than usual care for everyone" in served.json()["error"]
    export = asgi_client.get("/audit/export", headers=auth("auditor"))
    assert export.text.strip().count("\n") == 0  # the header only
    _use_stand_in(monkeypatch, linear_model)
    code, out = _allocate(rows, tmp_path, "--time-limit", "5")
    assert code == 1 and not out.exists()
    assert "--time-limit, now 5 s" in capsys.readouterr().err


def test_a_value_the_model_refuses_is_named_by_its_row_in_the_file(tmp_path, monkeypatch, capsys):
    # The crisis row before it was left out and the rest renumbered, so the model's refusal
    # named row 0, the crisis row, for the value of row 1.
    model = LinearModel(extras=[{"name": "night_shifts", "kind": "float"}])
    _use_stand_in(monkeypatch, model)
    rows = [
        profile(person_id="p0", night_shifts=1, crisis_risk="yes"),
        profile(person_id="p1", night_shifts="four", crisis_risk="no"),
    ]
    code, out = _allocate(rows, tmp_path)
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "row 1, column 'night_shifts', value 'four', accepted: a number" in err
    assert pd.read_csv(tmp_path / "plan.crisis.csv")["person_id"].tolist() == ["p0"]


def test_a_cohort_file_without_the_models_own_features_is_refused_by_the_contract_check(
    tmp_path, monkeypatch, capsys
):
    model = LinearModel(extras=[{"name": "night_shifts", "kind": "float"}])
    _use_stand_in(monkeypatch, model)
    code, out = _allocate([profile(person_id="p0"), profile(person_id="p1")], tmp_path)
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "does not meet the data contract" in err and "night_shifts" in err
    assert model.calls == []


@pytest.mark.parametrize(
    "option",
    [
        ["--offered", "yoga"],
        ["--capacity", "yoga=3"],
        ["--capacity", "coaching:3"],
        ["--floor", "surgeon=0.2"],
        ["--floor", "nurse=20%"],
    ],
)
def test_a_refused_option_still_gives_the_crisis_rows_their_resources(
    linear_model, tmp_path, monkeypatch, capsys, option
):
    # --offered, and any malformed --capacity, --cost or --floor, was refused before the file
    # was read: the flagged person got nothing.
    _use_stand_in(monkeypatch, linear_model)
    rows = [profile(person_id="p0", crisis_risk="yes"), profile(person_id="p1", crisis_risk="")]
    code, out = _allocate(rows, tmp_path, *option)
    assert code == 2 and not out.exists()
    crisis = tmp_path / "plan.crisis.csv"
    assert f"need the crisis resources now: they are in {crisis}" in capsys.readouterr().err
    listed = pd.read_csv(crisis)
    assert listed["person_id"].tolist() == ["p0"] and listed["referral"].str.contains("988").all()
    assert linear_model.calls == []


def test_a_catalog_that_is_refused_still_gives_the_crisis_rows_their_resources(
    linear_model, tmp_path, monkeypatch, capsys
):
    # A program's catalog with a negative cost is refused by line and field; the crisis rows,
    # whose resources need no catalog, were left without them.
    import shutil

    from recommender.paths import config_path

    configs = tmp_path / "configs"
    shutil.copytree(config_path("interventions.yaml").parent, configs)
    catalog = configs / "interventions.yaml"
    catalog.write_text(
        catalog.read_text().replace("cost_per_person: 1400", "cost_per_person: -1400")
    )
    monkeypatch.setenv("RECOMMENDER_CONFIG_DIR", str(configs))
    _use_stand_in(monkeypatch, linear_model)
    rows = [profile(person_id="p0", crisis_risk="yes"), profile(person_id="p1")]
    code, out = _allocate(rows, tmp_path)
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "(coaching).cost_per_person: negative cost; found -1400; accepted: a number >= 0" in err
    assert pd.read_csv(tmp_path / "plan.crisis.csv")["person_id"].tolist() == ["p0"]


def _allocated(response) -> list:
    assert response.status_code == 200, response.text
    return [a["allocated"] for a in response.json()["assignments"]]


def test_a_capacity_sent_as_a_whole_json_number_is_a_capacity(asgi_client):
    # JSON does not tell 1 from 1.0 (a program's arithmetic sends 1.0), and the command line
    # takes coaching=1.0: /allocate refused it as "not a valid integer".
    rows = [profile(person_id=f"p{i}") for i in range(3)]

    def plan(places):
        body = {"profiles": rows, "capacity": {"coaching": places}}
        return asgi_client.post("/allocate", json=body, headers=auth("program"))

    assert _allocated(plan(1.0)) == _allocated(plan(1)) == ["coaching", "none", "none"]
    for places, message in ((1.5, "valid integer"), ("1", "not text"), (True, "not true or false")):
        refused = plan(places)
        assert refused.status_code == 422, refused.text
        (problem,) = refused.json()["problems"]
        assert problem["field"] == "capacity.coaching" and message in problem["message"]


def test_a_huge_budget_is_planned_and_shown_as_a_number(
    linear_model, tmp_path, monkeypatch, capsys
):
    _use_stand_in(monkeypatch, linear_model)
    code, out = _allocate([profile(person_id="p0")], tmp_path, "--budget", "1e300")
    printed = capsys.readouterr().out
    assert code == 0 and pd.read_csv(out)["allocated"].tolist() == ["coaching"]
    assert "spent $1,400 of budget $1e+300;" in printed
