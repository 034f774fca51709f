"""An empty cohort file is said to be empty, with the header the data contract needs, where
pandas said "No columns to parse from file"."""

from __future__ import annotations

import gzip

import pytest

from recommender.cli import main
from recommender.cohort import PROFILE_COLUMNS, read_cohort
from recommender.errors import InputError


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
