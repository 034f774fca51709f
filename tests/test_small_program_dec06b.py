"""A small program's file: treatment arms with fewer rows than the training floor are carried
from the published trials (the evidence-only model) instead of refusing the whole run; usual
care below the floor, or no arm reaching it, is still refused with the way forward.
`recommender validate --training` says what `train --data` will do: one decision, one home."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_pipeline_train import SMALL, use_home, versions

import pipelines.train as train
from recommender.catalog import load_catalog
from recommender.cli import main
from recommender.cohort import validate_cohort
from recommender.simulate import simulate_cohort

CATALOG = load_catalog()
FLOOR = train.fit_min_arm_rows(train.load_config(None, overrides=SMALL))


def _keep(frame, arm, rows):
    drop = frame.index[frame["intervention"] == arm][rows:]
    return frame.drop(index=drop).reset_index(drop=True)


@pytest.fixture(scope="module")
def cohort():
    frame = simulate_cohort("default", 900, seed=11)
    frame["intervention"] = frame["intervention"].astype(str)
    return frame


@pytest.fixture(scope="module")
def small_program(cohort):
    """Coaching taken by 40 people, the Balint group by 4: both below the floor."""
    return _keep(_keep(cohort, "coaching", 40), "balint_group", 4)


def _validate(frame, **how):
    return validate_cohort(
        frame, training=True, arms=CATALOG.arm_ids, control="none", min_arm_rows=FLOOR, **how
    )


def test_small_treatment_arms_are_notes_naming_what_training_does(small_program):
    report = _validate(small_program, carry_small_arms=True)
    assert report.ok
    assert sorted(report.carried_arms) == ["balint_group", "coaching"]
    (line,) = [n for n in report.notes() if "'balint_group'" in n]
    assert "[arm_carried]" in line and "has 4 rows" in line and f"at least {FLOOR}" in line
    assert "published trials" in line
    # without carrying (the plain validator's default), the same arms are errors
    strict = _validate(small_program)
    assert not strict.ok
    assert {p.value for p in strict.errors if p.rule == "arm_too_small"} == {
        "coaching",
        "balint_group",
    }


def test_usual_care_below_the_floor_is_refused_with_the_way_forward(cohort):
    report = _validate(_keep(cohort, "none", 50), carry_small_arms=True)
    assert not report.ok and report.carried_arms == []
    (error,) = [p for p in report.errors if p.rule == "arm_too_small"]
    assert error.value == "none" and "--evidence-only" in error.message


def test_no_treatment_arm_reaching_the_floor_is_refused_with_the_way_forward(cohort):
    frame = cohort
    for arm in CATALOG.treatment_arms:
        frame = _keep(frame, arm, 20)
    report = _validate(frame, carry_small_arms=True)
    assert not report.ok
    (error,) = [p for p in report.errors if p.rule == "no_learnable_arm"]
    assert "--evidence-only" in error.message and "--from-log" in error.message
    assert f"no arm besides usual care has {FLOOR} rows (most: 20)" in error.message


def test_a_cohort_meeting_the_floor_is_loaded_unchanged(cohort, tmp_path):
    path = tmp_path / "full.csv"
    cohort.to_csv(path, index=False)
    loaded = train.load_stage(train.load_config(None, overrides=SMALL), path)
    assert loaded.small_arms is None and loaded.carry is None
    assert len(loaded.frame) == len(cohort)


@pytest.mark.parametrize("case", ["usual care of 50", "every arm of 20"])
def test_validate_and_train_refuse_alike_and_write_nothing(
    case, cohort, tmp_path, monkeypatch, capsys
):
    home = tmp_path / "home"
    use_home(monkeypatch, home)
    frame = _keep(cohort, "none", 50)
    if case == "every arm of 20":
        frame = cohort
        for arm in CATALOG.treatment_arms:
            frame = _keep(frame, arm, 20)
    path = tmp_path / "cohort.csv"
    frame.to_csv(path, index=False)
    assert main(["validate", "--training", str(path)]) == 2
    said = capsys.readouterr().out
    assert main(["train", "--data", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    for text in (said, err):
        assert "--evidence-only" in text, text
    rule = "no_learnable_arm" if case == "every arm of 20" else "arm_too_small"
    assert f"[{rule}]" in said and f"[{rule}]" in err
    assert "Traceback" not in err
    assert not home.exists()


@pytest.fixture(scope="module")
def trained(small_program, tmp_path_factory):
    """One small training on the small program's file (a module's own store)."""
    folder = tmp_path_factory.mktemp("small-program")
    path = folder / "small.csv"
    small_program.to_csv(path, index=False)
    notes = []

    class Progress(train.SilentProgress):
        def note(self, text):
            notes.append(text)

    with pytest.MonkeyPatch.context() as patch:
        use_home(patch, folder / "home")
        result = train.run_training(overrides=SMALL, data=path, progress=Progress())
        yield result, notes, path, patch


def test_the_run_learns_the_arms_that_meet_the_floor_and_carries_the_rest(trained):
    result, notes, _, _ = trained
    from recommender.model import learnt_arms

    model = result.model
    assert versions() == [str(result.version)]
    assert set(model.treatment_arms) == set(CATALOG.treatment_arms)
    assert sorted(learnt_arms(model)) == ["mindfulness", "peer_group", "resilience_training"]
    sources = model.metadata["arm_sources"]
    for arm, rows in (("coaching", 40), ("balint_group", 4)):
        assert sources[arm]["source"] == "carried"
        assert sources[arm]["rows"] == rows and sources[arm]["min_rows"] == FLOOR
        assert sources[arm]["from"] == "published trials (the evidence-only model)"
    (said,) = [n for n in notes if n.startswith("carried over")]
    assert "coaching (40 rows of" in said and "balint_group (4 rows of" in said
    assert "published" in said
    assert sum("[arm_carried]" in n for n in notes) == 2
    # the carried arms' figures are the evidence-only model's: one per role, cited
    from recommender.model import evidence_model

    evidence = evidence_model(CATALOG)
    profiles = simulate_cohort("default", 200, seed=4)
    ours = model.predict_effect(profiles)
    published = evidence.predict_effect(profiles)
    for arm in ("coaching", "balint_group"):
        np.testing.assert_allclose(ours[arm], published[arm])
        assert ours[arm].groupby(profiles["role"].astype(str), observed=True).nunique().max() <= 1


def test_the_card_says_which_arms_were_carried_and_from_what(trained):
    result, _, _, _ = trained
    facts = json.loads((result.card_folder / "card.json").read_text())
    small = facts["training_data"]["small_arms"]
    assert {c["arm"] for c in small["carried_arms"]} == {"coaching", "balint_group"}
    assert all(c["citations"] for c in small["carried_arms"])
    text = (result.card_folder / "card.md").read_text()
    assert "Carried over, not learnt (too few rows in the training data)" in text
    assert "coaching: 40 rows" in text and "published trials" in text
    assert "the arms carried over, not learnt here (" in text


def test_an_answer_ranking_a_carried_arm_says_its_figures_are_not_learnt(trained):
    result, _, _, patch = trained
    from service_fixtures import profile

    from recommender.registry import load_model
    from recommender.service import AuditLog, RecommendationEngine, load_serve_config

    model = load_model(str(result.version))
    engine = RecommendationEngine(
        model,
        str(result.version),
        catalog=CATALOG,
        config=load_serve_config(),
        audit=AuditLog("sqlite://", salt="s"),
    )
    row = engine.check_row(profile(role="physician", offered=["coaching", "balint_group"]))
    (answer,) = engine.recommend([row], caller_role="program")
    ranked = [r["arm"] for r in answer["ranking"]]
    # coaching has a published estimate for physicians (the Balint group's may have none:
    # then it is excluded by name, as from the evidence-only model)
    assert "coaching" in ranked, answer["excluded"]
    assert all(e["reason"] for e in answer["excluded"])
    said = json.dumps(answer)
    assert "Figures carried over" in said and "not learnt from this program's staff" in said
    assert "published trials (" in said  # cited for the person's role
