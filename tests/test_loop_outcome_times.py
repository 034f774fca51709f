"""Follow-up times and scores as programs write them: read as written, or refused by
row and field with the value given; never a number taken for a date."""

from datetime import datetime, timezone

import pytest

from recommender.catalog import load_catalog
from recommender.service import AuditLog, OutcomeRefused, record_outcomes

ARMS = load_catalog().arm_ids
SCORES = {"arm_taken": "none", "ee_followup": 20, "dp_followup": 5, "pa_followup": 30}


def _refused(stamp) -> dict:
    audit = AuditLog("sqlite://", salt="s-for-a-test-of-times")
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(
            audit, [{"person_id": "p-1", "measured_at": stamp, **SCORES}], arms=ARMS, source="api"
        )
    (problem,) = caught.value.problems
    assert caught.value.status == 422
    return problem


@pytest.mark.parametrize(
    "stamp",
    [
        "46000",  # an Excel serial day (2025-12-09) exported as a number
        46000,  # the same sent as a JSON number
        46000.5,
        "20260312",  # a compact date, read by pydantic as 20 million seconds after 1970
        "1780000000",  # Unix seconds: nothing in the contract says so
        1780000000,
    ],
)
def test_a_number_for_measured_at_is_refused_as_written_not_read_as_seconds_since_1970(stamp):
    # Each was taken for seconds (or milliseconds) since 1970: an Excel serial day became
    # 1970-01-01T12:46:40 and was refused as "dated before its recommendation", showing a value
    # the program never wrote, and Unix seconds were stored as if the contract said so.
    problem = _refused(stamp)
    assert problem["field"] == "outcomes[0].measured_at"
    assert problem["value"] == stamp
    assert "1970-01-01" not in str(problem) and "not read as a time" in problem["message"]
    assert problem["accepted"].startswith("an ISO 8601 date or time")


@pytest.mark.parametrize(
    "stamp",
    ["12/03/2026", "2027-02-29", "2026-03-12T24:00:00", " 2026-03-12T10:00:00Z", "NaN", True],
)
def test_a_time_written_otherwise_is_refused_by_field_with_the_value_given(stamp):
    problem = _refused(stamp)
    assert problem["field"] == "outcomes[0].measured_at" and problem["value"] == stamp
    assert problem["accepted"].startswith("an ISO 8601 date or time")


@pytest.mark.parametrize(
    ("stamp", "utc"),
    [
        ("2026-03-12T10:00:00Z", datetime(2026, 3, 12, 10, tzinfo=timezone.utc)),
        ("2026-03-12T10:00:00+01:00", datetime(2026, 3, 12, 9, tzinfo=timezone.utc)),
        ("2026-03-12T10:00:00-0500", datetime(2026, 3, 12, 15, tzinfo=timezone.utc)),
        ("2026-03-12 10:00", datetime(2026, 3, 12, 10, tzinfo=timezone.utc)),
        ("2026-03-12", datetime(2026, 3, 12, tzinfo=timezone.utc)),
        ("2028-02-29T08:00:00Z", datetime(2028, 2, 29, 8, tzinfo=timezone.utc)),
    ],
)
def test_iso_times_with_or_without_a_zone_are_read_in_utc(stamp, utc):
    # Read back from the "in the future" refusal of a service whose clock says 2000, which
    # shows the time as it was read, in UTC.
    audit = AuditLog("sqlite://", salt="s-for-a-test-of-times")
    row = {"person_id": "p-1", "measured_at": stamp, **SCORES}
    then = datetime(2000, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(audit, [row], arms=ARMS, source="api", now=then)
    (problem,) = caught.value.problems
    assert problem["message"].startswith("in the future")  # and, without a zone, that it is UTC
    assert datetime.fromisoformat(problem["value"]) == utc


def _served_at(audit, logged_at, person_id="p-1"):
    audit.append(
        [
            {
                "request_id": f"r-{person_id}",
                "model_version": "5",
                "caller_role": "program",
                "person_id": person_id,
                "safety_level": "routine",
                "recommended": "coaching",
                "ranking_meaningful": True,
                "effects": {"coaching": -5.0},
                "logged_at": logged_at,
                "assignment": {
                    "arm": "coaching",
                    "probability": 1.0,
                    "policy": "greedy",
                    "cycle": 0,
                    "probabilities": {"coaching": 1.0},
                },
            }
        ]
    )


@pytest.mark.parametrize("stamp", ["2026-03-12T10:00:00Z", "2026-03-12T11:00:00+01:00"])
def test_an_outcome_measured_in_the_second_of_its_recommendation_is_linked(stamp):
    # A program's clock (and README's `date -u +%FT%TZ`) writes whole seconds, the log keeps
    # microseconds: an outcome stamped in the same second as the answer at 10:00:00.7 was
    # refused as "dated before its recommendation", though outcomes are stored to the second.
    audit = AuditLog("sqlite://", salt="s-for-a-test-of-times")
    _served_at(audit, datetime(2026, 3, 12, 10, 0, 0, 700000, tzinfo=timezone.utc))
    row = {"person_id": "p-1", "measured_at": stamp, **SCORES}
    then = datetime(2026, 3, 13, tzinfo=timezone.utc)
    report = record_outcomes(audit, [row], arms=ARMS, source="api", now=then)
    assert report.recorded == 1 and report.linked == ["r-p-1"]
    earlier = {**row, "measured_at": "2026-03-12T09:59:59Z"}
    with pytest.raises(OutcomeRefused, match="dated before its recommendation"):
        record_outcomes(audit, [earlier], arms=ARMS, source="api", now=then)


def test_an_outcome_file_with_a_spreadsheets_empty_columns_and_lines_reads_its_rows(tmp_path):
    from recommender.service import read_outcome_file

    path = tmp_path / "followup.csv"
    header = "person_id,measured_at,arm_taken,ee_followup,dp_followup,pa_followup,,"
    rows = ["p-1,2026-03-12T10:00:00Z,none,20,5,30,,", "p-2,2026-03-12,none,21,6,31,,"]
    path.write_text("\r\n".join([header, *rows, ",,,,,,,", ",,,,,,,"]) + "\r\n")
    read = read_outcome_file(path)
    assert [sorted(row) for row in read] == [sorted(header.strip(",").split(","))] * 2
    assert [row["person_id"] for row in read] == ["p-1", "p-2"]


@pytest.mark.parametrize(
    ("score", "recorded"),
    [(20, 20), (20.0, 20), (21.5, None), (True, None), ("20", None), (float("nan"), None)],
)
def test_a_score_sent_as_a_whole_float_is_read_as_the_profile_routes_read_one(score, recorded):
    # /recommend takes 41.0 for an integer (JSON does not tell 41 from 41.0, and a client
    # holding a column with a missing value writes floats); /outcomes refused 20.0 with
    # "Input should be a valid integer" while saying it accepts "a whole number from 0 to 54".
    audit = AuditLog("sqlite://", salt="s-for-a-test-of-times")
    _served_at(audit, datetime(2026, 3, 12, 10, tzinfo=timezone.utc))
    row = {"person_id": "p-1", "measured_at": "2026-03-12T11:00:00Z", **SCORES}
    row["ee_followup"] = score
    then = datetime(2026, 3, 13, tzinfo=timezone.utc)
    if recorded is None:
        with pytest.raises(OutcomeRefused) as caught:
            record_outcomes(audit, [row], arms=ARMS, source="api", now=then)
        (problem,) = caught.value.problems
        assert problem["field"] == "outcomes[0].ee_followup"
        return
    assert record_outcomes(audit, [row], arms=ARMS, source="api", now=then).recorded == 1


def test_an_outcome_csv_reads_scores_written_as_whole_decimals(tmp_path):
    from recommender.service import read_outcome_file

    path = tmp_path / "followup.csv"
    path.write_text(
        "person_id,measured_at,arm_taken,ee_followup,dp_followup,pa_followup\n"
        "p-1,2026-03-12T11:00:00Z,none,20.0, 5 ,3e1\n"
        "p-2,2026-03-12T11:00:00Z,none,12.5,NaN,inf\n"
    )
    first, second = read_outcome_file(path)
    assert (first["ee_followup"], first["dp_followup"], first["pa_followup"]) == (20.0, 5, 30.0)
    assert (second["ee_followup"], second["dp_followup"], second["pa_followup"]) == (
        12.5,
        "NaN",
        "inf",
    )
