"""Bad input and interrupted work at the command line: a one-line error naming what was wrong and
what is accepted, exit 2, no traceback and nothing half written (found by running the CLI)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_model_fakes import fake_model, profiles

from pipelines.score import safety_rules
from recommender import registry
from recommender.cli import main
from recommender.cohort import write_cohort
from recommender.errors import InputError


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RECOMMENDER_ACTOR", "test-suite")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cohort.csv").write_text("person_id\n")  # never read: the output is checked first
    (tmp_path / "afile").write_text("a file where a folder is expected\n")
    return tmp_path


def _refused(capsys, *words):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err
    return err


@pytest.mark.parametrize(
    "argv",
    [
        ["score", "--data", "cohort.csv", "--out", "afile/scored.csv"],
        ["allocate", "--data", "cohort.csv", "--out", "afile/plan.csv"],
        ["simulate", "--n", "10", "--out", "afile/cohort.csv"],
        ["card", "--model", "1", "--out", "afile/card"],
        ["evidence", "--out", "afile/evidence.md"],
        ["calibration", "--out", "afile/calibration.md"],
    ],
    ids=lambda argv: argv[0],
)
def test_an_output_in_a_folder_that_is_a_file_is_named_before_any_work(home, capsys, argv):
    assert main(argv) == 2
    _refused(capsys, "--out", "afile", "not a folder")
    assert sorted(p.name for p in home.iterdir()) == ["afile", "cohort.csv"]


def test_a_calibration_output_that_is_a_folder_is_named_before_any_work(home, capsys):
    # Found: a traceback after all the simulating (IsADirectoryError from write_text).
    (home / "docs").mkdir()
    assert main(["calibration", "--out", "docs"]) == 2
    _refused(capsys, "--out docs", "folder")
    assert list((home / "docs").iterdir()) == []


@pytest.mark.parametrize("command", ["score", "allocate"])
def test_an_output_that_is_a_folder_or_an_unknown_type_names_the_given_path(home, capsys, command):
    (home / "plans").mkdir()
    assert main([command, "--data", "cohort.csv", "--out", "plans"]) == 2
    _refused(capsys, "--out plans", "folder")
    assert main([command, "--data", "cohort.csv", "--out", "plans/plan.txt"]) == 2
    err = _refused(capsys, "plans/plan.txt", ".csv")
    assert ".tmp" not in err
    assert list((home / "plans").iterdir()) == []


def test_a_card_over_a_file_is_refused(home, capsys):
    assert main(["card", "--model", "1", "--out", "afile"]) == 2
    _refused(capsys, "--out afile", "is a file")


def test_written_tables_are_whole_or_absent(tmp_path, monkeypatch):
    import pandas as pd

    out = tmp_path / "plan.csv"
    out.write_text("earlier plan\n")

    def half_write(frame, path, **kwargs):
        open(path, "w").write("person_id,allo")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_write)
    with pytest.raises(KeyboardInterrupt):
        write_cohort(pd.DataFrame({"person_id": ["a"]}), out)
    assert out.read_text() == "earlier plan\n"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.csv"]


@pytest.mark.parametrize("model", ["-1", "./not-a-model", "runs:/0123456789abcdef/model"])
def test_a_model_that_is_neither_registered_nor_loadable_is_named(home, capsys, model):
    (home / "not-a-model").mkdir()
    assert main(["score", "--model", model, "--data", "cohort.csv", "--out", "s.csv"]) == 2
    _refused(capsys, repr(model), "champion")


@pytest.mark.parametrize(
    "content", [b"", b"\x00\x01\x02,\xff\xfe\n" * 3 + b"a,b\n\x00", b"\xff\xfe\x00bad"]
)
def test_an_unreadable_outcome_file_is_refused_by_name(home, capsys, content):
    path = home / "followup.csv"
    path.write_bytes(content)
    assert main(["outcomes", "import", str(path)]) == 2
    _refused(capsys, "followup.csv", "person_id, measured_at")


def test_outcomes_without_the_services_audit_log_are_refused_and_leave_no_store(home, capsys):
    path = home / "followup.csv"
    path.write_text(
        "person_id,measured_at,arm_taken,ee_followup,dp_followup,pa_followup\n"
        "p-1,2026-11-01,coaching,20,7,38\n"
    )
    assert main(["outcomes", "import", str(path)]) == 2
    _refused(capsys, "no audit log at", "audit.db", "--config")
    assert not (home / "home" / "audit.db").exists()


def test_an_unreadable_outcome_jsonl_is_refused_by_name(home, capsys):
    path = home / "followup.jsonl"
    path.write_bytes(b'{"person_id": "\xff"}\n')
    assert main(["outcomes", "import", str(path)]) == 2
    _refused(capsys, "followup.jsonl", "UTF-8")


def test_unknown_learner_params_are_named_with_what_is_accepted():
    from pipelines.train import config_from_mapping

    with pytest.raises(InputError) as caught:
        config_from_mapping({"learner": {"params": {"n_estimators": 30}}})
    message = str(caught.value)
    assert "learner.params.n_estimators" in message and "ensemble_size" in message
    # Set by other keys of the config; given twice they would collide inside the learner.
    with pytest.raises(InputError, match="learner.params.n_folds.*learner.n_folds"):
        config_from_mapping({"learner": {"params": {"n_folds": 4}}})


@pytest.mark.parametrize(
    "params, named",
    [
        ({"ensemble_size": "abc"}, "ensemble_size='abc' (accepted: a positive integer)"),
        ({"propensity_clip": [0.5, 0.1]}, "propensity_clip=[0.5, 0.1]"),
        ({"final_candidates": [{"forest": {}}]}, "learner.params.final_candidates[0]"),
    ],
)
def test_learner_param_values_are_refused_before_a_run_starts(params, named):
    from pipelines.train import config_from_mapping

    with pytest.raises(InputError) as caught:
        config_from_mapping({"learner": {"params": params}})
    assert named in str(caught.value)
    assert config_from_mapping({"learner": {"params": {"ensemble_size": 2}}})


def test_validate_training_refuses_a_table_with_only_the_control_arm(tmp_path, capsys):
    from test_cohort_helpers import clean_cohort

    table = clean_cohort()
    table = table[table["intervention"].astype(str) == "none"]
    path = write_cohort(table, tmp_path / "control-only.csv")
    assert main(["validate", "--training", str(path)]) == 2
    out = capsys.readouterr().out
    assert "no_treated_arm" in out and "none" in out


@pytest.mark.parametrize("seconds", ["0", "-1", "nan"])
def test_allocate_refuses_a_time_limit_that_is_not_positive(home, capsys, seconds):
    with pytest.raises(SystemExit) as stop:
        main(["allocate", "--data", "cohort.csv", "--out", "p.csv", "--time-limit", seconds])
    assert stop.value.code == 2
    _refused(capsys, "--time-limit", "seconds > 0")


_TERMINATED_TRAINING = textwrap.dedent(
    """
    import os, signal, sys, time
    import pipelines.train
    from recommender.cli import main

    def run_training(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
        except KeyboardInterrupt:  # what the registration's undo and the run's FAILED rely on
            print("cleaned up", flush=True)
            raise

    pipelines.train.run_training = run_training
    sys.exit(main(["train", "--quiet"]))
    """
)


def test_kill_during_training_undoes_like_ctrl_c():
    # `kill PID` (SIGTERM) used to end the process at once: the MLflow run stayed RUNNING and a
    # version caught mid-registration kept the champion alias without its card or log entry.
    done = subprocess.run(
        [sys.executable, "-c", _TERMINATED_TRAINING],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert "cleaned up" in done.stdout
    assert "Traceback" not in done.stderr
    assert "nothing was registered" in done.stderr


@pytest.mark.parametrize("separator, name", [(";", "semicolons"), ("\t", "tabs")])
def test_a_csv_with_another_separator_says_so(tmp_path, capsys, separator, name):
    from test_cohort_helpers import clean_cohort

    path = tmp_path / "cohort.csv"
    clean_cohort().to_csv(path, index=False, sep=separator)
    assert main(["validate", str(path)]) == 2
    err = _refused(capsys, "cohort.csv", name, "comma-separated")
    assert "missing" not in err  # not fifteen missing columns


# ------------------------------------------------------------ a card over an earlier card
def _register_with_card(folder, *, plots):
    """A registered fake version whose run logged a card with the named plots."""
    from recommender.card import write_card

    facts = {"model": {"name": "burnout-recommender"}, "caveats": []}
    write_card(facts, folder, plots={name: b"\x89PNG fake" for name in plots})
    with registry.TrainingRun(run_name="card test") as run:
        run.log_artifacts(folder, "card")
        info = run.log_model(fake_model(), profiles(5), safety=safety_rules())
        return run.register(info, gate=registry.gate_decision(np.ones(20)), reason="test")


def test_a_card_written_over_another_versions_card_keeps_none_of_its_plots(home, capsys):
    # Found: `recommender card --model 2` into the folder of version 1's card left version 1's
    # plots beside version 2's text.
    first = _register_with_card(home / "staged1", plots=["qini", "calibration"])
    second = _register_with_card(home / "staged2", plots=[])
    out = home / "card"
    assert main(["card", "--model", str(first.version), "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["calibration.png", "qini.png"]
    (out / "notes.txt").write_text("the reviewer's own notes")

    assert main(["card", "--model", str(second.version), "--out", str(out)]) == 0
    capsys.readouterr()
    # The second card, whole: its files, and none of the first card's plots beside them.
    for name in ("card.json", "card.md", "card.html"):
        assert (out / name).read_bytes() == (home / "staged2" / name).read_bytes()
    assert not (out / "plots").exists() or list((out / "plots").iterdir()) == []
    # A file of the user's in that folder is not the card's to remove.
    assert (out / "notes.txt").read_text() == "the reviewer's own notes"
