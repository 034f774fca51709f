"""A retraining from the log keeps an arm served too rarely to learn, with the served model's
estimate, instead of dropping it (a dropped arm is never offered again, so the log could never
learn it); once the log holds enough of its rows it is learnt."""

import hashlib
import json

import joblib
import numpy as np
import pandas as pd
import pytest

from bench._program import staff_cohort
from pipelines._train_config import config_from_mapping
from pipelines.train import (
    Cohort,
    carry_stage,
    evaluate_stage,
    fit_min_arm_rows,
    fit_stage,
    log_training_frame,
    split_stage,
)
from recommender.catalog import load_catalog
from recommender.cohort import PROFILE_COLUMNS, typed_cohort
from recommender.model import (
    JUDGEMENT_COLUMNS,
    OUTSIDE_COLUMN,
    CarriedModel,
    estimate_basis,
    evidence_model,
    learnt_arms,
)
from recommender.registry import policy_value_scores
from recommender.service import AuditLog, RecommendationEngine, load_serve_config

# True EE changes against usual care, without noise: the learnt arms' effects are decisive.
TRUE = {"none": 0.0, "coaching": -2.0, "mindfulness": -1.0, "peer_group": -3.0}
SETTINGS = {
    "seed": 0,
    "outcomes": ["ee"],
    "primary": "ee",
    "learner": {"learner": "t", "n_folds": 2},
    "evaluation": {"n_folds": 2},
}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def evidence(catalog):
    return evidence_model(catalog)


def _log(shares: dict, *, n=3000, seed=3) -> pd.DataFrame:
    """A log as ``logged_cohort`` returns it, every profile served from ``shares``."""
    staff = staff_cohort("default", n, seed=seed)
    # a stream of its own: drawn from `seed` itself, the arms followed the roles the staff
    # cohort drew from it (every physician was served coaching or usual care, every resident
    # coaching), so no role saw most arms
    rng = np.random.default_rng([seed, 1])
    served = rng.choice(np.array(list(shares)), size=n, p=list(shares.values()))
    joined = staff[list(PROFILE_COLUMNS)].copy()
    joined["intervention"] = served
    joined["propensity"] = [shares[a] for a in served]
    joined["probabilities"] = json.dumps(shares)
    # not below 0, the scale's least: the service records no other (nor the contract reads)
    joined["ee_followup"] = np.clip(joined["ee"] + np.array([TRUE[a] for a in served]), 0, None)
    # DP moves a little, so that a model can be fitted to it too
    joined["dp_followup"] = np.clip(joined["dp"] + rng.integers(-2, 3, size=n), 0, 30)
    joined["pa_followup"] = joined["pa"]
    joined["arm_taken"] = served
    joined["request_id"] = [f"r{k}" for k in range(n)]
    # salted hashes, as the service keeps them: every person distinct (one cycle)
    joined["person_id"] = [hashlib.sha256(f"{seed}|{k}".encode()).hexdigest() for k in range(n)]
    joined["cycle"], joined["policy"] = 0, "thompson"
    return joined


def _retrain(joined, catalog, previous, outcomes=("ee",)):
    """The product's from-log stages: table, split, fit, carry, evaluate."""
    settings = config_from_mapping({**SETTINGS, "outcomes": list(outcomes)})
    frame, summary = log_training_frame(joined, catalog, min_arm_rows=fit_min_arm_rows(settings))
    cohort = Cohort(
        frame=typed_cohort(frame, arms=catalog.arm_ids, control=catalog.control),
        catalog=catalog,
        source="service log",
        description="a test log",
        sha256="-",
        design="observational (the service's logged probabilities of the recommended arm)",
        loop=summary,
    )
    split = split_stage(cohort, settings)
    model = carry_stage(fit_stage(split, cohort, settings), cohort, settings, previous=previous)
    return model, cohort, split, evaluate_stage(model, split, cohort, settings)


RARE = {"none": 0.3, "coaching": 0.35, "mindfulness": 0.33, "peer_group": 0.02}
COMMON = {"none": 0.3, "coaching": 0.3, "mindfulness": 0.3, "peer_group": 0.1}


@pytest.fixture(scope="module")
def carried(catalog, evidence):
    return _retrain(_log(RARE), catalog, evidence)


def _residents(n=200, seed=5):
    staff = staff_cohort("default", 2000, seed=seed)
    return staff[staff["role"].astype(str) == "resident"].head(n)


def test_an_arm_too_rare_to_learn_keeps_the_evidence_estimate_and_interval(carried, evidence):
    model, cohort, _, _ = carried
    rows = int(cohort.loop["rows_per_arm"]["peer_group"])
    assert 0 < rows < cohort.loop["min_arm_rows"]  # too few to learn
    assert isinstance(model, CarriedModel)
    assert "peer_group" in model.treatment_arms and "peer_group" not in learnt_arms(model)
    assert set(learnt_arms(model)) == {"coaching", "mindfulness"}
    people = staff_cohort("default", 400, seed=7)
    ours, theirs = model.score(people, alpha=0.1), evidence.score(people, alpha=0.1)
    for kind in ("effect", "lower", "upper"):
        np.testing.assert_allclose(
            ours[f"{kind}_peer_group"], theirs[f"{kind}_peer_group"], rtol=0, atol=1e-12
        )
    # residents have a published estimate; a role without one still has none
    resident = people["role"].astype(str) == "resident"
    assert resident.any() and np.isfinite(ours.loc[resident, "effect_peer_group"]).all()
    assert np.isnan(ours.loc[~resident, "effect_peer_group"]).all()


def test_the_carried_arm_is_still_ranked_best_and_the_gate_values_it(carried):
    model, _, split, evaluation = carried
    residents = _residents()
    # Published peer-group effect for residents (about -2.4) beats what the log taught of
    # coaching (-2) and mindfulness (-1): the carried arm stays the best for them.
    assert (model.score(residents)["recommended"] == "peer_group").mean() > 0.9
    picked = evaluation.recommended == "peer_group"
    assert picked.any()
    # The held-out log never served it, so its scores are usual care's plus its estimate.
    effects = model.predict_effect(split.holdout)
    np.testing.assert_allclose(
        evaluation.dr_scores["peer_group"][picked],
        evaluation.dr_scores["none"][picked] + effects["peer_group"][picked],
    )
    values = policy_value_scores(evaluation.dr_scores, evaluation.recommended, control="none")
    assert np.isfinite(values).all()


def test_the_model_card_facts_and_answers_say_where_a_carried_estimate_comes_from(
    carried, catalog, evidence
):
    model, cohort, _, _ = carried
    rows, needed = cohort.loop["rows_per_arm"]["peer_group"], cohort.loop["min_arm_rows"]
    sources = model.metadata["arm_sources"]
    assert sources["coaching"] == {"source": "log"}
    citation = evidence.metadata["evidence_citations"]["peer_group"]["resident"]
    assert sources["peer_group"] == {
        "source": "carried",
        "rows": rows,
        "min_rows": needed,
        "from": "published trials (the evidence-only model)",
        "citations": evidence.metadata["evidence_citations"]["peer_group"],
    }
    # every arm the log could not learn is carried, the ones nobody was served included
    assert cohort.loop["carried_arms"] == [
        {
            "arm": arm,
            "rows": int(cohort.loop["rows_per_arm"].get(arm, 0)),
            "min_rows": needed,
            "from": "published trials (the evidence-only model)",
        }
        for arm in ("peer_group", "resilience_training", "balint_group")
    ]
    assert cohort.loop["arms_not_carried"] == []
    from recommender.card._loop import loop_blocks

    shown = json.dumps(loop_blocks(cohort.loop))
    assert f"peer_group: {rows:,} logged rows, {needed:,} needed" in shown
    names = {arm.id: arm.name for arm in catalog.arms}
    note = estimate_basis(model.metadata, ["peer_group", "coaching"], "resident", names)
    assert citation in note and "not learnt from this program's staff" in note
    assert estimate_basis(model.metadata, ["coaching"], "resident", names) is None
    engine = RecommendationEngine(
        model,
        "2",
        catalog=catalog,
        config=load_serve_config(),
        audit=AuditLog("sqlite://", salt="s"),
    )
    profile = {
        c: (v.item() if hasattr(v, "item") else v if isinstance(v, (int, float)) else str(v))
        for c, v in zip(PROFILE_COLUMNS, _residents(1).iloc[0][list(PROFILE_COLUMNS)])
    }
    answer = engine.recommend([engine.check_row(profile)], caller_role="program")[0]
    assert "peer_group" in {a["arm"] for a in answer["ranking"]}
    assert citation in answer["ranking_note"]
    assert "not learnt from this program's staff" in answer["ranking_note"]


def test_compiled_uncompiled_and_reloaded_forms_agree(carried, tmp_path):
    model = carried[0]
    people = staff_cohort("default", 300, seed=9)
    assert model.compiled is not None
    compiled = model.score(people, contributions=True)
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    reloaded = joblib.load(path).score(people, contributions=True)
    pd.testing.assert_frame_equal(compiled, reloaded)
    slow = joblib.load(path)
    slow._compiled_carried = None  # answered learner by learner
    one_by_one = slow.score(people, contributions=True)
    words = ("person_id", "recommended", *JUDGEMENT_COLUMNS, OUTSIDE_COLUMN)
    numbers = [c for c in compiled.columns if c not in words]
    np.testing.assert_allclose(compiled[numbers], one_by_one[numbers], rtol=0, atol=1e-9)
    pd.testing.assert_frame_equal(compiled[list(words)], one_by_one[list(words)])
    # contributions add up to the recommended arm's effect, a carried arm's included
    effect = [
        0.0 if arm == "none" else compiled[f"effect_{arm}"].iloc[i]
        for i, arm in enumerate(compiled["recommended"])
    ]
    assert (compiled["recommended"] == "peer_group").any()
    np.testing.assert_allclose(compiled.filter(like="contrib_").sum(axis=1), effect, atol=1e-9)


def test_a_carried_arm_keeps_its_secondary_outcomes_interval_or_says_it_has_none(
    catalog, evidence, tmp_path
):
    # Every effect has its interval: an arm carried from a learnt model keeps that model's DP
    # effect and interval; one carried from the evidence-only model (no DP finding) has
    # neither, rather than an invented one.
    outcomes = ("ee", "dp")
    first = _retrain(_log(COMMON, seed=4), catalog, evidence, outcomes)[0]
    model = _retrain(_log(RARE, seed=6), catalog, first, outcomes)[0]
    assert "peer_group" not in learnt_arms(model) and "peer_group" in learnt_arms(first)
    people = staff_cohort("default", 300, seed=9)
    ours, theirs = model.score(people, alpha=0.2), first.score(people, alpha=0.2)
    kept = [f"{kind}_dp_peer_group" for kind in ("effect", "lower", "upper")]
    np.testing.assert_allclose(ours[kept], theirs[kept], rtol=0, atol=1e-9)
    assert (ours["lower_dp_peer_group"] < ours["upper_dp_peer_group"]).all()
    learnt_dp = model.outcome_models["dp"].learnt
    lower, upper = learnt_dp.predict_interval(model.feature_frame(people), alpha=0.2)
    np.testing.assert_allclose(ours["lower_dp_coaching"], lower["coaching"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours["upper_dp_coaching"], upper["coaching"], rtol=0, atol=1e-9)
    unpublished = [f"{kind}_dp_balint_group" for kind in ("effect", "lower", "upper")]
    assert ours[unpublished].isna().all().all()
    # the compiled form gives what the learners give, one by one
    joblib.dump(model, tmp_path / "model.joblib")
    slow = joblib.load(tmp_path / "model.joblib")
    slow._compiled_carried = None
    one_by_one = slow.score(people, alpha=0.2)
    words = ("person_id", "recommended", *JUDGEMENT_COLUMNS, OUTSIDE_COLUMN)
    numbers = [c for c in ours.columns if c not in words]
    np.testing.assert_allclose(ours[numbers], one_by_one[numbers], rtol=0, atol=1e-9)
    pd.testing.assert_frame_equal(ours[list(words)], one_by_one[list(words)])


@pytest.fixture(scope="module")
def learnt(carried, catalog):
    """The carried model retrained on a log that served peer groups often enough to learn.

    Shared read-only by the tests below (a retraining takes seconds); none of them changes it.
    """
    return _retrain(_log(COMMON, seed=4), catalog, carried[0])


def test_once_the_log_has_enough_rows_the_arm_is_learnt(learnt, catalog):
    model, cohort, _, _ = learnt
    assert "peer_group" in learnt_arms(model)
    assert cohort.loop["arms_without_overlap"] == [
        a for a in catalog.treatment_arms if a not in COMMON
    ]
    # arms nobody was ever served keep the evidence estimate too (carried from the
    # previous model, where they were carried from the evidence-only model)
    sources = model.metadata["arm_sources"]
    assert sources["peer_group"] == {"source": "log"}
    assert all(
        sources[a]["from"] == "published trials (the evidence-only model)"
        for a in model.treatment_arms
        if a not in COMMON
    )
    # learnt: the log's -3 for everyone, not the published resident-only -2.4
    effect = model.score(staff_cohort("default", 300, seed=9))["effect_peer_group"]
    assert effect.notna().all() and abs(effect.mean() - TRUE["peer_group"]) < 0.5


def test_carrying_from_a_learnt_model_keeps_its_personal_estimates(learnt, catalog, tmp_path):
    previous = learnt[0]
    model, cohort, _, _ = _retrain(_log(RARE, seed=6), catalog, previous)
    assert "peer_group" not in learnt_arms(model)
    sources = {c["arm"]: c["from"] for c in cohort.loop["carried_arms"]}
    assert sources["peer_group"] == "the model being served"
    assert sources["balint_group"] == "published trials (the evidence-only model)"
    people = staff_cohort("default", 300, seed=9)
    np.testing.assert_allclose(
        model.score(people)[["effect_peer_group", "lower_peer_group", "upper_peer_group"]],
        previous.score(people)[["effect_peer_group", "lower_peer_group", "upper_peer_group"]],
        rtol=0,
        atol=1e-9,
    )
    assert model.compiled is not None
    joblib.dump(model, tmp_path / "model.joblib")
    slow = joblib.load(tmp_path / "model.joblib")
    slow._compiled_carried = None
    np.testing.assert_allclose(
        slow.score(people, contributions=True).filter(like="contrib_"),
        model.score(people, contributions=True).filter(like="contrib_"),
        atol=1e-9,
    )
