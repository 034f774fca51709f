"""`recommender validate FILE`: a readable report, exit 2 on any error, 0 when clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from recommender.cli import main
from recommender.cohort import write_cohort
from test_cohort_helpers import clean_cohort, plant_ten_faults

VENV_COMMAND = Path(sys.executable).parent / "recommender"


@pytest.fixture
def faulty(tmp_path):
    def write(suffix):
        table, faults = plant_ten_faults(clean_cohort())
        if suffix == ".parquet":
            table = table.astype("string")  # mixed objects: as a program's export would store them
        return write_cohort(table, tmp_path / f"faulty{suffix}"), faults

    return write


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_validate_names_all_ten_planted_faults_and_exits_2(faulty, suffix, capsys):
    path, faults = faulty(suffix)
    assert main(["validate", str(path), "--training"]) == 2
    out = capsys.readouterr().out
    for column, rule in faults:
        assert f"{column} [{rule}]" in out, (column, rule, out)
    assert "INVALID: 10 problems in 10 checks" in out


def test_validate_subprocess_exit_code_and_report(faulty):
    path, faults = faulty(".csv")
    command = str(VENV_COMMAND) if VENV_COMMAND.exists() else "recommender"
    done = subprocess.run(
        [command, "validate", str(path), "--training"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    for column, rule in faults:
        assert f"{column} [{rule}]" in done.stdout


def test_clean_file_exits_0_with_a_summary_line(tmp_path, capsys):
    path = write_cohort(clean_cohort(), tmp_path / "clean.parquet")
    assert main(["validate", str(path), "--training"]) == 0
    out = capsys.readouterr().out
    assert "OK: 240 rows, 21 columns; arms: none 40, coaching 40, mindfulness 40" in out


def test_profile_file_without_training_flag(tmp_path, capsys):
    path = write_cohort(clean_cohort(training=False), tmp_path / "profiles.csv")
    assert main(["validate", str(path)]) == 0
    assert "OK: 240 rows, 11 columns" in capsys.readouterr().out


def test_min_arm_rows_option(tmp_path, capsys):
    path = write_cohort(clean_cohort(), tmp_path / "clean.csv")
    assert main(["validate", str(path), "--training", "--min-arm-rows", "50"]) == 2
    assert "intervention [arm_too_small]" in capsys.readouterr().out


def test_missing_file_exits_2(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "absent.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
