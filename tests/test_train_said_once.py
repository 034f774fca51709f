"""What `recommender train` prints, read as a user reads it: each thing said once.

An observational export without a propensity column, where nurses almost never got coaching,
makes every outcome's learners (and the evaluation's scores, per outcome) estimate propensities
and clip them: the same poor-overlap warning was printed six times a run. The gate's verdict,
the evaluation's statement and the registered version were each printed twice (a note under
their stage, then again in the closing lines).
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest
import yaml
from test_pipeline_train import QUICK, use_home

from recommender.cli import main

# Rich would wrap its notes at 80 columns off a terminal, splitting the phrases counted here.
WIDE = "100000"


def confounded_cohort(path):
    """3,000 people of the default scenario where nurses got coaching twice only."""
    from recommender.simulate import simulate_cohort

    frame = simulate_cohort("default", 3000, seed=5)
    frame = frame[[c for c in frame.columns if c != "propensity" and not c.startswith("true_")]]
    frame["intervention"] = frame["intervention"].astype(str)
    coached_nurses = np.flatnonzero(
        (frame["role"].astype(str) == "nurse").to_numpy()
        & (frame["intervention"] == "coaching").to_numpy()
    )
    frame.iloc[coached_nurses[2:], frame.columns.get_loc("intervention")] = "none"
    frame.to_csv(path, index=False)
    return path


def train_cli(home, *arguments):
    """``recommender train`` as the CLI runs it: (exit code, stdout + stderr, warnings)."""
    out, err = io.StringIO(), io.StringIO()
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        warnings.catch_warnings(record=True) as caught,
    ):
        use_home(monkeypatch, home)
        monkeypatch.setenv("COLUMNS", WIDE)
        warnings.simplefilter("always")  # every warning the run emits, however filtered
        code = main(["train", *arguments])
    said = [str(w.message) for w in caught]
    return code, out.getvalue() + err.getvalue(), said


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("said-once")
    config = folder / "train.yaml"
    # The quick learner: every learner's first stage estimates the same propensities (and so
    # warns of the same poor overlap), and the evaluation's scores estimate them again.
    config.write_text(yaml.safe_dump(QUICK))
    data = confounded_cohort(folder / "confounded.csv")
    arguments = ["--config", str(config), "--data", str(data)]
    return {
        "shown": train_cli(folder / "home", *arguments),
        "quiet": train_cli(folder / "quiet-home", *arguments, "--quiet"),
    }


def test_poor_overlap_is_said_once_naming_the_outcomes_and_arms(runs):
    code, printed, said = runs["shown"]
    assert code == 0
    assert not [w for w in said if "poor overlap" in w]
    assert printed.count("poor overlap") == 1
    (line,) = [line for line in printed.splitlines() if "poor overlap" in line]
    assert line.startswith("  warning: poor overlap")
    assert "outcomes ee, dp, pa alike" in line
    assert "Training part" in line and "Held-out part" in line
    assert "arm 'coaching'" in line and "role=nurse" in line


def test_poor_overlap_is_one_warning_when_quiet(runs):
    code, printed, said = runs["quiet"]
    assert code == 0
    assert "poor overlap" not in printed
    (warning,) = [w for w in said if "poor overlap" in w]
    assert "arm 'coaching'" in warning and "outcomes ee, dp, pa alike" in warning


def test_the_gate_the_statement_and_the_version_are_said_once(runs):
    code, printed, _ = runs["shown"]
    assert code == 0
    assert printed.count("there is no champion yet") == 1
    assert "  passes: there is no champion yet" in printed  # under the gate's stage
    assert printed.count("Personalization ") == 1
    assert printed.count("version 1") == 1
    assert "registered burnout-recommender version 1 (challenger, champion); run " in printed
    assert "model card: " in printed


def test_the_evidence_only_run_says_its_statement_and_gate_once(tmp_path):
    code, printed, _ = train_cli(tmp_path, "--evidence-only")
    assert code == 0
    assert printed.count("the evidence-only model is the day-one model") == 1
    assert printed.count("Built from the catalog's published evidence alone") == 1
    assert printed.count("version 1") == 1
