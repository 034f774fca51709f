"""Planning a cohort with a really trained and registered model: limits hold, rules hold."""

from __future__ import annotations

import pandas as pd
import pytest
from test_pipeline_train import use_home

from pipelines._crisis_rows import beside
from recommender.catalog import load_catalog
from recommender.cli import main
from recommender.simulate import simulate_cohort


@pytest.fixture(scope="module")
def champion_home(trained_copy):
    """The session's trained model (tests/test_pipeline_train.py's SMALL settings), registered
    as champion in a home of this module's own."""
    return trained_copy


@pytest.fixture
def cohort_file(tmp_path):
    cohort = simulate_cohort("default", 600, seed=11)
    profile = cohort[[c for c in cohort.columns if not c.startswith("true_effect")]]
    profile.loc[profile.index[:5], ["ee", "dp"]] = [[50, 20]] * 5  # severe: referral by serve.yaml
    path = tmp_path / "cohort.csv"
    profile.to_csv(path, index=False)
    return path


def test_plan_respects_budget_capacity_groups_and_eligibility(
    champion_home, cohort_file, tmp_path, monkeypatch, capsys
):
    use_home(monkeypatch, champion_home)
    out = tmp_path / "plan.csv"
    code = main(
        [
            "allocate",
            "--data",
            str(cohort_file),
            "--out",
            str(out),
            "--budget",
            "40000",
            "--capacity",
            "coaching=12,peer_group=25",
        ]
    )
    assert code == 0, capsys.readouterr().err
    plan = pd.read_csv(out)
    cohort = pd.read_csv(cohort_file)
    catalog = load_catalog()
    counts = plan["allocated"].value_counts()
    assert counts.get("coaching", 0) <= 12
    assert counts.get("peer_group", 0) <= 25
    peer = catalog.arm("peer_group")
    if counts.get("peer_group", 0):
        n = counts["peer_group"]
        assert any(g * peer.group_min <= n <= g * peer.group_max for g in range(1, n + 1))
    spent = sum(catalog.arm(arm).cost_per_person * k for arm, k in counts.items())
    assert spent <= 40000
    merged = plan.merge(cohort, on="person_id")
    for arm in catalog.treatment_arms:
        roles = set(merged.loc[merged["allocated"] == arm, "role"])
        assert roles <= set(catalog.arm(arm).eligibility.roles), arm
    # only arms expected to help are given, and severe profiles are flagged whatever they get
    given = plan[plan["allocated"] != "none"]
    assert (given["allocated_effect"] < 0).all()
    assert plan["referral"].head(5).all()
    printed = capsys.readouterr().out
    assert "EE points avoided" in printed and "referral flagged" in printed


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--capacity", "coaching:12"], "--capacity: 'coaching:12' is not ARM=NUMBER"),
        (["--capacity", "yoga=3"], "capacity.yoga: 3.0 is not accepted; accepted: an intervention"),
        (["--offered", "yoga"], "unknown arm(s) ['yoga']"),
        (
            ["--capacity", "coaching=1000001"],
            "accepted: a whole number of places >= 0 and at most 1,000,000",
        ),
        (["--floor", "surgeon=0.2"], "floors.surgeon: 0.2 is not accepted; accepted: a role"),
        (["--budget", "-5"], "argument --budget: '-5' is not accepted; accepted: US$ >= 0"),
        (["--budget", "nan"], "argument --budget: 'nan' is not accepted; accepted: US$ >= 0"),
        (["--budget", "1e400"], "argument --budget: '1e400' is not accepted"),
        (["--capacity", "coaching=5,coaching=0"], "'coaching' is given twice"),
        (["--cost", "coaching=1e15"], "per person >= 0 and at most 1,000,000,000"),
    ],
)
def test_bad_options_are_named_and_nothing_is_written(
    champion_home, cohort_file, tmp_path, monkeypatch, capsys, extra, message
):
    use_home(monkeypatch, champion_home)
    out = tmp_path / "plan.csv"
    try:
        code = main(["allocate", "--data", str(cohort_file), "--out", str(out), *extra])
    except SystemExit as refused:  # argparse refuses it, naming the option
        code = refused.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_bad_budget_from_python_is_refused_before_the_model_is_loaded(
    cohort_file, tmp_path, monkeypatch
):
    # The CLI's argparse checks --budget; a program calling the pipeline from Python gets the
    # same refusal by name from the one options check, before any model is looked up.
    import recommender.registry as registry
    from pipelines.allocate import plan_cohort
    from recommender.errors import InputError

    def no_model(*args, **kwargs):
        raise AssertionError("the model was looked up before the budget was checked")

    monkeypatch.setattr(registry, "resolve_model", no_model)
    out = tmp_path / "plan.csv"
    with pytest.raises(InputError) as refused:
        plan_cohort("champion", cohort_file, out, budget=-1.0)
    assert [p["field"] for p in refused.value.problems] == ["budget"]
    assert not out.exists()


def test_invalid_cohort_is_refused_with_its_row(
    champion_home, cohort_file, tmp_path, monkeypatch, capsys
):
    use_home(monkeypatch, champion_home)
    frame = pd.read_csv(cohort_file)
    frame.loc[3, "role"] = "surgeon"
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    out = tmp_path / "plan.csv"
    assert main(["allocate", "--data", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "role" in err and "surgeon" in err
    assert not out.exists()


def _solver_out_of_time(monkeypatch):
    from recommender.errors import PlanTimeout
    from recommender.policy import _planning

    def out_of_time(*args, **kwargs):
        raise PlanTimeout("the solver reached its time limit before finding any plan")

    monkeypatch.setattr(_planning, "allocate", out_of_time)


def test_a_solver_out_of_time_is_said_and_nothing_is_written(
    champion_home, cohort_file, tmp_path, monkeypatch, capsys
):
    use_home(monkeypatch, champion_home)
    _solver_out_of_time(monkeypatch)
    out = tmp_path / "plan.csv"
    assert (
        main(["allocate", "--data", str(cohort_file), "--out", str(out), "--time-limit", "5"]) == 1
    )
    err = capsys.readouterr().err
    assert "time limit" in err and "--time-limit, now 5 s" in err
    assert not out.exists()


def test_floors_are_held_and_fairness_is_written_beside_the_plan(
    champion_home, cohort_file, tmp_path, monkeypatch, capsys
):
    use_home(monkeypatch, champion_home)
    out = tmp_path / "plan.csv"
    code = main(
        [
            "allocate",
            "--data",
            str(cohort_file),
            "--out",
            str(out),
            "--budget",
            "20000",
            "--floor",
            "nurse=0.3,app=0.3",
        ]
    )
    assert code == 0, capsys.readouterr().err
    plan = pd.read_csv(out).merge(pd.read_csv(cohort_file), on="person_id")
    for role in ("nurse", "app"):
        members = plan[plan["role"] == role]
        assert (members["allocated"] != "none").mean() >= 0.3 - 1e-9, role
    fairness = pd.read_csv(tmp_path / "plan.fairness.csv")
    assert set(fairness["attribute"]) == {"role", "gender", "setting"}
    nurses = fairness[
        (fairness["attribute"] == "role")
        & (fairness["group"] == "nurse")
        & (fairness["arm"] == "any")
    ].iloc[0]
    assert nurses["share_allocated"] >= 0.3 - 1e-9 and 0 <= nurses["share_eligible"] <= 1
    printed = capsys.readouterr().out
    assert "floors held: nurse >= 30% given an arm" in printed and "fairness by group" in printed


def test_floors_beyond_the_budget_are_refused_and_nothing_is_written(
    champion_home, cohort_file, tmp_path, monkeypatch, capsys
):
    use_home(monkeypatch, champion_home)
    out = tmp_path / "plan.csv"
    code = main(
        [
            "allocate",
            "--data",
            str(cohort_file),
            "--out",
            str(out),
            "--budget",
            "500",
            "--floor",
            "physician=0.9",
        ]
    )
    assert code != 0 and not out.exists()
    assert "cannot all be met" in capsys.readouterr().err


# -- issue 9: the files' optional crisis_risk column and their safety columns --------------------
@pytest.fixture
def flagged_cohort(tmp_path):
    cohort = simulate_cohort("default", 300, seed=12)
    profile = cohort[[c for c in cohort.columns if not c.startswith("true_effect")]].copy()
    profile.loc[profile.index[:3], ["ee", "dp"]] = [[50, 20]] * 3  # severe
    profile["crisis_risk"] = ""  # an empty cell is false
    profile.loc[profile.index[3:6], "crisis_risk"] = ["true", "TRUE", "yes"]
    profile.loc[profile.index[3], "role"] = "nurse"
    profile.loc[profile.index[4], "role"] = "physician"
    path = tmp_path / "flagged.csv"
    profile.to_csv(path, index=False)
    return path


def test_plan_file_puts_crisis_rows_aside_and_writes_safety_columns(
    champion_home, flagged_cohort, tmp_path, monkeypatch, capsys
):
    use_home(monkeypatch, champion_home)
    out = tmp_path / "plan.csv"
    assert (
        main(["allocate", "--data", str(flagged_cohort), "--out", str(out), "--budget", "20000"])
        == 0
    ), capsys.readouterr().err
    plan = pd.read_csv(out, keep_default_na=False)
    assert len(plan) == 300
    assert plan["safety_level"].head(6).tolist() == ["referral"] * 3 + ["crisis"] * 3
    crisis = plan.iloc[3:6]
    assert (crisis["allocated"] == "").all() and (crisis["recommended"] == "").all()
    assert crisis["referral"].str.contains("988").all()
    assert "Physician Support Line" in crisis["referral"].iloc[1]  # the physician
    assert "Physician Support Line" not in crisis["referral"].iloc[0]  # the nurse
    assert plan["referral"].head(3).str.contains("Confidentiality").all()
    assert (plan["allocated"].iloc[6:] != "").all()
    printed = capsys.readouterr().out
    assert "crisis resources for 3 flagged profile(s)" in printed
    assert "complement organisational change" in printed


def test_score_file_never_scores_crisis_rows_and_writes_safety_columns(
    champion_home, flagged_cohort, tmp_path, monkeypatch, capsys
):
    use_home(monkeypatch, champion_home)
    out = tmp_path / "scored.parquet"
    assert main(["score", "--data", str(flagged_cohort), "--out", str(out)]) == 0, (
        capsys.readouterr().err
    )
    scored = pd.read_parquet(out)
    cohort = pd.read_csv(flagged_cohort)
    assert scored["person_id"].tolist() == cohort["person_id"].tolist()
    assert scored["safety_level"].iloc[3:6].tolist() == ["crisis"] * 3
    assert scored["recommended"].iloc[3:6].isna().all()
    assert scored["recommended"].drop(index=[3, 4, 5]).notna().all()
    assert scored["referral"].iloc[3:6].str.contains("988").all()
    assert set(scored["safety_level"]) <= {"routine", "referral", "crisis"}
    printed = capsys.readouterr().out
    assert "note: individual programs complement organisational change" in printed
    assert "note: the model learned from SIMULATED data" in printed


@pytest.mark.parametrize("command", ["score", "allocate"])
def test_a_crisis_column_that_is_not_boolean_is_refused_naming_rows(
    champion_home, flagged_cohort, tmp_path, monkeypatch, capsys, command
):
    use_home(monkeypatch, champion_home)
    cohort = pd.read_csv(flagged_cohort, keep_default_na=False)
    cohort.loc[7, "crisis_risk"] = "maybe"
    cohort.to_csv(flagged_cohort, index=False)
    out = tmp_path / ("out.csv" if command == "allocate" else "out.parquet")
    assert main([command, "--data", str(flagged_cohort), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "'crisis_risk'" in err and "row 7: 'maybe'" in err and "true or false" in err
    assert not out.exists()
    # the file is refused, but nobody flagged loses the resources: the rows flagged (3-5) and
    # the row whose flag cannot be read (7) are listed beside the output
    listed = pd.read_csv(beside(out, "crisis"))
    assert listed["person_id"].tolist() == cohort["person_id"].iloc[[3, 4, 5, 7]].tolist()
    assert listed["referral"].str.contains("988").all()
    assert str(beside(out, "crisis")) in err


@pytest.mark.parametrize("command", ["score", "allocate"])
def test_a_crisis_flag_is_read_as_the_service_reads_it(
    champion_home, flagged_cohort, tmp_path, monkeypatch, capsys, command
):
    # "Y", "t", "on" set the flag on a request (pydantic's bool); a file refused them, and its
    # flagged people got nothing
    use_home(monkeypatch, champion_home)
    cohort = pd.read_csv(flagged_cohort, keep_default_na=False)
    cohort["crisis_risk"] = ""
    cohort.loc[[3, 4, 5], "crisis_risk"] = ["Y", " t", "On"]
    cohort.loc[[6, 7], "crisis_risk"] = ["n", "OFF"]
    cohort.to_csv(flagged_cohort, index=False)
    out = tmp_path / ("out.csv" if command == "allocate" else "out.parquet")
    assert main([command, "--data", str(flagged_cohort), "--out", str(out)]) == 0, (
        capsys.readouterr().err
    )
    table = pd.read_csv(out) if command == "allocate" else pd.read_parquet(out)
    table = table.set_index("person_id").loc[cohort["person_id"]]
    assert (table["safety_level"].iloc[3:6] == "crisis").all()
    assert (table["safety_level"].iloc[6:8] != "crisis").all()


def test_the_trained_model_records_its_data_and_one_effect_arms(champion_home, monkeypatch):
    from recommender.model import model_facts
    from recommender.registry import load_champion

    use_home(monkeypatch, champion_home)
    model, _ = load_champion()
    facts = model_facts(model)
    assert model.metadata["data_source"] == facts["data_source"] == "simulated"
    assert set(model.metadata["one_effect_arms"]) <= set(model.treatment_arms)


# -- red-team of cohort planning (redplan) --------------------------------------------------------
def _flagged_plan_args(flagged_cohort, out, *extra):
    return ["allocate", "--data", str(flagged_cohort), "--out", str(out), *extra]


def test_a_plan_refused_still_gives_the_crisis_rows_their_resources(
    champion_home, flagged_cohort, tmp_path, monkeypatch, capsys
):
    # /allocate answers a refused plan with its crisis answers; the file must not do less.
    use_home(monkeypatch, champion_home)
    out = tmp_path / "plan.csv"
    code = main(_flagged_plan_args(flagged_cohort, out, "--budget", "500", "--floor", "nurse=0.9"))
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "cannot all be met" in err and "no plan was written" in err
    crisis_file = tmp_path / "plan.crisis.csv"
    assert (
        f"3 profile(s) flagged for crisis risk need the crisis resources now: they are in {crisis_file}"
        in err
    )
    rows = pd.read_csv(crisis_file)
    cohort = pd.read_csv(flagged_cohort)
    assert rows["person_id"].tolist() == cohort["person_id"].iloc[3:6].tolist()
    assert (rows["safety_level"] == "crisis").all() and rows["referral"].str.contains("988").all()
    assert "Physician Support Line" in rows["referral"].iloc[1]  # the physician


def test_a_solver_out_of_time_still_gives_the_crisis_rows_their_resources(
    champion_home, flagged_cohort, tmp_path, monkeypatch, capsys
):
    use_home(monkeypatch, champion_home)
    _solver_out_of_time(monkeypatch)
    out = tmp_path / "plan.csv"
    assert main(_flagged_plan_args(flagged_cohort, out, "--time-limit", "5")) == 1
    err = capsys.readouterr().err
    assert "no plan was written" in err and "plan.crisis.csv" in err and not out.exists()
    assert len(pd.read_csv(tmp_path / "plan.crisis.csv")) == 3
    # once a plan is made, the crisis rows are in it and the failure's file goes
    monkeypatch.undo()
    use_home(monkeypatch, champion_home)
    assert main(_flagged_plan_args(flagged_cohort, out, "--budget", "5000")) == 0
    assert out.exists() and not (tmp_path / "plan.crisis.csv").exists()


def test_a_plan_never_sits_beside_an_earlier_plans_fairness(
    champion_home, flagged_cohort, tmp_path, monkeypatch, capsys
):
    use_home(monkeypatch, champion_home)
    out = tmp_path / "plan.csv"
    fairness = tmp_path / "plan.fairness.csv"
    assert main(_flagged_plan_args(flagged_cohort, out, "--budget", "5000")) == 0
    assert fairness.exists()
    # a cohort of crisis flags only: nobody planned, so no fairness; the earlier one must go
    everyone_flagged = pd.read_csv(flagged_cohort, keep_default_na=False).assign(crisis_risk="true")
    everyone_flagged.to_csv(flagged_cohort, index=False)
    assert main(_flagged_plan_args(flagged_cohort, out, "--budget", "5000")) == 0
    assert (pd.read_csv(out)["safety_level"] == "crisis").all()
    assert not fairness.exists()


def test_an_interrupted_plan_leaves_the_earlier_plan_and_fairness_together(
    champion_home, cohort_file, tmp_path, monkeypatch, capsys
):
    use_home(monkeypatch, champion_home)
    out = tmp_path / "plan.csv"
    assert main(["allocate", "--data", str(cohort_file), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.glob("plan*")}
    real = pd.DataFrame.to_csv

    def interrupted_at_the_fairness(frame, path=None, *args, **kwargs):
        if "fairness" in str(path):
            raise KeyboardInterrupt  # Ctrl-C once the plan itself is written
        return real(frame, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", interrupted_at_the_fairness)
    code = main(["allocate", "--data", str(cohort_file), "--out", str(out), "--budget", "3000"])
    assert code == 130
    after = {p.name: p.read_bytes() for p in tmp_path.glob("plan*")}
    assert after == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_a_solver_that_crashes_still_gives_the_crisis_rows_their_resources(
    champion_home, flagged_cohort, tmp_path, monkeypatch
):
    from recommender.policy import _planning

    def crash(*args, **kwargs):
        raise RuntimeError("HiGHS crashed")

    use_home(monkeypatch, champion_home)
    monkeypatch.setattr(_planning, "allocate", crash)
    out = tmp_path / "plan.csv"
    with pytest.raises(RuntimeError) as crashed:
        main(_flagged_plan_args(flagged_cohort, out))
    assert "plan.crisis.csv" in "".join(crashed.value.__notes__) and not out.exists()
    assert len(pd.read_csv(tmp_path / "plan.crisis.csv")) == 3


def test_a_file_that_fails_the_contract_still_gives_the_crisis_rows_their_resources(
    champion_home, flagged_cohort, tmp_path, monkeypatch, capsys
):
    # /allocate answers the flagged entries of a refused cohort; a crisis answer reads no
    # profile field but the role, so the file's flagged rows get theirs too
    use_home(monkeypatch, champion_home)
    cohort = pd.read_csv(flagged_cohort, keep_default_na=False)
    cohort.loc[4, "ee"] = 99  # a flagged physician, out of range
    cohort.loc[10, "role"] = "surgeon"
    cohort.to_csv(flagged_cohort, index=False)
    out = tmp_path / "plan.csv"
    assert main(_flagged_plan_args(flagged_cohort, out)) == 2
    err = capsys.readouterr().err
    assert "does not meet the data contract" in err and "surgeon" in err
    assert "3 profile(s) flagged for crisis risk" in err and not out.exists()
    rows = pd.read_csv(tmp_path / "plan.crisis.csv")
    assert rows["person_id"].tolist() == cohort["person_id"].iloc[3:6].tolist()
    assert "Physician Support Line" in rows["referral"].iloc[1]


# -- the crisis rows of a file that cannot be scored or planned at all -------------------------
def test_a_scored_file_refused_still_gives_the_crisis_rows_their_resources(
    champion_home, flagged_cohort, tmp_path, monkeypatch, capsys
):
    # A row failing the contract refused the whole file, and the people flagged for crisis
    # risk in it got nothing (allocate already wrote them aside; score did not).
    use_home(monkeypatch, champion_home)
    bad = pd.read_csv(flagged_cohort, keep_default_na=False)
    bad.loc[10, "age"] = 3
    data = tmp_path / "bad.csv"
    bad.to_csv(data, index=False)
    out = tmp_path / "scored.csv"
    assert main(["score", "--data", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "age" in err and "nothing was scored" in err and not out.exists()
    crisis_file = tmp_path / "scored.crisis.csv"
    assert f"they are in {crisis_file}" in err
    rows = pd.read_csv(crisis_file)
    assert rows["person_id"].tolist() == bad["person_id"].iloc[3:6].tolist()
    assert (rows["safety_level"] == "crisis").all() and rows["referral"].str.contains("988").all()
    # scored once the file is fixed: the crisis rows are in the table, the failure's file goes
    assert main(["score", "--data", str(flagged_cohort), "--out", str(out)]) == 0
    assert out.exists() and not crisis_file.exists()


@pytest.mark.parametrize("command", ["score", "allocate"])
def test_a_model_that_cannot_be_found_still_gives_the_crisis_rows_their_resources(
    champion_home, flagged_cohort, tmp_path, monkeypatch, capsys, command
):
    # The model was resolved and loaded before the file was read: a wrong version, a registry
    # out of reach or a model whose files are gone left the flagged people with nothing.
    use_home(monkeypatch, champion_home)
    out = tmp_path / "out.csv"
    argv = [command, "--data", str(flagged_cohort), "--out", str(out), "--model", "99"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no registered model version matches" in err and not out.exists()
    rows = pd.read_csv(tmp_path / "out.crisis.csv")
    assert len(rows) == 3 and (rows["safety_level"] == "crisis").all()


def _greedy_answers(model, rows: pd.DataFrame, config) -> list[dict]:
    """The service's answers (exploration off) for ``rows``, in process."""
    import dataclasses

    from recommender.cohort import PROFILE_COLUMNS
    from recommender.policy import ExplorationRule
    from recommender.service import AuditLog, RecommendationEngine

    config = dataclasses.replace(config, exploration=ExplorationRule(policy="greedy"))
    engine = RecommendationEngine(
        model, "1", catalog=load_catalog(), config=config, audit=AuditLog("sqlite://", salt="s")
    )
    contract = [c for c in rows.columns if c in PROFILE_COLUMNS and c != "crisis_risk"]
    bodies = [engine.check_row(r) for r in rows[contract].to_dict("records")]
    return engine.recommend(bodies, caller_role="program", compact=True)


def test_the_scored_file_says_what_the_services_answers_say(
    champion_home, flagged_cohort, tmp_path, monkeypatch, capsys
):
    from recommender.registry import load_model
    from recommender.service import load_serve_config

    use_home(monkeypatch, champion_home)
    monkeypatch.delenv("RECOMMENDER_SERVE_CONFIG", raising=False)
    out = tmp_path / "scored.parquet"
    assert main(["score", "--data", str(flagged_cohort), "--out", str(out)]) == 0, (
        capsys.readouterr().err
    )
    scored = pd.read_parquet(out)
    assert scored.columns[:4].tolist() == [
        "person_id",
        "recommended",
        "ranking_meaningful",
        "benefit_established",
    ]
    # boolean in the file, missing for the crisis rows (3-5), which no model ranks
    for column in ("ranking_meaningful", "benefit_established"):
        assert str(scored[column].dtype) == "boolean"
        assert scored[column].iloc[3:6].isna().all()
        assert scored[column].drop(index=[3, 4, 5]).notna().all()
    ranked = scored.drop(index=[3, 4, 5])
    cohort = pd.read_csv(flagged_cohort, keep_default_na=False).drop(index=[3, 4, 5])
    answers = _greedy_answers(load_model("champion"), cohort, load_serve_config())
    assert ranked["recommended"].tolist() == [a["recommended"] for a in answers]
    assert ranked["ranking_meaningful"].tolist() == [a["ranking_meaningful"] for a in answers]
    established = [
        a["recommended"] != "none" and "is not established" not in a["ranking_note"]
        for a in answers
    ]
    assert ranked["benefit_established"].tolist() == established
    assert ranked["ranking_meaningful"].nunique() == 2  # the comparison reached both values
    # the same columns, in a CSV
    csv_out = tmp_path / "scored.csv"
    assert main(["score", "--data", str(flagged_cohort), "--out", str(csv_out)]) == 0
    again = pd.read_csv(csv_out)
    assert again.columns.tolist() == scored.columns.tolist()
    assert again["benefit_established"].drop(index=[3, 4, 5]).tolist() == established


def test_score_reads_the_services_config_as_the_service_does(
    champion_home, flagged_cohort, tmp_path, monkeypatch, capsys
):
    # A program sets its own referral rule, interval level and overlap threshold for the
    # service (RECOMMENDER_SERVE_CONFIG): its scored tables must say what its answers say.
    import yaml

    from recommender.paths import config_path
    from recommender.registry import load_model

    use_home(monkeypatch, champion_home)
    settings = yaml.safe_load(config_path("serve.yaml").read_text())
    settings["safety"]["referral_rules"] = [{"ee_at_least": 20}]
    settings["alpha"] = 0.2
    settings["ranking"]["max_overlap"] = 0.0
    own = tmp_path / "serve.yaml"
    own.write_text(yaml.safe_dump(settings))
    monkeypatch.setenv("RECOMMENDER_SERVE_CONFIG", str(own))
    out = tmp_path / "scored.parquet"
    assert main(["score", "--data", str(flagged_cohort), "--out", str(out)]) == 0, (
        capsys.readouterr().err
    )
    scored = pd.read_parquet(out).drop(index=[3, 4, 5])
    cohort = pd.read_csv(flagged_cohort, keep_default_na=False).drop(index=[3, 4, 5])
    referred = (cohort["ee"] >= 20).map({True: "referral", False: "routine"})
    assert scored["safety_level"].tolist() == referred.tolist()
    expected = load_model("champion").score(
        cohort.drop(columns="crisis_risk"), alpha=0.2, max_overlap=0.0
    )
    for column in ("recommended", "ranking_meaningful", "benefit_established"):
        assert scored[column].tolist() == expected[column].tolist()
    assert scored["upper_coaching"].to_numpy() == pytest.approx(
        expected["upper_coaching"].to_numpy(), abs=1e-9
    )
    # --serve-config names the file outright; --alpha still overrides its level
    monkeypatch.delenv("RECOMMENDER_SERVE_CONFIG")
    args = ["score", "--data", str(flagged_cohort), "--out", str(out), "--serve-config", str(own)]
    assert main([*args, "--alpha", "0.1"]) == 0
    again = pd.read_parquet(out).drop(index=[3, 4, 5])
    assert again["safety_level"].tolist() == referred.tolist()
    assert again["upper_coaching"].to_numpy() != pytest.approx(
        expected["upper_coaching"].to_numpy(), abs=1e-9
    )


def test_a_file_of_crisis_rows_keeps_the_tables_types_and_the_mix_counts_every_row(
    champion_home, flagged_cohort, tmp_path, monkeypatch, capsys
):
    import pyarrow.parquet as pq

    use_home(monkeypatch, champion_home)
    cohort = pd.read_csv(flagged_cohort, keep_default_na=False)
    every = tmp_path / "every.parquet"
    assert main(["score", "--data", str(flagged_cohort), "--out", str(every)]) == 0
    printed = capsys.readouterr().out
    only = tmp_path / "crisis.csv"
    cohort.iloc[3:6].to_csv(only, index=False)  # nobody here is scored
    out = tmp_path / "crisis.parquet"
    assert main(["score", "--data", str(only), "--out", str(out)]) == 0
    # the same column types whether or not any row was scored
    assert pq.read_schema(out).types == pq.read_schema(every).types
    # shares of every row: the arms' and the crisis rows' add up to 100 %
    line = next(x for x in printed.splitlines() if x.startswith("recommended: "))
    shares = [float(part.rsplit("(", 1)[1].rstrip("%)")) for part in line[13:].split(", ")]
    assert sum(shares) == pytest.approx(100, abs=0.5)
    assert "(crisis: not scored) 3 (1.0%)" in line  # 3 of 300 rows
