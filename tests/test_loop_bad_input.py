"""The learning loop's commands and routes met with bad input: refused by name, nothing lost,
and no raw person id in what they print or answer."""

import json

import numpy as np
import pandas as pd

import pytest

from recommender.catalog import load_catalog
from recommender.service import AuditLog, OutcomeRefused, record_outcomes
from service_fixtures import service_home  # noqa: F401  (fixture)

ARMS = load_catalog().arm_ids


@pytest.mark.parametrize(
    "row",
    [
        # a missing score: pydantic's "input" of a missing field is the whole row
        {
            "person_id": "jane.doe@example.org",
            "measured_at": "2026-01-01",
            "arm_taken": "none",
            "ee_followup": 20,
            "pa_followup": 30,
        },
        # an unknown column of a program's own file (a name, an e-mail)
        {
            "person_id": "p-1",
            "measured_at": "2026-01-01",
            "arm_taken": "none",
            "ee_followup": 20,
            "dp_followup": 5,
            "pa_followup": 30,
            "email": "jane.doe@example.org",
        },
        # a JSON line that is not an object
        ["jane.doe@example.org", "2026-01-01", "none", 20, 5, 30],
    ],
)
def test_a_refused_outcome_never_echoes_a_person_id(row):
    audit = AuditLog("sqlite://", salt="s")
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(audit, [row], arms=ARMS, source="api")
    assert caught.value.problems
    assert "jane.doe" not in json.dumps(caught.value.problems) + str(caught.value)


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_measurement_time_beyond_the_calendar_in_utc_is_refused_by_field(stamp):
    # Both were an OverflowError: a traceback from `outcomes import`, and over HTTP a 503
    # "the outcome store could not be written ... please retry", which no retry could cure.
    audit = AuditLog("sqlite://", salt="s")
    row = {"person_id": "p-1", "measured_at": stamp, "arm_taken": "none"}
    row.update(ee_followup=20, dp_followup=5, pa_followup=30)
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(audit, [row], arms=ARMS, source="api")
    (problem,) = caught.value.problems
    assert caught.value.status == 422 and problem["field"] == "outcomes[0].measured_at"
    assert problem["value"] == stamp and "UTC" in problem["message"]


def test_evaluate_policy_checks_the_versions_named_before_valuing_the_log(tmp_path, monkeypatch):
    # `evaluate-policy --from-log --version champion` was refused with MLflow's "Invalid Model
    # Version stage" while its own message offered "champion" as accepted, and a mistyped
    # version was only refused after the log's doubly robust scores had been fitted.
    import pipelines._from_log
    from pipelines.train import evaluate_policies_on_log, load_config, run_training
    from recommender.errors import InputError
    from service_fixtures import recommender_home

    with recommender_home(tmp_path / "home"):
        run_training(overrides={"source": "evidence"})
        config, catalog = load_config(), load_catalog()

        def valued(*args, **kwargs):
            raise AssertionError("the log was valued before the versions were checked")

        monkeypatch.setattr(pipelines._from_log, "log_policy_frame", valued)
        for wrong in ("99", "champoin", "a/b"):
            with pytest.raises(InputError, match=f"{wrong!r}.*accepted"):
                evaluate_policies_on_log(config, catalog, versions=[wrong])
        monkeypatch.setattr(pipelines._from_log, "log_policy_frame", lambda *a, **k: None)
        assert evaluate_policies_on_log(config, catalog, versions=["champion", "1"]) is None


def _logged_cohort(n, audit=None, arms=None):
    """``n`` served recommendations with outcomes, as ``logged_cohort`` returns them (served
    ``arms``, one per person, when given)."""
    from datetime import datetime, timedelta, timezone

    import sqlalchemy as sa

    from recommender.service import RecommendationEngine, load_serve_config, logged_cohort
    from recommender.service._audit_tables import assignments
    from service_fixtures import LinearModel, profile

    audit = audit or AuditLog("sqlite://", salt="s")
    engine = RecommendationEngine(
        LinearModel(), "5", catalog=load_catalog(), config=load_serve_config(), audit=audit
    )
    engine.recommend(
        [engine.check_row(profile(person_id=f"p-{i}")) for i in range(n)], caller_role="program"
    )
    if arms is not None:
        with audit.engine.begin() as connection:
            for i, arm in enumerate(arms, 1):
                connection.execute(
                    sa.update(assignments).where(assignments.c.id == i).values(arm=arm)
                )
    outcome = {"arm_taken": "coaching", "ee_followup": 20, "dp_followup": 7, "pa_followup": 38}
    now = datetime.now(timezone.utc)
    record_outcomes(
        audit,
        [{"person_id": f"p-{i}", "measured_at": now.isoformat(), **outcome} for i in range(n)],
        arms=ARMS,
        source="api",
        now=now + timedelta(seconds=5),
    )
    return logged_cohort(audit)


@pytest.mark.parametrize("usual_care", [4, 40])
def test_a_log_too_small_to_learn_from_says_what_it_holds(usual_care):
    # `train --from-log` on a log of 40 outcomes said "4 rows ... every row received the
    # control arm" and "catalog arm 'coaching' has no rows" of a log with 15 coaching rows:
    # the arms too rarely served had been dropped before the contract check spoke.
    from pipelines.train import log_training_frame
    from recommender.errors import InputError

    joined = _logged_cohort(40)
    joined["intervention"] = ["none"] * usual_care + ["coaching"] * (40 - usual_care)
    with pytest.raises(InputError) as caught:
        log_training_frame(joined, load_catalog(), min_arm_rows=30)
    message = str(caught.value)
    assert "the log holds 40 (" in message and f"none {usual_care}" in message
    assert "at least 30 served recommendations with outcomes" in message


def test_evaluate_policy_names_the_log_it_did_not_find(tmp_path):
    # With a models folder holding no audit log (a mistyped RECOMMENDER_HOME or --serve-config),
    # `evaluate-policy --from-log` said "record outcomes first", sending the program to look
    # for missing outcomes rather than at the path.
    from pipelines.train import evaluate_policies_on_log, load_config
    from recommender.errors import InputError
    from recommender.service import load_serve_config

    serve = tmp_path / "serve.yaml"
    serve.write_text(
        open(load_serve_config().source)
        .read()
        .replace("models_dir: null", f"models_dir: {tmp_path / 'elsewhere'}")
    )
    config = load_config(overrides={"log": {"serve_config": str(serve)}})
    with pytest.raises(InputError, match=f"no service log at {tmp_path / 'elsewhere'}"):
        evaluate_policies_on_log(config, load_catalog())
    assert not (tmp_path / "elsewhere").exists()


def test_an_audit_store_that_cannot_be_opened_is_named_without_a_traceback(tmp_path):
    # A store the user may not open (a read-only folder, a folder in its place) gave a
    # SQLAlchemy traceback from `outcomes import`, `audit export`, `train --from-log` and
    # `evaluate-policy --from-log`; the CLI turns an InputError into one line and exit 2.
    from recommender.errors import InputError

    (tmp_path / "audit.db").mkdir()
    with pytest.raises(InputError, match="cannot open the audit store .*audit.db"):
        AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", salt=None)


@pytest.mark.parametrize(
    "header",
    [
        "person_id, measured_at, arm_taken, ee_followup, dp_followup, pa_followup",
        "person_id;measured_at;arm_taken;ee_followup;dp_followup;pa_followup",
    ],
)
def test_an_outcome_file_whose_header_hides_its_columns_shows_what_was_read(tmp_path, header):
    # "missing column(s) ['measured_at', ...]" of a file whose header visibly holds them
    # (a space after each comma, a spreadsheet's semicolons): the columns read are shown.
    from recommender.errors import InputError
    from recommender.service import read_outcome_file

    path = tmp_path / "followup.csv"
    path.write_text(header + "\n")
    with pytest.raises(InputError) as caught:
        read_outcome_file(path)
    message = str(caught.value)
    assert "missing column(s)" in message
    assert repr(header.split(",")[1] if "," in header else header) in message


def test_promoting_a_version_that_does_not_exist_lists_those_that_do(tmp_path):
    # "model 'burnout-recommender' has no version '99'" said neither which versions exist nor
    # which store was asked, so a wrong MLFLOW_TRACKING_URI or RECOMMENDER_HOME looked like a
    # wrong number.
    from pipelines.train import run_training
    from recommender.errors import InputError
    from recommender.registry import promote, tracking_uri
    from service_fixtures import recommender_home

    with recommender_home(tmp_path / "home"):
        run_training(overrides={"source": "evidence"})
        with pytest.raises(InputError) as caught:
            promote("99", reason="test")
        message = str(caught.value)
        assert "'99'" in message and "a registered version number (1)" in message
        assert tracking_uri() in message


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_export_since_beyond_the_calendar_in_utc_is_refused_by_name(since):
    # An OverflowError: a traceback from `audit export --since`, a 500 from /audit/export.
    from recommender.errors import InputError
    from recommender.service import parse_since

    with pytest.raises(InputError) as caught:
        parse_since(since)
    assert caught.value.problems[0]["field"] == "since"


def test_an_import_giving_one_outcome_twice_is_refused_not_called_already_recorded():
    # A file with the same line twice was imported as "recorded 1 outcome(s); 1 already
    # recorded" on its first import: nothing had been recorded before. Only what is stored
    # is skipped; a repeat within the file is named like a repeat over HTTP.
    from datetime import datetime, timedelta, timezone

    from recommender.service import RecommendationEngine, load_serve_config, logged_cohort
    from service_fixtures import LinearModel, profile

    audit = AuditLog("sqlite://", salt="s")
    engine = RecommendationEngine(
        LinearModel(), "5", catalog=load_catalog(), config=load_serve_config(), audit=audit
    )
    engine.recommend([engine.check_row(profile(person_id="p-0"))], caller_role="program")
    row = {"person_id": "p-0", "measured_at": datetime.now(timezone.utc).isoformat()}
    row.update(arm_taken="coaching", ee_followup=20, dp_followup=7, pa_followup=38)
    later = datetime.now(timezone.utc) + timedelta(seconds=5)
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(audit, [row, row], arms=ARMS, source="import", duplicates="skip", now=later)
    (problem,) = caught.value.problems
    assert problem["field"] == "outcomes[1].person_id" and "outcomes[0]" in problem["message"]
    assert logged_cohort(audit).empty
    report = record_outcomes(audit, [row], arms=ARMS, source="import", duplicates="skip", now=later)
    assert report.recorded == 1
    again = record_outcomes(audit, [row], arms=ARMS, source="import", duplicates="skip", now=later)
    assert (again.recorded, again.already_recorded) == (0, 1)


def test_an_outcome_file_larger_than_a_query_may_bind_is_checked_on_postgres(postgres):
    # PostgreSQL binds at most 65,535 parameters a query: importing a bigger file (a large
    # system's survey wave) failed with psycopg's OperationalError, a traceback, instead of
    # being checked row by row like any other.
    from datetime import datetime, timezone

    audit = AuditLog(postgres.database("outcomes"), salt="s")
    stamp = datetime.now(timezone.utc).isoformat()
    rows = [
        {
            "person_id": f"u-{i}",
            "measured_at": stamp,
            "arm_taken": "none",
            "ee_followup": 1,
            "dp_followup": 1,
            "pa_followup": 1,
        }
        for i in range(70_000)
    ]
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(audit, rows, arms=ARMS, source="import", duplicates="skip")
    assert len(caught.value.problems) == 70_000
    assert caught.value.problems[-1]["field"] == "outcomes[69999].person_id"
    audit.close()


def test_an_import_without_the_services_salt_says_so_and_creates_none(
    service_home,  # noqa: F811
    tmp_path,
    monkeypatch,
    capsys,
):
    # Run without RECOMMENDER_AUDIT_SALT (the service had it in its environment), `outcomes
    # import` created a new random audit.salt in the models folder, a secret a later start of
    # the service would take up, and then called every person unknown.
    from recommender.cli import main

    AuditLog(f"sqlite:///{service_home / 'audit.db'}", salt="s").close()
    monkeypatch.delenv("RECOMMENDER_AUDIT_SALT", raising=False)
    monkeypatch.delenv("RECOMMENDER_SECRETS_DIR", raising=False)
    path = tmp_path / "followup.csv"
    path.write_text(
        "person_id,measured_at,arm_taken,ee_followup,dp_followup,pa_followup\n"
        "p-1,2026-01-01,none,20,5,30\n"
    )
    assert main(["outcomes", "import", str(path)]) == 2
    err = capsys.readouterr().err
    assert "RECOMMENDER_AUDIT_SALT" in err and "salt" in err
    assert not (service_home / "audit.salt").exists()


def test_a_log_without_a_feature_the_config_names_is_not_called_too_few(service_home):  # noqa: F811
    # The gate's reason said "the service's log holds 6,000 served recommendation(s) with
    # outcomes, too few to value a policy on: the logged profiles lack 'unit'".
    from pipelines._from_log import log_policy_frame
    from pipelines.train import load_config
    from recommender.errors import InputError
    from service_fixtures import SALT

    audit = AuditLog(f"sqlite:///{service_home / 'audit.db'}", salt=SALT)
    _logged_cohort(80, audit=audit, arms=["none"] * 40 + ["coaching"] * 40)
    audit.close()
    config = load_config(overrides={"extra_features": ["unit"]})
    with pytest.raises(InputError) as caught:
        log_policy_frame(config, load_catalog())
    message = str(caught.value)
    assert "lack 'unit'" in message and "too few" not in message


@pytest.mark.parametrize("shape", ["array", "pretty array", "api body", "lines"])
def test_an_outcome_json_file_is_read_as_lines_an_array_or_the_api_body(tmp_path, shape):
    # A JSON array was refused as "outcomes[0].row: Input should be a valid dictionary", the
    # same array printed with indents as "line 1: not JSON", and the body of POST /outcomes
    # saved to a file as six missing fields: valid JSON, and the API's own shape.
    from recommender.service import read_outcome_file

    rows = [
        {
            "person_id": f"p-{i}",
            "measured_at": "2026-01-01",
            "arm_taken": "none",
            "ee_followup": 20,
            "dp_followup": 5,
            "pa_followup": 30,
        }
        for i in range(3)
    ]
    text = {
        "array": json.dumps(rows),
        "pretty array": json.dumps(rows, indent=2),
        "api body": json.dumps({"outcomes": rows}, indent=2),
        "lines": "".join(json.dumps(r) + "\n" for r in rows),
    }[shape]
    path = tmp_path / "followup.json"
    path.write_text(text)
    assert read_outcome_file(path) == rows


def test_evaluate_policy_names_the_version_the_log_cannot_value(tmp_path, monkeypatch):
    # With a champion trained with an extra feature the log lacks, `evaluate-policy
    # --version 3` answered "profile rows lack the feature column(s) ['unit']", naming no
    # model, while version 3 had never used 'unit'.
    import pipelines._from_log
    from pipelines.train import evaluate_policies_on_log, load_config, run_training
    from recommender.errors import InputError
    from service_fixtures import recommender_home

    def lacks_unit(*args, **kwargs):
        raise InputError("profile rows lack the feature column(s) ['unit']")

    with recommender_home(tmp_path / "home"):
        run_training(overrides={"source": "evidence"})
        logged = (pd.DataFrame({"person_id": ["a-1"]}), pd.DataFrame({"none": [0.0]}), np.zeros(1))
        monkeypatch.setattr(pipelines._from_log, "log_policy_frame", lambda *a, **k: logged)
        monkeypatch.setattr(pipelines._from_log, "off_policy_table", lacks_unit)
        with pytest.raises(InputError, match=r"^champion \(version 1\): profile rows lack"):
            evaluate_policies_on_log(load_config(), load_catalog())


def test_a_refused_import_says_which_line_of_a_csv_a_row_is(service_home, tmp_path, capsys):  # noqa: F811
    # The problems name rows as over HTTP (outcomes[3]); a program looking for that row in its
    # spreadsheet needs the line (the header is line 1), as `validate` says for cohort files.
    from recommender.cli import main

    AuditLog(f"sqlite:///{service_home / 'audit.db'}", salt=None).close()
    path = tmp_path / "followup.csv"
    path.write_text(
        "person_id,measured_at,arm_taken,ee_followup,dp_followup,pa_followup\n"
        "p-1,2026-01-01,yoga,20,5,30\n"
    )
    assert main(["outcomes", "import", str(path)]) == 2
    assert "outcomes[i] is line i + 2 of followup.csv" in capsys.readouterr().err
