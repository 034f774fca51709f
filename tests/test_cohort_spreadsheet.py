"""A program's own cohort as a spreadsheet exports it, or as Parquet with other dtypes.

Found by bringing a hospital's table that the simulator did not make: the export's spellings
('Nurse', 'Internal Medicine', 'Coaching', '41,5') were refused without saying what the
accepted spelling is, and a numeric extra feature read from a CSV stayed text, so a model
trained on the CSV declared it a string in its MLflow signature and refused the same data
from Parquet.
"""

from __future__ import annotations

import pandas as pd
import pytest
from test_cohort_helpers import clean_cohort

from recommender.cohort import load_cohort, read_cohort, typed_cohort, validate_cohort

ARMS = ("none", "coaching", "mindfulness", "peer_group", "resilience_training", "balint_group")


def spreadsheet_export(frame: pd.DataFrame, path, *, decimal_comma=()) -> None:
    """Write ``frame`` as a spreadsheet does: UTF-8 with a byte-order mark, Windows line ends,
    columns in another order, and ``decimal_comma`` columns written with a comma."""
    text = frame[list(reversed(frame.columns))].astype(object)
    for column in decimal_comma:
        text[column] = text[column].map(lambda v: str(v).replace(".", ","))
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        text.to_csv(handle, index=False, lineterminator="\r\n")


def test_a_clean_export_with_bom_crlf_and_other_order_loads_as_its_parquet(tmp_path):
    frame = clean_cohort(240, arms=ARMS)
    spreadsheet_export(frame, tmp_path / "export.csv")
    frame.to_parquet(tmp_path / "export.parquet", index=False)
    from_csv = load_cohort(tmp_path / "export.csv", training=True)
    from_parquet = load_cohort(tmp_path / "export.parquet", training=True)
    assert list(read_cohort(tmp_path / "export.csv").columns)[-1] == "person_id"  # no BOM left
    pd.testing.assert_frame_equal(from_csv[from_parquet.columns], from_parquet)


def test_spellings_of_a_spreadsheet_are_refused_with_the_accepted_spelling(tmp_path):
    frame = clean_cohort(240, arms=ARMS).astype(object)
    frame.loc[0, "role"] = "Nurse"
    frame.loc[1, "role"] = " resident "
    frame.loc[2, "specialty"] = "Internal Medicine"
    frame.loc[3, "intervention"] = "Coaching"
    frame.loc[4, "intervention"] = "resilience training"
    frame.loc[5, "role"] = "nurse practitioner"  # no accepted value reads like it: no hint
    spreadsheet_export(frame, tmp_path / "export.csv", decimal_comma=["weekly_hours"])

    report = validate_cohort(read_cohort(tmp_path / "export.csv"), training=True, arms=ARMS)
    messages = {(p.row, p.column): p.message for p in report.errors}
    assert "'Nurse' (did you mean 'nurse'?); accepted: one of physician" in messages[0, "role"]
    assert "' resident ' (did you mean 'resident'?)" in messages[1, "role"]
    assert "(did you mean 'internal_medicine'?)" in messages[2, "specialty"]
    assert "'Coaching' (did you mean 'coaching'?)" in messages[3, "intervention"]
    assert "(did you mean 'resilience_training'?)" in messages[4, "intervention"]
    assert messages[5, "role"].endswith(
        "'nurse practitioner'; accepted: one of physician, resident, nurse, app"
    )
    hours = str(frame.loc[7, "weekly_hours"])
    assert messages[7, "weekly_hours"] == (
        f"row 7 (person p0007), column weekly_hours: wrong type: {hours.replace('.', ',')!r} "
        f"(a decimal comma; write {hours}); accepted: a number from 0 to 120"
    )
    shown = report.format()
    assert "value 'Nurse' (did you mean 'nurse'?)" in shown
    assert "(a decimal comma; write" in shown
    assert "()" not in shown  # rows without a hint get no empty parentheses


@pytest.mark.parametrize(
    "dtypes",
    [
        {"age": "int32", "ee": "Int64", "dp": "int16", "pa_followup": "UInt8"},
        {"role": "category", "intervention": "category", "gender": "category"},
        {"person_id": "string[pyarrow]", "specialty": "string[pyarrow]", "setting": "string"},
    ],
    ids=["integers", "categories", "strings"],
)
def test_parquet_with_other_dtypes_loads_as_the_contract_types(tmp_path, dtypes):
    frame = clean_cohort(240, arms=ARMS)
    frame.to_parquet(tmp_path / "plain.parquet", index=False)
    frame.astype(dtypes).to_parquet(tmp_path / "typed.parquet", index=False)
    plain = load_cohort(tmp_path / "plain.parquet", training=True)
    typed = load_cohort(tmp_path / "typed.parquet", training=True)
    pd.testing.assert_frame_equal(typed, plain)


def test_numeric_extra_features_read_from_csv_are_typed_as_from_parquet(tmp_path):
    frame = clean_cohort(240, arms=ARMS)
    frame["night_shifts"] = [i % 9 for i in range(len(frame))]
    frame["fte"] = [0.5 + (i % 6) / 10 for i in range(len(frame))]
    frame["on_call"] = ["yes" if i % 3 else "no" for i in range(len(frame))]
    spreadsheet_export(frame, tmp_path / "export.csv")
    extras = ["night_shifts", "fte", "on_call"]
    from_csv = typed_cohort(read_cohort(tmp_path / "export.csv"), extra_features=extras)
    assert from_csv["night_shifts"].dtype == "int64" and from_csv["fte"].dtype == "float64"
    assert from_csv["on_call"].tolist() == frame["on_call"].tolist()  # text stays text
    pd.testing.assert_frame_equal(
        from_csv[extras[:2]], typed_cohort(frame, extra_features=extras)[extras[:2]]
    )
    # not named as a feature: left as read
    assert typed_cohort(read_cohort(tmp_path / "export.csv"))["night_shifts"].iloc[1] == "1"


def test_a_categorical_extra_written_several_ways_gets_a_note_not_a_refusal(tmp_path):
    frame = clean_cohort(240, arms=ARMS)
    frame["on_call"] = ["yes" if i % 3 else "no" for i in range(len(frame))]
    frame.loc[[4, 5], "on_call"] = ["Yes", "yes "]
    report = validate_cohort(frame, training=True, arms=ARMS, extra_features=["on_call"])
    assert report.ok
    (note,) = [p for p in report.problems if p.rule == "extra_spelling"]
    assert note.severity == "note" and note.column == "on_call"
    assert "writes one value several ways ('Yes', 'yes', 'yes ')" in note.message
    frame.loc[[4, 5], "on_call"] = "yes"
    report = validate_cohort(frame, training=True, arms=ARMS, extra_features=["on_call"])
    assert not [p for p in report.problems if p.rule == "extra_spelling"]


def test_empty_columns_and_rows_a_spreadsheet_leaves_after_the_table_are_not_part_of_it(tmp_path):
    # A sheet whose cells beyond the table were once touched exports them as ',,' at the end of
    # every line and lines of commas alone: the cohort was refused ("column '' appears 2
    # times", then every column of those lines missing its value).
    frame = clean_cohort(240, arms=ARMS)
    lines = frame.to_csv(index=False).splitlines()
    blank = "," * (frame.shape[1] + 1)
    text = "\r\n".join([line + ",," for line in lines] + [blank, blank]) + "\r\n"
    (tmp_path / "export.csv").write_text(text, encoding="utf-8-sig")
    frame.to_parquet(tmp_path / "export.parquet", index=False)
    from_csv = load_cohort(tmp_path / "export.csv", training=True)
    from_parquet = load_cohort(tmp_path / "export.parquet", training=True)
    pd.testing.assert_frame_equal(from_csv, from_parquet[from_csv.columns])
    assert list(from_csv.columns) == list(from_parquet.columns)


def test_an_empty_row_inside_the_table_or_a_named_empty_column_is_still_reported(tmp_path):
    frame = clean_cohort(240, arms=ARMS)
    lines = frame.to_csv(index=False).splitlines()
    lines[0] += ",unit"
    lines[1:] = [line + "," for line in lines[1:]]
    lines.insert(5, "," * frame.shape[1])
    (tmp_path / "export.csv").write_text("\n".join(lines) + "\n")
    report = validate_cohort(read_cohort(tmp_path / "export.csv"), training=True, arms=ARMS)
    assert {p.row for p in report.errors} == {4}
    assert "unit" in read_cohort(tmp_path / "export.csv").columns


def test_a_header_written_in_another_case_or_with_spaces_is_named_beside_the_missing_column(
    tmp_path,
):
    # '"Person ID"', '" Age"', 'EE': each contract column was reported missing and each header
    # as an unknown column, eleven of each, without saying that one was the other.
    frame = clean_cohort(240, arms=ARMS).rename(
        columns={"person_id": "Person ID", "age": " Age", "ee": "EE", "weekly_hours": "Hours"}
    )
    frame.to_csv(tmp_path / "export.csv", index=False)
    report = validate_cohort(read_cohort(tmp_path / "export.csv"), training=True, arms=ARMS)
    missing = {p.column: p.message for p in report.errors if p.rule == "missing_column"}
    assert set(missing) == {"person_id", "age", "ee", "weekly_hours"}
    assert "the table has 'Person ID'" in missing["person_id"], missing["person_id"]
    assert "the table has ' Age'" in missing["age"] and "the table has 'EE'" in missing["ee"]
    assert "the table has" not in missing["weekly_hours"]  # no header reads like it
