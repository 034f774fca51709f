"""Erasing a person (`recommender audit erase`): their assignments and outcomes deleted, their
answers redacted but still counted, in parts of whole people on SQLite and PostgreSQL, recorded
without saying whose; everyone else's rows untouched."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import sqlalchemy as sa
import yaml

from recommender.catalog import load_catalog
from recommender.cli import main
from recommender.errors import InputError
from recommender.service import (
    AuditLog,
    RecommendationEngine,
    audit_csv,
    erase_people,
    erasure_history,
    load_serve_config,
    logged_cohort,
    outcome_history,
    outcome_history_csv,
    record_outcomes,
)
from recommender.service._audit_tables import (
    SERVICE_TABLES,
    assignments,
    erasures,
    outcomes,
    recommendations,
)
from service_fixtures import SALT, LinearModel, profile
from service_fixtures import service_home  # noqa: F401 - fixture
from test_loop_outcome_correction import store_url  # noqa: F401 - fixture: SQLite, PostgreSQL

ARMS = load_catalog().arm_ids
PEOPLE = 5
TABLES = (recommendations, assignments, outcomes, erasures)


def _fill(audit: AuditLog) -> None:
    """p-0 .. p-4 served (p-0 twice), outcomes for p-0 .. p-3 and a correction of p-0's, then
    a crisis answer for p-0 and p-1: every kind of row a person leaves."""
    engine = RecommendationEngine(
        LinearModel(), "5", catalog=load_catalog(), config=load_serve_config(), audit=audit
    )
    served = [engine.check_row(profile(person_id=f"p-{i}")) for i in range(PEOPLE)]
    engine.recommend([*served, engine.check_row(profile(person_id="p-0"))], caller_role="program")
    now = datetime.now(timezone.utc) + timedelta(seconds=5)
    rows = [
        {
            "person_id": f"p-{i}",
            "measured_at": (now - timedelta(seconds=4)).isoformat(),
            "arm_taken": "coaching",
            "ee_followup": 20 + i,
            "dp_followup": 7,
            "pa_followup": 38,
        }
        for i in range(4)
    ]
    record_outcomes(audit, rows, arms=ARMS, source="test", now=now)
    fixed = [{**rows[0], "ee_followup": 30}]
    record_outcomes(audit, fixed, arms=ARMS, source="test", now=now, correct=True)
    crisis = [engine.check_row(profile(person_id=f"p-{i}", crisis_risk=True)) for i in (0, 1)]
    engine.recommend(crisis, caller_role="program")


def _snapshot(audit: AuditLog) -> dict:
    """Every row of every table the erasure touches, as stored, by table and id."""
    with audit.engine.connect() as connection:
        return {
            table.name: {
                row.id: tuple(row) for row in connection.execute(sa.select(table).order_by("id"))
            }
            for table in TABLES
        }


def _rows_of(audit: AuditLog, person_id: str) -> dict:
    person = audit.person_hash(person_id)
    with audit.engine.connect() as connection:
        return {
            table.name: connection.execute(
                sa.select(table.c.request_id).where(table.c.person_hash == person)
            )
            .scalars()
            .all()
            for table in (recommendations, assignments, outcomes)
        }


@pytest.fixture
def audit(store_url):
    log = AuditLog(store_url, salt=SALT)
    _fill(log)
    yield log
    log.close()


def test_an_erasure_removes_the_person_keeps_their_answers_counted_and_no_one_else_changes(
    audit,
):
    before = _snapshot(audit)
    theirs = _rows_of(audit, "p-0")
    # p-0: three answers (two ranked, one crisis), two assignments, an outcome and its correction
    assert [len(theirs[t]) for t in ("recommendations", "assignments", "outcomes")] == [3, 2, 2]
    report = erase_people(audit, ["p-0"])
    assert (report.found, report.missing, report.dry_run) == (1, (), False)
    assert (report.answers, report.crisis_answers, report.assignments, report.outcomes) == (
        3,
        1,
        2,
        2,
    )
    after = _snapshot(audit)
    assert _rows_of(audit, "p-0") == {"recommendations": [], "assignments": [], "outcomes": []}
    # Every other person's row, in every table, as it was, value for value.
    for table in (recommendations, assignments, outcomes):
        at = [c.name for c in table.columns].index("request_id")
        others = {i: r for i, r in before[table.name].items() if r[at] not in theirs[table.name]}
        assert len(others) >= 3 and {i: after[table.name][i] for i in others} == others
    assert len(after["assignments"]) == len(before["assignments"]) - 2
    assert len(after["outcomes"]) == len(before["outcomes"]) - 2
    # The answers are still counted, with what was not the person's kept.
    assert len(after["recommendations"]) == len(before["recommendations"])
    redacted = [r for r in _exported(after) if r["person_hash"] == "erased"]
    assert len(redacted) == 3
    old = {r["id"]: r for r in _exported(before)}
    for row in redacted:
        was = old[row["id"]]
        for kept_field in ("logged_at", "batch_id", "model_version", "caller_role"):
            assert row[kept_field] == was[kept_field]
        assert (row["safety_level"], row["recommended"]) == (
            was["safety_level"],
            was["recommended"],
        )
        assert row["request_id"] == f"erased-{row['id']}" and row["effects"] == "{}"
        assert row["dp_effect"] is None and row["pa_upper"] is None
    assert sorted(r["safety_level"] for r in redacted) == ["crisis", "routine", "routine"]
    # Recorded: when and how many, never whose.
    (record,) = erasure_history(audit)
    assert record["id"] == report.erasure_id
    assert record["completed_at"] >= record["erased_at"]  # written in one part, completed
    assert {k: v for k, v in record.items() if k not in ("id", "erased_at", "completed_at")} == {
        "people_asked": 1,
        "people_found": 1,
        "answers_redacted": 3,
        "crisis_answers_redacted": 1,
        "assignments_deleted": 2,
        "outcomes_deleted": 2,
    }
    # The auditor's exports no longer hold the person, nor the requests the program knew.
    text = audit_csv(audit.export()) + outcome_history_csv(outcome_history(audit))
    assert audit.person_hash("p-0") not in text
    assert not any(request in text for request in theirs["recommendations"])
    assert audit.person_hash("p-1") in text  # the others are still there


def _exported(snapshot: dict) -> list[dict]:
    names = [c.name for c in recommendations.columns]
    return [dict(zip(names, row)) for row in snapshot["recommendations"].values()]


def test_a_dry_run_changes_nothing_and_counts_what_the_erasure_then_does(audit):
    before = _snapshot(audit)
    dry = erase_people(audit, ["p-1", "p-9"], dry_run=True)
    assert _snapshot(audit) == before
    assert dry.dry_run and dry.erasure_id is None and dry.missing == (1,)
    done = erase_people(audit, ["p-1", "p-9"])
    counted = ("found", "missing", "answers", "crisis_answers", "assignments", "outcomes")
    assert [getattr(dry, c) for c in counted] == [getattr(done, c) for c in counted]
    assert (done.answers, done.crisis_answers, done.assignments, done.outcomes) == (2, 1, 1, 1)


def test_a_second_erasure_is_a_no_op_said_as_such(audit):
    erase_people(audit, ["p-2"])
    before = _snapshot(audit)
    again = erase_people(audit, ["p-2"])
    assert (again.found, again.missing, again.rows, again.erasure_id) == (0, (0,), 0, None)
    assert _snapshot(audit) == before  # no second record either
    assert len(erasure_history(audit)) == 1


def test_ids_not_in_the_store_are_reported_and_the_others_erased(audit):
    report = erase_people(audit, ["nobody", "p-3", "p-3", "p-4"])
    assert (report.asked, report.found, report.missing) == (3, 2, (0,))  # p-3 once
    assert _rows_of(audit, "p-3")["recommendations"] == []
    assert _rows_of(audit, "p-4")["assignments"] == []
    (record,) = erasure_history(audit)
    assert (record["people_asked"], record["people_found"]) == (3, 2)


@pytest.mark.parametrize("bad", ["", "   ", "p-\ud800"])
def test_an_id_no_store_can_hold_is_refused_by_position_and_nothing_is_erased(audit, bad):
    before = _snapshot(audit)
    with pytest.raises(InputError) as refused:
        erase_people(audit, ["p-1", bad])
    assert str(refused.value).startswith("person id 2 ")
    assert "accepted" in str(refused.value) and "p-1" not in str(refused.value)
    assert _snapshot(audit) == before


def test_a_failure_midway_leaves_the_store_as_it_was(audit, monkeypatch):
    import recommender.service._erasure as erasure

    before = _snapshot(audit)

    def fail(connection, counts):
        # after the deletes and the redaction, before the commit
        assert connection.execute(sa.select(sa.func.count()).select_from(outcomes)).scalar() < 5
        raise RuntimeError("the store went away")

    monkeypatch.setattr(erasure, "_record", fail)
    with pytest.raises(RuntimeError, match="went away"):
        erase_people(audit, ["p-0", "p-1"])
    assert _snapshot(audit) == before
    monkeypatch.undo()
    assert erase_people(audit, ["p-0", "p-1"]).found == 2  # nothing was left locked


def test_the_service_role_needs_no_privilege_on_the_erasure_record():
    # An upgraded deployment whose grants predate revision 0008 keeps serving.
    assert erasures not in SERVICE_TABLES and recommendations in SERVICE_TABLES


def test_a_sqlite_file_keeps_no_copy_of_what_was_erased(tmp_path):
    path = tmp_path / "audit.db"
    audit = AuditLog(f"sqlite:///{path}", salt=SALT)

    @sa.event.listens_for(audit.engine, "connect")
    def _as_most_builds(dbapi_connection, _record):
        # SQLite leaves deleted rows' bytes in free space unless built otherwise (Debian's
        # build overwrites them): the erasure must ask for it, not count on the build.
        dbapi_connection.execute("PRAGMA secure_delete = OFF")

    audit.engine.dispose()
    _fill(audit)
    person, request = audit.person_hash("p-0"), _rows_of(audit, "p-0")["assignments"][0]
    erase_people(audit, ["p-0"])

    def stored():
        return b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("audit.db"))

    # Read while the store is still open (as the service keeps it): the write-ahead log too.
    assert audit.person_hash("p-1").encode() in stored()  # the check can see a hash
    assert person.encode() not in stored() and request.encode() not in stored()
    audit.close()
    assert person.encode() not in stored()


# -- the command ------------------------------------------------------------------------------


def _store(home):
    return AuditLog(f"sqlite:///{home / 'audit.db'}", salt=SALT)


def test_the_command_erases_reports_and_records(service_home, capsys):
    audit = _store(service_home)
    _fill(audit)
    before = _snapshot(audit)
    argv = ["audit", "erase", "--person-id", "p-0", "--person-id", "nobody"]
    assert main([*argv, "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert said.startswith("dry run, nothing changed: 1 of 2 person id(s) found; erasing")
    assert "not in the store: --person-id 2 of 2" in said and "nobody" not in said
    assert _snapshot(audit) == before
    assert main(argv) == 0
    said = capsys.readouterr().out
    assert "erased 1 of 2 person id(s): redacted 3 answer(s) (1 crisis answer(s) among" in said
    assert "deleted 2 assignment(s) and 2 outcome row(s); recorded as erasure 1" in said
    assert "p-0" not in said and _rows_of(audit, "p-0")["outcomes"] == []
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("nothing to erase: none of the 2 person id(s)")
    assert main(["audit", "export", "--table", "erasures"]) == 0
    exported = capsys.readouterr().out.splitlines()
    assert len(exported) == 2 and exported[0].startswith("id,erased_at,completed_at,people_asked")
    assert exported[1].endswith(",2,1,3,1,2,2")
    audit.close()


def test_the_command_reads_an_ids_file_and_names_its_lines(service_home, tmp_path, capsys):
    audit = _store(service_home)
    _fill(audit)
    ids = tmp_path / "leavers.txt"
    ids.write_text("person_id\np-1\r\n\nnobody\np-2\n", encoding="utf-8")
    assert main(["audit", "erase", "--ids-file", str(ids)]) == 0
    said = capsys.readouterr().out
    assert "erased 2 of 3 person id(s)" in said and "not in the store: line 4 of" in said
    ids.write_text("p-3\n  \n", encoding="utf-8")
    before = _snapshot(audit)
    assert main(["audit", "erase", "--ids-file", str(ids)]) == 2
    error = capsys.readouterr().err
    assert "line 2 of leavers.txt holds only spaces" in error and "accepted" in error
    assert _snapshot(audit) == before
    ids.write_bytes(b"p-3\n\xe9\n")
    assert main(["audit", "erase", "--ids-file", str(ids)]) == 2
    assert "line 2" in capsys.readouterr().err and _snapshot(audit) == before
    audit.close()


def test_the_command_without_the_services_salt_erases_nothing(service_home, monkeypatch, capsys):
    audit = _store(service_home)
    _fill(audit)
    audit.close()
    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", "another-salt-not-the-stores")
    assert main(["audit", "erase", "--person-id", "p-0"]) == 2
    assert "another audit salt" in capsys.readouterr().err
    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", SALT)
    assert _rows_of(_store(service_home), "p-0")["outcomes"]


# -- the learning loop on an erased store ---------------------------------------------------


def test_the_loop_values_policies_on_the_erased_store(tmp_path):
    from bench._program import followup_under, staff_cohort
    from pipelines._train_config import config_from_mapping
    from pipelines.train import log_training_frame, policy_scores_on_log
    from recommender.cohort import PROFILE_COLUMNS
    from recommender.model import evidence_model

    catalog = load_catalog()
    raw = yaml.safe_load(load_serve_config().source.read_text())
    raw["exploration"] = {
        "policy": "thompson",
        "epsilon": 0.1,
        "usual_care_share": 0.1,
        "max_cost": 0.2,
    }
    (tmp_path / "serve.yaml").write_text(yaml.safe_dump(raw))
    config = load_serve_config(tmp_path / "serve.yaml")
    audit = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", salt=SALT)
    engine = RecommendationEngine(
        evidence_model(catalog), "1", catalog=catalog, config=config, audit=audit
    )
    staff = staff_cohort("default", 1500, seed=5)
    plain = staff[list(PROFILE_COLUMNS)].astype(object).to_dict(orient="records")
    rows = [
        engine.check_row({c: v.item() if hasattr(v, "item") else v for c, v in p.items()})
        for p in plain
    ]
    answers = engine.recommend(rows, caller_role="program")
    served = [a["recommended"] for a in answers]
    follow = followup_under(staff, served)
    now = datetime.now(timezone.utc)
    record_outcomes(
        audit,
        [
            {
                "person_id": str(staff["person_id"].iloc[i]),
                "measured_at": now.isoformat(),
                "arm_taken": served[i],
                **{k: int(follow[k].iloc[i]) for k in follow.columns},
            }
            for i in range(len(staff))
            if answers[i]["assignment"]
        ],
        arms=catalog.arm_ids,
        source="test",
        now=now + timedelta(seconds=5),
    )
    logged = len(logged_cohort(audit))
    leavers = [str(p) for p in staff["person_id"].iloc[:100]]
    report = erase_people(audit, leavers)
    joined = logged_cohort(audit)
    assert len(joined) == logged - report.outcomes and report.outcomes > 90
    assert not set(joined["person_id"]) & {audit.person_hash(p) for p in leavers}
    settings = config_from_mapping(
        {"seed": 0, "outcomes": ["ee"], "primary": "ee", "learner": {"learner": "t"}}
    )
    frame, _ = log_training_frame(joined, catalog, min_arm_rows=20)
    assert len(frame) <= len(joined)
    table, scores, _, _ = policy_scores_on_log(joined, settings, catalog)
    assert len(scores) == len(table) > 0 and np.isfinite(np.asarray(scores, dtype=float)).all()
    audit.close()


# -- what a training run keeps in MLflow ------------------------------------------------------


def test_a_models_input_example_holds_no_row_of_its_training_data():
    # It held the first five held-out rows: from a log-trained run, five staff members'
    # profiles and MBI scores in input_example.json, which no erasure from the store reaches.
    from bench._program import staff_cohort
    from pipelines.train import example_profiles
    from recommender.cohort import PROFILE_COLUMNS

    one, other = staff_cohort("default", 300, seed=1), staff_cohort("default", 300, seed=2)
    one["site_size"] = np.arange(300) % 7  # a feature beyond the contract
    other["site_size"] = 3
    first = example_profiles(one, ["age", "site_size"])
    second = example_profiles(other, ["age", "site_size"])
    assert first.equals(second)  # nothing of either cohort's rows
    assert first["site_size"].tolist() == [3] * len(first)  # the median, as an integer
    assert first["site_size"].dtype == one["site_size"].dtype
    rows = {tuple(r) for r in one[list(PROFILE_COLUMNS[1:])].astype(str).to_numpy()}
    assert not rows & {tuple(r) for r in first[list(PROFILE_COLUMNS[1:])].astype(str).to_numpy()}
    assert not set(first["person_id"]) & set(one["person_id"].astype(str))


def test_a_trained_runs_logged_example_is_no_one_from_its_data(trained):
    import pipelines.train as train
    from recommender.cohort import PROFILE_COLUMNS
    from test_pipeline_train import SMALL

    _, home = trained
    cohort = train.load_stage(train.config_from_mapping(SMALL))
    people = {
        json.dumps([str(v) for v in row])
        for row in cohort.frame[list(PROFILE_COLUMNS[1:])].to_numpy().tolist()
    }
    logged = list((home / "mlartifacts").rglob("input_example.json"))
    assert logged
    for path in logged:
        example = json.loads(path.read_text())
        columns = example["columns"]
        for row in example["data"]:
            profile = [str(row[columns.index(c)]) for c in PROFILE_COLUMNS[1:]]
            assert json.dumps(profile) not in people, path


def test_a_role_that_may_not_delete_everything_erases_nothing_and_says_what_it_needs(postgres):
    # The service's own role (SELECT and INSERT), given DELETE on outcomes alone: the erasure
    # deletes the outcomes, is refused at the assignments, and takes the outcomes back.
    import psycopg

    owner_url = postgres.database("erasure")
    owner = AuditLog(owner_url, salt=SALT)
    _fill(owner)
    before = _snapshot(owner)
    database = sa.engine.make_url(owner_url).database
    with psycopg.connect(
        f"host=127.0.0.1 port={postgres.port} user=recommender dbname={database}",
        autocommit=True,
    ) as connection:
        for statement in (
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'svc_erase') "
            "THEN CREATE ROLE svc_erase LOGIN; END IF; END $$",
            "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO svc_erase",
            "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO svc_erase",
            "GRANT DELETE ON outcomes TO svc_erase",
        ):
            connection.execute(statement)
    url = f"postgresql+psycopg://svc_erase:pw-not-shown@127.0.0.1:{postgres.port}/{database}"
    service = AuditLog(url, salt=SALT)
    with pytest.raises(InputError) as refused:
        erase_people(service, ["p-0"])
    said = str(refused.value)
    assert "may not erase" in said and "nothing was erased" in said
    assert "DELETE on assignments" in said and "pw-not-shown" not in said
    assert _snapshot(owner) == before
    service.close()
    assert erase_people(owner, ["p-0"]).outcomes == 2  # the owner may
    owner.close()
