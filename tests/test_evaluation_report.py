"""The report object: headline answers, JSON, MLflow metric names, plots, bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from _evaluation_synthetic import synthetic_trial
from recommender.errors import InputError
from recommender.evaluation import EvaluationReport, evaluate_effects


def _groups(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    role = rng.choice(["nurse", "physician", "resident"], size=n, p=[0.5, 0.45, 0.05])
    role[:5] = "app"  # a cell of 5: must be suppressed
    return pd.DataFrame(
        {
            "role": role,
            "gender": rng.choice(["female", "male"], size=n),
            "setting": rng.choice(["academic", "rural"], size=n),
        }
    )


@pytest.fixture(scope="module")
def trial():
    return synthetic_trial(4000, seed=11, slope=3.0)


@pytest.fixture(scope="module")
def report(trial) -> EvaluationReport:
    rng = np.random.default_rng(0)
    effects = trial["truth"] + rng.normal(0, 0.3, trial["truth"].shape)
    return evaluate_effects(
        effects,
        trial["scores"],
        lower=effects - 0.5,
        upper=effects + 0.5,
        oracle=trial["truth"].add_prefix("true_effect_"),
        groups=_groups(4000, 1),
        alpha=0.1,
    )


def test_a_good_model_on_heterogeneous_effects_adds_value(report):
    assert report.best_single_arm == "steady"
    assert report.personalization_adds_value
    estimate, lower, upper = report.personalization_gain
    assert 0 < lower < estimate < upper
    assert report.statement.startswith(
        f"Personalization adds {estimate:.2f} EE points per person (90% CI {lower:.2f} to "
        f"{upper:.2f}) over giving everyone steady."
    )
    assert "Measurably better than none" in report.statement and "steady" in report.arms_statement
    values = report.policy_values
    assert values.loc["learned", "estimate"] > values.loc["random", "estimate"]
    assert report.oracle["regret"] >= 0 and 0.9 < report.oracle["share_of_oracle"] <= 1
    assert report.pehe.loc["steady", "pehe"] == pytest.approx(0.3, rel=0.1)
    # ±0.5 around a prediction with N(0, 0.3) error covers P(|Z| < 5/3) ≈ 0.90
    assert report.pehe["coverage"].to_numpy() == pytest.approx([0.904] * 2, abs=0.03)
    assert report.recommendation_mix.sum() == pytest.approx(1.0)
    assert set(report.recommendation_mix.index) == {"none", "steady", "targeted"}


def test_no_personalization_and_no_arm_better_are_said_plainly(trial):
    n = len(trial["y"])
    null_scores = trial["scores"].copy()
    # an inert trial: every arm's scores are the control's plus noise centred exactly on 0,
    # so every average effect and the gain are exactly 0 with a non-zero standard error
    rng = np.random.default_rng(5)
    for arm in ("steady", "targeted"):
        noise = rng.normal(0, 3, n)
        null_scores[arm] = null_scores["none"] + noise - noise.mean()
    same_for_all = pd.DataFrame({"steady": np.full(n, -1.0), "targeted": np.full(n, -0.5)})
    report = evaluate_effects(same_for_all, null_scores)
    assert report.recommendation_mix["steady"] == 1.0
    assert not report.personalization_adds_value
    assert report.gain.lower < 0 < report.gain.upper
    assert "Personalization adds nothing measurable over" in report.statement
    assert (
        "No arm is measurably better than none (simultaneous 90% intervals over 2 arms)."
        in report.statement
    )


def test_a_comparator_that_changes_between_folds_is_named_as_such():
    rng = np.random.default_rng(3)
    scores = pd.DataFrame(rng.normal(0, 4, (2000, 3)), columns=["none", "a", "b"])
    effects = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    report = evaluate_effects(effects, scores, random_state=0)
    assert len(set(report.comparator_arms)) > 1
    assert "over the best single arm chosen out of fold (" in report.statement
    assert "of 5 folds)" in report.statement


def test_summary_has_every_headline_metric(report):
    summary = report.summary()
    assert list(summary.columns) == ["estimate", "lower", "upper"]
    for name in [
        "policy_value.learned",
        "policy_value.all_none",
        "policy_value.all_steady",
        "policy_value.random",
        "policy_value.oracle",
        "personalization_gain",
        "ate.steady",
        "qini.targeted",
        "auuc.targeted",
        "calibration_slope.targeted",
        "pehe.steady",
        "pehe_mean",
        "coverage.targeted",
        "interval_width.targeted",
        "regret",
        "share_of_oracle",
        "true_value.learned",
        "qini_oracle.targeted",
    ]:
        assert name in summary.index, name
    assert summary.loc["personalization_gain", "lower"] == report.gain.lower


def test_to_dict_round_trips_through_strict_json(report):
    body = report.to_dict()
    text = json.dumps(body, allow_nan=False)
    assert json.loads(text) == body
    assert body["personalization"]["adds_value"] is True
    suppressed = [row for row in body["subgroups"] if row["suppressed"]]
    assert {row["cell"] for row in suppressed} >= {"app"}
    assert all(row["n"] is None for row in suppressed)
    assert len(body["qini"]["targeted"]["curve"]["fraction"]) == 101


def test_metrics_are_finite_floats_with_mlflow_safe_names(report):
    metrics = report.metrics()
    assert len(metrics) > 40
    for key, value in metrics.items():
        assert re.fullmatch(r"[A-Za-z0-9_./ -]+", key), key
        assert isinstance(value, float) and np.isfinite(value)
    assert metrics["personalization_adds_value"] == 1.0
    assert metrics["policy_value.learned.lower"] == report.policy_values.loc["learned", "lower"]


def test_arm_names_with_odd_characters_become_valid_metric_keys(trial):
    scores = trial["scores"].rename(columns={"steady": "peer:group+"})
    effects = trial["truth"].rename(columns={"steady": "peer:group+"})
    metrics = evaluate_effects(effects, scores).metrics()
    assert "ate.peer_group_" in metrics
    assert all(re.fullmatch(r"[A-Za-z0-9_./ -]+", key) for key in metrics)


def test_plots_are_written_as_non_empty_pngs(report, tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figures = report.figures()
    assert set(figures) == {"policy_values", "qini", "calibration", "subgroups"}
    assert all(isinstance(f.canvas, FigureCanvasAgg) for f in figures.values())
    paths = report.save_plots(tmp_path / "plots")
    assert sorted(p.name for p in paths) == [
        "calibration.png",
        "policy_values.png",
        "qini.png",
        "subgroups.png",
    ]
    for path in paths:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_bad_input_names_the_problem(trial):
    scores, truth = trial["scores"], trial["truth"]
    with pytest.raises(InputError, match="scores has 3999 rows"):
        evaluate_effects(truth, scores.iloc[1:])
    with pytest.raises(InputError, match="control arm 'usual'"):
        evaluate_effects(truth, scores, control="usual")
    with pytest.raises(InputError, match=r"predicts arms \['yoga'\]"):
        evaluate_effects(truth.assign(yoga=0.0), scores)
    with pytest.raises(InputError, match="oracle has no column for arm 'targeted'"):
        evaluate_effects(truth, scores, oracle=truth[["steady"]])
    holed = truth.copy()
    holed.iloc[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        evaluate_effects(holed, scores)
