"""`recommender train` and `validate --training` on the small and odd cohorts a small program
has: each is refused before any fit with a line naming the column or arm, the count found and
what is needed, or trains a model whose notes, card and answers say what it could not learn."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from test_pipeline_train import SMALL, use_home, versions

import pipelines.train as train
from recommender.catalog import load_catalog
from recommender.cli import main
from recommender.cohort import validate_cohort
from recommender.simulate import simulate_cohort

CATALOG = load_catalog()


@pytest.fixture(scope="module")
def cohort():
    frame = simulate_cohort("default", 1500, seed=11)
    frame["intervention"] = frame["intervention"].astype(str)
    return frame


@pytest.fixture
def home(tmp_path, monkeypatch):
    use_home(monkeypatch, tmp_path / "home")
    return tmp_path / "home"


def _arm_rows(frame, arm, keep):
    drop = frame.index[frame["intervention"] == arm][keep:]
    return frame.drop(index=drop)


def _usual_care_95(frame):
    control = frame[frame["intervention"] == "none"]
    treated = frame[frame["intervention"] != "none"].head(len(control) // 19)
    return pd.concat([control, treated])


def _duplicate_ids(frame):
    frame = frame.copy()
    frame.loc[frame.index[:5], "person_id"] = frame.loc[frame.index[5:10], "person_id"].to_numpy()
    return frame


def _followup_missing(frame):
    frame = frame.copy()
    missing = np.random.default_rng(3).random(len(frame)) < 0.4
    frame["ee_followup"] = frame["ee_followup"].astype(float)
    frame.loc[missing, "ee_followup"] = np.nan
    return frame


def _words_in_ee(frame):
    frame = frame.copy()
    frame["ee"] = frame["ee"].astype(object)
    frame.loc[frame.index[:3], "ee"] = "high"
    return frame


# (cohort, words the one line must hold)
REFUSED = {
    "n150": (lambda f: f.sample(150, random_state=1), ["arm_too_small", "'none' has", "at least"]),
    "n300": (lambda f: f.sample(300, random_state=1), ["arm_too_small", "'coaching' has"]),
    "n600": (lambda f: f.sample(600, random_state=1), ["arm_too_small", "at least"]),
    "no usual care": (lambda f: f[f["intervention"] != "none"], ["no_control", "'none'"]),
    # An arm below the floor alone is carried (tests/test_small_program_dec06b.py); with every
    # treatment arm below it nothing can be learnt.
    "95 % usual care": (_usual_care_95, ["no_learnable_arm", "--evidence-only"]),
    "duplicated ids": (_duplicate_ids, ["person_id [duplicate_id]: 5 rows", "same person_id"]),
    "40 % follow-up missing": (_followup_missing, ["ee_followup [missing_value]"]),
    "words in ee": (_words_in_ee, ["ee [type]: 3 rows", "'high'", "a whole number from 0 to 54"]),
}


@pytest.mark.parametrize("case", REFUSED)
def test_an_odd_cohort_is_refused_by_name_before_any_run(case, cohort, home, tmp_path, capsys):
    make, words = REFUSED[case]
    path = tmp_path / "cohort.csv"
    make(cohort).to_csv(path, index=False)
    assert main(["validate", "--training", str(path)]) == 2
    said = capsys.readouterr().out
    assert all(w in said for w in words), said
    assert main(["train", "--data", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err
    assert "Traceback" not in err
    assert not home.exists()  # no store, run, model or card: refused before anything


def test_the_control_arm_too_small_is_not_told_to_leave_its_rows_out(cohort):
    small = _arm_rows(cohort, "none", 20)
    report = validate_cohort(
        small, training=True, arms=CATALOG.arm_ids, control="none", min_arm_rows=30
    )
    (line,) = [p.summary for p in report.checks if p.rule == "arm_too_small"]
    assert "arm 'none' has 20 rows; at least 30" in line
    assert "measure every other arm's effect against it" in line and "add rows of it" in line
    assert "leave its rows out" not in line
    other = validate_cohort(
        _arm_rows(cohort, "coaching", 20), training=True, arms=CATALOG.arm_ids, min_arm_rows=30
    )
    (line,) = [p.summary for p in other.checks if p.rule == "arm_too_small"]
    assert "leave its rows out (the model then has no estimate for it)" in line


@pytest.mark.parametrize(
    "column, value, shown",
    [("role", "nurse", "'nurse'"), ("setting", "academic", "'academic'"), ("ee", 30, "30")],
)
def test_a_feature_with_one_value_is_a_note_naming_it(cohort, column, value, shown):
    frame = cohort.copy()
    frame[column] = value
    report = validate_cohort(frame, training=True, arms=CATALOG.arm_ids)
    assert report.ok
    (note,) = [c for c in report.checks if c.rule == "constant_feature"]
    assert note.severity == "note" and note.column == column
    assert f"column {column!r} is {shown} in all 1,500 rows" in note.summary
    assert "cannot personalise" in note.summary
    # as text (a CSV read as strings) alike
    as_text = validate_cohort(frame.astype(str), training=True, arms=CATALOG.arm_ids)
    assert [c.column for c in as_text.checks if c.rule == "constant_feature"] == [column]


def test_no_constant_note_for_a_varied_cohort_or_a_column_of_wrong_types(cohort):
    assert not [
        c for c in validate_cohort(cohort, training=True).checks if c.rule == "constant_feature"
    ]
    frame = cohort.copy()
    frame["ee"] = "high"  # every row the same word: a type error, not also a constant feature
    report = validate_cohort(frame, training=True)
    assert {c.rule for c in report.checks if c.column == "ee"} == {"type"}
    # profile-only tables are not training tables: nothing to personalise yet
    frame = cohort.copy()
    frame["role"] = "nurse"
    assert not [c for c in validate_cohort(frame).checks if c.rule == "constant_feature"]


def test_scores_at_the_bounds_of_the_subscales_are_accepted(cohort):
    frame = cohort.copy()
    rng = np.random.default_rng(5)
    for column, top in (("ee", 54), ("dp", 30), ("pa", 48)):
        for name in (column, f"{column}_followup"):
            frame[name] = np.where(rng.random(len(frame)) < 0.5, 0, top)
    assert validate_cohort(frame, training=True, arms=CATALOG.arm_ids).ok


def test_a_log_whose_arm_was_served_to_four_people_sets_it_aside_by_name():
    from test_loop_bad_input import _logged_cohort

    from pipelines.train import log_training_frame

    joined = _logged_cohort(84)
    joined["intervention"] = ["none"] * 40 + ["coaching"] * 40 + ["mindfulness"] * 4
    frame, summary = log_training_frame(joined, CATALOG, min_arm_rows=30)
    assert "mindfulness" in summary["arms_without_overlap"]
    assert "coaching" not in summary["arms_without_overlap"]
    assert summary["rows_per_arm"]["mindfulness"] == 4
    assert set(frame["intervention"]) == {"none", "coaching"}


def test_one_site_and_an_arm_nobody_had_train_a_model_that_says_both(
    cohort, home, tmp_path, monkeypatch
):
    """One setting for everyone, no one in the Balint group: valid, so trained; the run says
    the constant feature once (not Python's warning, once per outcome), the card names the arm
    it has no estimate for, and an answer offering it excludes it by name."""
    frame = cohort[cohort["intervention"] != "balint_group"].copy()
    frame["setting"] = "academic"
    path = tmp_path / "one-site.csv"
    frame.to_csv(path, index=False)

    notes = []

    class Progress(train.SilentProgress):
        def note(self, text):
            notes.append(text)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train.run_training(overrides=SMALL, data=path, progress=Progress())
    assert versions() == [str(result.version)]
    from recommender.uplift import ConstantFeatureWarning

    assert not [w for w in caught if issubclass(w.category, ConstantFeatureWarning)]
    said = [n for n in notes if "constant_feature" in n or "cannot personalise" in n]
    assert len(said) == 1 and "setting [constant_feature]" in said[0], notes
    assert any("[unused_arm]" in n and "balint_group" in n for n in notes)

    facts = json.loads((result.card_folder / "card.json").read_text())
    (caveat,) = [c for c in facts["caveats"] if "balint_group" in c]
    assert "no rows in the training data" in caveat and "never recommends it" in caveat

    from recommender.registry import load_model
    from recommender.service import AuditLog, RecommendationEngine, load_serve_config
    from service_fixtures import profile

    model = load_model(str(result.version))
    audit = AuditLog("sqlite://", salt="s")
    engine = RecommendationEngine(
        model, str(result.version), catalog=CATALOG, config=load_serve_config(), audit=audit
    )
    row = engine.check_row(
        profile(role="physician", setting="community", offered=["balint_group", "coaching"])
    )
    (answer,) = engine.recommend([row], caller_role="program")
    assert answer["recommended"] in {"coaching", "none"}
    assert {"arm": "balint_group", "reason": "the served model has no estimate for this arm"} in (
        answer["excluded"]
    )
    assert [o["field"] for o in answer["outside_training_data"]] == ["setting"]


def test_a_feature_constant_only_in_the_training_part_is_noted_once():
    # A role of three people, all held out: the whole cohort varies (no validation note), the
    # training part does not, and each outcome's learner warns of it.
    from types import SimpleNamespace

    from pipelines._train_fit import constant_features_noted
    from recommender.uplift import ConstantFeatureWarning

    notes = []
    display = SimpleNamespace(note=notes.append)
    cohort = SimpleNamespace(constant_columns=("setting",))
    with pytest.warns(UserWarning, match="unrelated") as shown:
        with constant_features_noted(cohort, display):
            for _ in range(3):
                warnings.warn(ConstantFeatureWarning(["role", "setting"]), stacklevel=1)
            warnings.warn("unrelated", UserWarning, stacklevel=1)
    assert [w.category for w in shown] == [UserWarning]  # the learners' warnings are not shown
    (note,) = notes
    assert "cannot personalise by role;" in note and "setting" not in note


def test_the_constant_feature_warning_keeps_its_features_when_copied():
    import copy
    import pickle

    from recommender.uplift import ConstantFeatureWarning

    warning = ConstantFeatureWarning(["role", "setting"])
    for again in (pickle.loads(pickle.dumps(warning)), copy.copy(warning)):
        assert again.features == ["role", "setting"] and str(again) == str(warning)


def test_the_cohort_carries_the_columns_validation_found_constant_as_names(cohort, tmp_path):
    # constant_features_noted reads these names; they were once parsed back out of the notes'
    # display text (its first word), which a reworded note would have broken silently.
    frame = cohort.copy()
    frame["setting"] = frame["setting"].iloc[0]
    path = tmp_path / "constant.csv"
    frame.to_csv(path, index=False)
    loaded = train.load_stage(train.config_from_mapping(SMALL), data=path)
    assert loaded.constant_columns == ("setting",)
    assert any("[constant_feature]" in note for note in loaded.notes)
