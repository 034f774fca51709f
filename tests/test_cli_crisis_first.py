"""The commands that read a cohort file answer its rows flagged for crisis risk before any
refusal, an option argparse refuses included (``--budget -5``, ``--alpha abc``): the refusal
is said as before (exit 2, the option and what it accepts), and the crisis file beside the
output holds the flagged people's resources. And an empty cohort file is said to be empty, with
the header the data contract needs, where pandas said "No columns to parse from file"."""

from __future__ import annotations

import gzip
import shutil

import pandas as pd
import pytest
from spark_fixtures import spark  # noqa: F401 - the process's one local Spark session

from recommender.cli import main
from recommender.cohort import PROFILE_COLUMNS, read_cohort
from recommender.errors import InputError

ANSWERED = "flagged for crisis risk need the crisis resources now: they are in"


@pytest.fixture
def flagged_file(tmp_path, monkeypatch):
    """Two of four people flagged (a nurse and a physician), one flag that cannot be read."""
    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path / "home"))  # no model: never reached
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = tmp_path / "cohort.csv"
    pd.DataFrame(
        {
            "person_id": ["p1", "p2", "p3", "p4"],
            "role": ["nurse", "physician", "resident", "app"],
            "crisis_risk": ["true", "", "YES", "maybe"],
        }
    ).to_csv(path, index=False)
    return path


def _refused(argv) -> int:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    return stop.value.code


REFUSED_OPTIONS = [
    ("score", ["--alpha", "abc"], "argument --alpha: 'abc' is not accepted; accepted: a number"),
    ("score", ["--bogus", "3"], "unrecognized arguments: --bogus 3"),
    ("allocate", ["--budget", "-5"], "argument --budget: '-5' is not accepted; accepted: US$ >= 0"),
    ("allocate", ["--budget", "nan"], "argument --budget: 'nan' is not accepted"),
    ("allocate", ["--time-limit", "0"], "argument --time-limit: '0' is not accepted; accepted: "),
    ("allocate", ["--alpha", "0,1"], "argument --alpha: '0,1' is not accepted; accepted: "),
]


@pytest.mark.parametrize(("command", "extra", "message"), REFUSED_OPTIONS)
def test_an_option_argparse_refuses_still_gives_the_crisis_rows_their_resources(
    flagged_file, tmp_path, capsys, command, extra, message
):
    out = tmp_path / "out.csv"
    assert _refused([command, "--data", str(flagged_file), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    crisis_file = tmp_path / "out.crisis.csv"
    assert f"3 profile(s) {ANSWERED} {crisis_file}" in err
    rows = pd.read_csv(crisis_file)
    assert rows["person_id"].tolist() == ["p1", "p3", "p4"]  # p4's flag cannot be read
    assert (rows["safety_level"] == "crisis").all() and rows["referral"].str.contains("988").all()
    assert not out.exists()


def test_the_refusal_reads_as_before_when_nobody_is_flagged(tmp_path, capsys):
    data = tmp_path / "cohort.csv"
    data.write_text("person_id,role,crisis_risk\np1,nurse,false\n")
    argv = ["allocate", "--data", str(data), "--out", str(tmp_path / "p.csv")]
    assert _refused([*argv, "--time-limit", "-1"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == (
        "recommender allocate: error: argument --time-limit: '-1' is not accepted; "
        "accepted: seconds > 0"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort.csv"]


def test_a_refusal_that_cannot_reach_the_file_is_said_alone(flagged_file, tmp_path, capsys):
    # no --out: nowhere to write; a missing file: nobody to answer; an --out whose crisis file
    # is the cohort file: never written over
    missing = tmp_path / "missing.csv"
    over = tmp_path / "cohort.crisis.csv"
    shutil.copy(flagged_file, over)
    for argv in (
        ["score", "--data", str(flagged_file), "--alpha", "x"],
        ["score", "--data", str(missing), "--out", str(tmp_path / "o.csv"), "--alpha", "x"],
        ["score", "--data", str(over), "--out", str(tmp_path / "cohort.csv"), "--alpha", "x"],
    ):
        assert _refused(argv) == 2
        err = capsys.readouterr().err
        assert "argument --alpha: 'x' is not accepted" in err and "crisis" not in err
    assert not (tmp_path / "o.crisis.csv").exists()
    assert over.read_bytes() == flagged_file.read_bytes()


def test_help_is_unchanged(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["allocate", "--help"])
    assert stop.value.code == 0
    printed = capsys.readouterr().out
    assert "--time-limit TIME_LIMIT" in printed and "seconds the solver may take" in printed


# -- empty files -------------------------------------------------------------------------------
def _empty(tmp_path, suffix: str, content: bytes) -> object:
    path = tmp_path / f"empty{suffix}"
    if suffix.endswith(".gz"):
        with gzip.open(path, "wb") as handle:
            handle.write(content)
    else:
        path.write_bytes(content)
    return path


EMPTY = [(s, c) for s in (".csv", ".tsv", ".csv.gz") for c in (b"", b"\n\n  \n")]


@pytest.mark.parametrize(("suffix", "content"), EMPTY)
def test_an_empty_file_is_said_to_be_empty_with_the_header_it_needs(tmp_path, suffix, content):
    with pytest.raises(InputError) as refused:
        read_cohort(_empty(tmp_path, suffix, content))
    said = str(refused.value)
    assert "the file is empty" in said and "No columns" not in said
    assert ", ".join(PROFILE_COLUMNS) in said
    assert ("tab-separated" if suffix == ".tsv" else "comma-separated") in said


def test_a_0_byte_gz_file_is_empty_too(tmp_path):
    path = tmp_path / "cohort.csv.gz"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="the file is empty"):
        read_cohort(path)


@pytest.mark.parametrize("command", ["score", "allocate", "validate"])
def test_every_command_says_an_empty_file_is_empty(tmp_path, capsys, monkeypatch, command):
    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path / "home"))
    data = _empty(tmp_path, ".csv", b"\n")
    argv = [command, str(data)]
    if command != "validate":
        argv = [command, "--data", str(data), "--out", str(tmp_path / "out.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{data}: the file is empty" in err and "person_id, age" in err


# -- batch-score: the file read on Spark ----------------------------------------------------------
@pytest.mark.slow
def test_batch_score_answers_the_crisis_rows_of_a_refused_option_and_says_empty(
    spark, flagged_file, tmp_path, capsys
):
    out = tmp_path / "scored.parquet"
    base = ["batch-score", "--data", str(flagged_file), "--out", str(out)]
    crisis_file = tmp_path / "scored.crisis.csv"
    assert _refused([*base, "--partitions", "two"]) == 2
    err = capsys.readouterr().err
    assert "argument --partitions: 'two' is not accepted; accepted: a whole number >= 1" in err
    assert f"3 profile(s) {ANSWERED} {crisis_file}" in err
    assert pd.read_csv(crisis_file)["person_id"].tolist() == ["p1", "p3", "p4"]
    crisis_file.unlink()
    # a whole number out of range: refused by argparse as well, the option named with its --
    assert _refused([*base, "--partitions", "0"]) == 2
    err = capsys.readouterr().err
    assert "argument --partitions: '0' is not accepted; accepted: a whole" in err
    assert ANSWERED in err and crisis_file.exists() and not out.exists()
    empty = _empty(tmp_path, ".csv", b"")
    assert main(["batch-score", "--data", str(empty), "--out", str(out)]) == 2
    assert f"{empty}: the file is empty" in capsys.readouterr().err
