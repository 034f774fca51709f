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
        # 120 rows per arm: enough for training with the shipped config (fit_min_arm_rows)
        table, faults = plant_ten_faults(clean_cohort(720))
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
    path = write_cohort(clean_cohort(720), tmp_path / "clean.parquet")
    assert main(["validate", str(path), "--training"]) == 0
    out = capsys.readouterr().out
    assert "OK: 720 rows, 21 columns; arms: none 120, coaching 120, mindfulness 120" in out


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


def test_validate_training_checks_what_train_needs_and_agrees_with_it(tmp_path, capsys):
    # Found: `validate --training` passed arms of 30 to 103 rows that `train` then refused
    # (it needs rows to fit in the training part and to evaluate in the held-out part).
    path = write_cohort(clean_cohort(), tmp_path / "forty-per-arm.csv")
    assert main(["validate", str(path), "--training"]) == 2
    validated = capsys.readouterr().out
    line = next(s for s in validated.splitlines() if "'coaching' has 40 rows" in s)
    assert "at least 104 are needed" in line and "split.holdout_share" in line
    assert main(["train", "--data", str(path), "--quiet"]) == 2
    assert line.split(": ", 1)[1] in capsys.readouterr().err  # train refuses it in the same words
    assert main(["validate", str(path), "--training", "--min-arm-rows", "30"]) == 0


def test_validate_training_takes_the_configs_extra_features_and_holdout(tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_text("extra_features: [night_shifts]\nsplit: {holdout_share: 0.5}\n")
    path = write_cohort(clean_cohort(360), tmp_path / "sixty-per-arm.csv")
    assert main(["validate", str(path), "--training", "--config", str(config)]) == 2
    out = capsys.readouterr().out
    assert "night_shifts [missing_column]" in out
    # 30 to evaluate in the 50 % held out, +1 for the split's rounding: 62 per arm
    assert "'coaching' has 60 rows; at least 62 are needed" in out
