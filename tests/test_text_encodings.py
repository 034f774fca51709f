"""Tables saved in another encoding than UTF-8 (a spreadsheet's Windows-1252 or "Unicode
Text" export): refused naming the line, the byte and what to save instead; never a codec's
position in a buffer the reader never saw."""

import gzip

import pytest

from recommender.cohort import load_cohort
from recommender.errors import InputError
from recommender.service import read_outcome_file

COHORT = "person_id,age,gender,role,specialty,setting,years_in_practice,weekly_hours,ee,dp,pa\n"
OUTCOMES = "person_id,measured_at,arm_taken,ee_followup,dp_followup,pa_followup\n"


def _cohort_rows(n, accented_row):
    return "".join(
        f"{'pé' if i == accented_row else 'p'}-{i},41,female,nurse,other,rural,3.5,40,20,5,30\n"
        for i in range(n)
    )


@pytest.mark.parametrize("name", ["export.csv", "export.csv.gz"])
@pytest.mark.parametrize("accented_row", [0, 4000])
def test_a_windows_1252_cohort_is_refused_naming_its_line_and_byte(tmp_path, name, accented_row):
    data = (COHORT + _cohort_rows(4001, accented_row)).encode("cp1252")
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with pytest.raises(InputError) as caught:
        load_cohort(path)
    message = str(caught.value)
    assert f"line {accented_row + 2} is not UTF-8 text" in message, message
    assert "byte 0xe9" in message and "accepted: UTF-8" in message
    assert "codec" not in message


def test_a_utf16_cohort_is_refused_naming_its_encoding(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(COHORT + _cohort_rows(3, None), encoding="utf-16")
    with pytest.raises(InputError, match="UTF-16 text; save it as UTF-8.*accepted: UTF-8"):
        load_cohort(path)


def test_a_windows_1252_outcome_file_is_refused_naming_its_line(tmp_path):
    path = tmp_path / "followup.csv"
    rows = "p-1,2026-12-01T10:00:00Z,none,20,5,30\np-\xe9,2026-12-01T10:00:00Z,none,20,5,30\n"
    path.write_bytes((OUTCOMES + rows).encode("cp1252"))
    with pytest.raises(InputError) as caught:
        read_outcome_file(path)
    message = str(caught.value)
    assert "line 3 is not UTF-8 text" in message and message.endswith("in UTF-8"), message
    assert "codec" not in message


@pytest.mark.parametrize("name", ["followup.json", "followup.jsonl"])
def test_a_json_outcome_file_with_a_byte_order_mark_is_read(tmp_path, name):
    # Windows Notepad saves UTF-8 with a byte-order mark: it was refused as "line 1: not JSON
    # (Unexpected UTF-8 BOM)", while a CSV with one was read.
    row = '{"person_id": "p-1", "measured_at": "2026-12-01T10:00:00Z", "arm_taken": "none"}'
    text = f"[{row}]" if name.endswith(".json") else f"{row}\n{row}\n"
    path = tmp_path / name
    path.write_text(text, encoding="utf-8-sig")
    rows = read_outcome_file(path)
    assert rows[0]["person_id"] == "p-1" and len(rows) == (1 if name.endswith(".json") else 2)


@pytest.mark.parametrize("cut", [0, 1, 2, 3])
def test_not_utf8_reads_a_file_in_pieces_and_names_the_line_across_their_seams(tmp_path, cut):
    # Read in pieces so that a batch-score cohort of gigabytes is checked without holding it;
    # a letter of several bytes split by a seam is no error, a bad byte after it is.
    from recommender.cohort import not_utf8

    path = tmp_path / "export.csv"
    good = ("x" * (2**20 - cut) + "é€😀\n") * 3
    path.write_text(good)
    assert not_utf8(path) is None
    path.write_bytes(good.encode() + "pé\n".encode("cp1252"))
    assert not_utf8(path).startswith("line 4 is not UTF-8 text (byte 0xe9")


@pytest.mark.parametrize("name", ["followup.xlsx", "followup.xls", "followup.ods", "f.parquet"])
def test_an_outcome_workbook_or_parquet_file_is_refused_by_its_kind(tmp_path, name):
    # Read as CSV, an Excel workbook (a zip) was refused as "line 1 is not UTF-8 text", and a
    # Parquet file with a tokenizer's "Expected 2 fields in line 4, saw 6".
    path = tmp_path / name
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\x86")
    with pytest.raises(InputError) as caught:
        read_outcome_file(path)
    message = str(caught.value)
    assert message.startswith(f"{name}: a ") and "save it as CSV UTF-8" in message, message
    assert "line 1" not in message and "accepted: CSV" in message
