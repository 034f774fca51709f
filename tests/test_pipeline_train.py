"""The training pipeline end to end on small simulated cohorts, each test with its own store.

Sizes: n = 3,000 (2,100 training rows, 900 held out) with LightGBM capped at 60 rounds, so one
run takes seconds; the gate test's worse model recommends the opposite of the learned policy,
which on the default scenario loses several EE points per person, far outside the interval.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_model_fakes import fake_model, profiles

import pipelines._train_lineage as train_lineage
import pipelines._train_register as train_register
import pipelines.train as train
from recommender import registry
from recommender.cli import main
from recommender.errors import InputError

SMALL = {
    "seed": 3,
    "data": {"scenario": "default", "n": 3000, "seed": 5, "assignment": "rct"},
    "learner": {
        "learner": "auto",
        "n_folds": 3,
        "params": {
            "outcome_candidates": [{"gbm": {"max_rounds": 60, "patience": 10}}],
            "final_candidates": [{"gbm": {"max_rounds": 60, "patience": 10}}],
        },
    },
    "evaluation": {"alpha": 0.1, "n_folds": 3},
}
# SMALL with a T-learner of one capped booster per arm and two folds: for runs that must fit a
# model of their own but claim nothing of the learner. (Without the cap the T-learner tries the
# default candidates, two boosters of up to 1,000 rounds, a ridge and a log-linear model.)
QUICK = {
    **SMALL,
    "learner": {
        "learner": "t",
        "n_folds": 2,
        "params": {"outcome_candidates": SMALL["learner"]["params"]["outcome_candidates"]},
    },
    "evaluation": {"n_folds": 2},
}


def use_home(monkeypatch, folder):
    monkeypatch.setenv("RECOMMENDER_HOME", str(folder))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RECOMMENDER_ACTOR", "test-suite")
    # One training key for every store here, so a model reused across stores keeps its hashes.
    monkeypatch.setenv("RECOMMENDER_TRAINING_KEY", "test-suite-key")


@pytest.fixture
def home(tmp_path, monkeypatch):
    use_home(monkeypatch, tmp_path)
    return tmp_path


@pytest.fixture
def champion_home(trained, home):
    """``home`` holding a copy of the trained fixture's store: version 1, champion and
    challenger, with its card and promotion log, as a first run of the fixture's model leaves
    it (a copied home reads its own files: tests/test_home_moved.py), without training it
    again."""
    import shutil

    shutil.copytree(trained[1], home, dirs_exist_ok=True)
    assert versions() == ["1"] and registry.aliases() == {"champion": "1", "challenger": "1"}
    return home


@pytest.fixture
def sketched_plots(monkeypatch):
    """Runs' plots as one-pixel PNGs under the names the report gives its figures
    (:func:`sketch_plots`)."""
    sketch_plots(monkeypatch)


def sketch_plots(monkeypatch):
    """Runs' plots as one-pixel PNGs under the names the report gives its figures, while
    ``monkeypatch`` lasts (for a fixture of a wider scope, a ``pytest.MonkeyPatch.context()``).

    Drawing the four figures took about a third of a run on the fixture's model, and the tests
    using this claim nothing of the plots' pixels; the fixture's run draws them for real (see
    test_first_run_becomes_champion_with_card_and_lineage and the card's Chromium test). The
    names are the report's own (which figures it has), without building the figures either.
    """
    import io

    from PIL import Image

    import recommender.evaluation._plots as plots
    from recommender.evaluation import EvaluationReport

    pixel = io.BytesIO()
    Image.new("RGB", (1, 1), "white").save(pixel, format="PNG")
    for figure in ("policy_value_figure", "qini_figure", "calibration_figure", "subgroup_figure"):
        monkeypatch.setattr(plots, figure, lambda report: None)  # raises if renamed

    def save_plots(report, folder):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / f"{name}.png" for name in report.figures()]
        for path in paths:
            path.write_bytes(pixel.getvalue())
        return paths

    monkeypatch.setattr(EvaluationReport, "save_plots", save_plots)


def versions():
    client = registry.client()
    return sorted(
        str(v.version) for v in client.search_model_versions("name='burnout-recommender'")
    )


def runs():
    client = registry.client()
    experiment = client.get_experiment_by_name("burnout-recommender")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def reuse_model(monkeypatch, model):
    """Skip refitting: later stages run for real on the fixture's fitted model."""
    monkeypatch.setattr(train, "fit_stage", lambda split, cohort, config: model)


# ------------------------------------------------------------------------------ the run
def test_first_run_becomes_champion_with_card_and_lineage(trained, monkeypatch):
    result, home = trained
    use_home(monkeypatch, home)
    assert result.version == "1" and result.aliases == ["challenger", "champion"]
    card = home / "cards" / "1"
    for name in ("card.json", "card.md", "card.html"):
        assert (card / name).stat().st_size > 1000
    client = registry.client()
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["data.sha256"] == result.data_sha256
    assert run.data.params["rows.holdout"] == "900"
    assert int(run.data.params["rows.train.none"]) > 30
    assert run.data.tags["git_commit"] and run.data.tags["version.mlflow"]
    # Every metric of the evaluation report is logged, under its own name.
    assert set(result.report.metrics()) <= set(run.data.metrics)
    logged = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"card", "evaluation", "config"} <= logged
    card_files = {a.path for a in client.list_artifacts(result.run_id, "card")}
    assert {"card/card.json", "card/card.md", "card/card.html"} <= card_files
    plots = {a.path for a in client.list_artifacts(result.run_id, "evaluation/plots")}
    assert "evaluation/plots/policy_values.png" in plots


def test_the_champion_is_known_as_trained_alike_only_while_nothing_it_follows_from_changed(
    trained, monkeypatch, tmp_path
):
    """A second `make demo` trained the same model on the same cohort again: version 2, 3, ...,
    each "not worse than" the last by 0.000. A run is fingerprinted (settings, data, the code's
    modules, package versions, configuration files), and `train --if-changed` keeps a champion
    whose run had the same."""
    import shutil

    from recommender.paths import config_dir

    result, home = trained
    use_home(monkeypatch, home)
    assert _alike(overrides=SMALL) == ("1", result.run_id)
    assert _alike(overrides=SMALL, seed=4) is None
    other_cohort = {**SMALL, "data": {**SMALL["data"], "seed": 6}}
    assert _alike(overrides=other_cohort) is None
    with monkeypatch.context() as changed:
        changed.setattr(train, "_package_versions", lambda: {"lightgbm": "5.0"})
        assert _alike(overrides=SMALL) is None
    code = tmp_path / "code"  # the same modules, one of them changed
    for package in ("pipelines", "recommender"):
        shutil.copytree(Path(train.__file__).parents[1] / package, code / package)
    with monkeypatch.context() as changed:
        changed.setattr(train_lineage, "__file__", str(code / "pipelines" / "_train_lineage.py"))
        assert _alike(overrides=SMALL) == ("1", result.run_id)
        with (code / "pipelines" / "_train_fit.py").open("a") as module:
            module.write("# a change to the code\n")
        assert _alike(overrides=SMALL) is None
    configs = tmp_path / "configs"
    shutil.copytree(config_dir(), configs)
    with (configs / "serve.yaml").open("a") as serve:  # the safety rules travel in the model
        serve.write("# a crisis line changed\n")
    monkeypatch.setenv("RECOMMENDER_CONFIG_DIR", str(configs))
    assert _alike(overrides=SMALL) is None


@pytest.mark.usefixtures("sketched_plots")
def test_a_champion_whose_training_key_is_gone_is_not_trained_alike(trained, home, monkeypatch):
    """A model records whom it was trained on under the training key (``training.key`` in the
    home, or $RECOMMENDER_TRAINING_KEY). With the key changed or the file deleted, `make demo`
    kept that champion, whose rows the next gate could then not recognise; so the key, as its
    public name, is part of what a run is fingerprinted by."""
    result, trained_home = trained
    use_home(monkeypatch, trained_home)
    assert _alike(overrides=SMALL) == ("1", result.run_id)
    with monkeypatch.context() as changed:
        changed.setenv("RECOMMENDER_TRAINING_KEY", "another-test-suite-key")
        assert _alike(overrides=SMALL) is None
    # A fresh home's first run makes its key file before fingerprinting, as the fit would.
    use_home(monkeypatch, home)
    monkeypatch.delenv("RECOMMENDER_TRAINING_KEY")
    reuse_model(monkeypatch, result.model)
    first = train.run_training(overrides=SMALL)
    assert (home / "training.key").is_file()
    assert _alike(overrides=SMALL) == (first.version, first.run_id)
    (home / "training.key").unlink()
    assert _alike(overrides=SMALL) is None


def _alike(**arguments):
    """``(version, run_id)`` of the version trained alike, or None."""
    found = train.trained_alike(**arguments)
    return found and (found.version, found.run_id)


def test_train_if_changed_keeps_a_champion_trained_alike_and_says_so(monkeypatch, capsys):
    alike = train.TrainedAlike("4", "abc123", True, True, "passes", "2026-03-02 01:00 UTC", None)
    monkeypatch.setattr(train, "trained_alike", lambda *a, **k: alike)
    monkeypatch.setattr(train, "run_training", lambda *a, **k: pytest.fail("trained again"))
    assert main(["train", "--if-changed", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "not trained: champion version 4 (run abc123, trained 2026-03-02 01:00 UTC) was trained"
    )
    assert "on this data" in out and "it stays the champion" in out


def test_train_if_changed_refuses_the_evidence_only_model(home, capsys):
    assert main(["train", "--if-changed", "--evidence-only"]) == 2
    assert "not for the evidence-only model" in capsys.readouterr().err


def test_card_names_version_run_and_data(trained):
    result, home = trained
    markdown = (home / "cards" / "1" / "card.md").read_text()
    assert "burnout-recommender version 1" in markdown
    for fact in (result.run_id, result.data_sha256, "SIMULATED", "Policy summary"):
        assert fact in markdown
    assert result.report.statement in markdown


def test_registered_pyfunc_scores_profiles(trained, monkeypatch):
    result, home = trained
    use_home(monkeypatch, home)
    rows = profiles(50, seed=8)
    pyfunc = registry.load_pyfunc("models:/burnout-recommender@champion")
    scored = pyfunc.predict(rows)
    arms = result.model.treatment_arms
    expected = {
        "person_id",
        "recommended",
        *(f"effect_{a}" for a in arms),
        *(f"lower_{a}" for a in arms),
        *(f"upper_{a}" for a in arms),
        *(
            f"{kind}_{o}_{a}"
            for kind in ("effect", "lower", "upper")
            for o in ("dp", "pa")
            for a in arms
        ),
        "outside_training_data",
        "contrib_ee",
        "contrib_base",
    }
    assert expected <= set(scored.columns)
    np.testing.assert_allclose(
        scored[[f"effect_{a}" for a in arms]].to_numpy(),
        result.model.predict_effect(rows).to_numpy(),
    )
    # the secondary outcomes' intervals are their learners' own, at the asked level
    lower, upper = result.model.outcome_models["pa"].predict_interval(
        result.model.feature_frame(rows), alpha=0.1
    )
    for bound, expected in (("lower", lower), ("upper", upper)):
        np.testing.assert_allclose(
            scored[[f"{bound}_pa_{a}" for a in arms]].to_numpy(),
            expected[list(arms)].to_numpy(),
            rtol=0,
            atol=1e-9,
        )
    assert {f"lower_dp_{a}" for a in arms} <= set(pyfunc.metadata.signature.outputs.input_names())
    # what the service's answers say of each ranking, typed in the signature as in the table
    assert scored.columns[:4].tolist() == [
        "person_id",
        "recommended",
        "ranking_meaningful",
        "benefit_established",
    ]
    outputs = {c.name: c.type.name for c in pyfunc.metadata.signature.outputs.inputs}
    assert outputs["ranking_meaningful"] == outputs["benefit_established"] == "boolean"
    expected = result.model.score(rows, max_overlap=0.0).reset_index(drop=True)
    strict = pyfunc.predict(rows, params={"max_overlap": 0.0})
    for column in ("recommended", "ranking_meaningful", "benefit_established"):
        assert strict[column].tolist() == expected[column].tolist()
    assert scored["ranking_meaningful"].sum() > strict["ranking_meaningful"].sum()


def test_score_and_card_commands(trained, monkeypatch, tmp_path, capsys):
    _, home = trained
    use_home(monkeypatch, home)
    cohort = tmp_path / "cohort.csv"
    profiles(120, seed=9).to_csv(cohort, index=False)
    out = tmp_path / "scored.parquet"
    assert main(["score", "--model", "champion", "--data", str(cohort), "--out", str(out)]) == 0
    scored = pd.read_parquet(out)
    assert len(scored) == 120 and scored.columns[:2].tolist() == ["person_id", "recommended"]
    # the fields where each row lies outside the training data: listed, empty when inside
    assert scored["outside_training_data"].notna().all()
    assert (
        main(["card", "--model", "models:/burnout-recommender/1", "--out", str(tmp_path / "card")])
        == 0
    )
    assert (tmp_path / "card" / "card.json").read_text() == (
        home / "cards" / "1" / "card.json"
    ).read_text()
    bad = profiles(5).assign(role="surgeon")
    bad.to_csv(cohort, index=False)
    assert main(["score", "--data", str(cohort), "--out", str(out)]) == 2
    assert "surgeon" in capsys.readouterr().err


@pytest.mark.browser
def test_trained_card_renders_in_chromium(trained, tmp_path):
    from test_card_browser import assert_card_renders, require_chromium

    require_chromium()  # a skip, but a failure on CI (CI=true), where `make test` installs it
    _, home = trained
    assert_card_renders(home / "cards" / "1" / "card.html", tmp_path / "profile", min_images=3)


# ------------------------------------------------------------------------------ reproducible
@pytest.mark.usefixtures("sketched_plots")
def test_same_config_and_seed_give_identical_effects(trained, home):
    first, _ = trained
    again = train.run_training(overrides=SMALL)
    rows = profiles(200, seed=11)
    for outcome in ("ee", "dp", "pa"):
        a = first.model.predict_effect(rows, outcome=outcome)
        b = again.model.predict_effect(rows, outcome=outcome)
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert again.data_sha256 == first.data_sha256
    other = train.run_training(overrides=SMALL, seed=4)
    assert not np.array_equal(
        other.model.predict_effect(rows).to_numpy(), first.model.predict_effect(rows).to_numpy()
    )


# ------------------------------------------------------------------------------ atomicity
STAGE_FUNCTIONS = [
    "split_stage",
    "fit_stage",
    "evaluate_stage",
    "gate_stage",
    "card_stage",
    "log_stage",
    "register_stage",
    "publish",
]


@pytest.mark.parametrize("stage", STAGE_FUNCTIONS)
@pytest.mark.usefixtures("sketched_plots")
def test_failure_at_any_stage_registers_nothing(trained, champion_home, monkeypatch, stage):
    home = champion_home
    result, _ = trained
    reuse_model(monkeypatch, result.model)
    log_before = (home / "promotions.jsonl").read_text()
    runs_before = len(runs())

    def boom(*args, **kwargs):
        raise RuntimeError(f"injected failure in {stage}")

    if stage == "publish":
        # Inside registration, after the version exists: copying the card out fails. (Failing
        # every shutil.copytree failed MLflow's save_model in the log stage, before any version.)
        monkeypatch.setattr(train_register, "publish_folder", boom)
    else:
        monkeypatch.setattr(train, stage, boom)
    with pytest.raises(RuntimeError, match="injected"):
        train.run_training(overrides=SMALL, seed=4)

    assert versions() == ["1"]
    assert registry.aliases() == {"champion": "1", "challenger": "1"}
    assert (home / "promotions.jsonl").read_text() == log_before
    assert sorted(p.name for p in (home / "cards").iterdir()) == ["1"]
    failed = runs()
    if stage == "split_stage":  # the split comes before the run: a refused split leaves none
        assert len(failed) == runs_before
    else:
        assert len(failed) == runs_before + 1 and failed[-1].info.status == "FAILED"


def test_invalid_data_file_stops_before_any_run(home, tmp_path, capsys):
    from recommender.simulate import simulate_cohort

    cohort = simulate_cohort("default", 400, seed=1)
    cohort["intervention"] = cohort["intervention"].astype(str)
    cohort.loc[7, "ee"] = 99
    cohort.loc[9, "intervention"] = "yoga"
    path = tmp_path / "bad.csv"
    cohort.to_csv(path, index=False)
    assert main(["train", "--data", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "ee" in err and "99" in err and "yoga" in err
    assert runs() == [] and not (home / "cards").exists()


def test_bad_config_field_is_named(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("split: {holdout_share: 1.5}\nlearner: {learner: forest}\n")
    with pytest.raises(InputError) as caught:
        train.load_config(path)
    assert "split.holdout_share = 1.5" in str(caught.value)
    assert "learner.learner = 'forest'" in str(caught.value)


def test_config_given_as_a_mapping_is_checked_like_a_file(home):
    with pytest.raises(InputError, match=r"split.holdout_share = 1.5"):
        train.run_training({"split": {"holdout_share": 1.5}})
    with pytest.raises(InputError, match=r"learnr = \{\} is not a known key; accepted: seed, "):
        train.run_training({"learnr": {}})
    assert versions() == []  # refused before anything was logged or registered


# ------------------------------------------------------------------------------ the gate
class Reversed:
    """A deliberately bad learner: the fixture's effects with the sign flipped."""

    def __init__(self, inner):
        self.inner = inner
        self.arms_ = inner.arms_
        self.control_ = inner.control_
        self.learner_ = "reversed"
        self.feature_names_ = inner.feature_names_

    def predict_effect(self, X):
        return -self.inner.predict_effect(X)

    def predict_interval(self, X, alpha=0.1):
        lower, upper = self.inner.predict_interval(X, alpha=alpha)
        return -upper, -lower

    def contributions(self, X, arm, versus="none"):
        return -self.inner.contributions(X, arm, versus=versus)


def reversed_model(good):
    from recommender.model import RecommendationModel

    return RecommendationModel(
        outcome_models={o: Reversed(m) for o, m in good.outcome_models.items()},
        features=good.features,
        catalog_version=good.catalog_version,
        control=good.control,
        metadata=good.metadata,
    )


@pytest.mark.usefixtures("sketched_plots")
def test_worse_model_stays_challenger(trained, champion_home, monkeypatch):
    home = champion_home  # version 1: the fixture's model, champion
    result, _ = trained
    good = result.model
    bad = reversed_model(good)
    reuse_model(monkeypatch, bad)
    worse = train.run_training(overrides=SMALL, reason="deliberately worse")
    assert not worse.gate.passed
    assert worse.gate.difference.upper < 0
    assert worse.aliases == ["challenger"]
    assert registry.aliases() == {"champion": "1", "challenger": "2"}
    assert "not passed" in (home / "cards" / "2" / "card.md").read_text()
    # The better model, trained again, passes against the worse-looking history.
    reuse_model(monkeypatch, good)
    assert train.run_training(overrides=SMALL).gate.passed


@pytest.mark.usefixtures("sketched_plots")
def test_a_better_model_needing_request_fields_the_champion_does_not_stays_challenger(
    trained, home, monkeypatch
):
    # Promoted by the gate, it would have made every /recommend without its extra fields a
    # 422 the moment the service reloaded; a person promotes it once callers send them.
    from recommender.simulate import simulate_cohort

    good = trained[0].model
    bad = reversed_model(good)
    with monkeypatch.context() as patch:
        reuse_model(patch, bad)
        assert train.run_training(overrides=SMALL).aliases == ["challenger", "champion"]
    cohort = simulate_cohort("default", 3000, seed=5, assignment="rct")
    cohort["night_shifts"] = np.random.default_rng(5).integers(0, 9, len(cohort)).astype(float)
    path = home / "with-extra.csv"
    cohort.to_csv(path, index=False)
    extra = train.run_training(data=path, overrides={**QUICK, "extra_features": ["night_shifts"]})
    assert not extra.gate.passed and extra.gate.difference.lower > 0  # better, but held
    assert "night_shifts" in extra.gate.reason and "recommender promote" in extra.gate.reason
    assert registry.aliases() == {"champion": "1", "challenger": "2"}
    assert main(["promote", "2", "--reason", "callers now send night_shifts"]) == 2
    assert main(["promote", "2", "--force", "--reason", "callers now send night_shifts"]) == 0
    assert registry.aliases()["champion"] == "2"


@pytest.mark.usefixtures("sketched_plots")
def test_promote_and_rollback_commands(trained, champion_home, monkeypatch, capsys):
    result, _ = trained
    reuse_model(monkeypatch, result.model)
    train.run_training(overrides=SMALL)  # version 2, after the copied home's version 1
    assert registry.aliases()["champion"] == "2"
    assert main(["rollback", "--reason", "version 2 misbehaves in clinic A"]) == 0
    assert registry.aliases()["champion"] == "1"
    assert main(["promote", "2", "--reason", "fixed upstream data"]) == 0
    assert registry.aliases()["champion"] == "2"
    with pytest.raises(SystemExit):  # a human change without a reason is refused
        main(["promote", "1"])
    events = registry.read_promotion_log()
    assert [e.kind for e in events if e.alias == "champion"] == [
        "gate",
        "gate",
        "rollback",
        "promote",
    ]
    assert events[-2].reason == "version 2 misbehaves in clinic A"


@pytest.mark.usefixtures("sketched_plots")
def test_a_champion_changed_while_a_run_trained_is_the_one_its_gate_judges(
    trained, champion_home, monkeypatch
):
    # A colleague puts the good model back while a run of the bad one is between its gate
    # (judged against the bad champion: a tie, so it passes) and its registration.
    home = champion_home  # version 1: the good model, champion
    bad = reversed_model(trained[0].model)
    reuse_model(monkeypatch, bad)
    train.run_training(overrides=SMALL)
    registry.promote("2", force=True, reason="try the other model")
    register = train.register_stage

    def champion_moved_meanwhile(*args, **kwargs):
        registry.promote("1", reason="back to the good model")
        return register(*args, **kwargs)

    monkeypatch.setattr(train, "register_stage", champion_moved_meanwhile)
    result = train.run_training(overrides=SMALL, reason="bad again")
    assert result.gate.champion_version == "1"
    assert not result.gate.passed and result.gate.difference.upper < 0
    assert result.aliases == ["challenger"]
    assert registry.aliases() == {"champion": "1", "challenger": "3"}
    card = (home / "cards" / "3" / "card.md").read_text()
    assert "| Champion when registered | version 1 (it stayed champion" in card
    assert "not passed" in card
    for event in registry.read_promotion_log():
        if event.alias == "champion" and event.kind == "gate":
            assert event.policy["champion_version"] == event.previous_version


@pytest.mark.usefixtures("sketched_plots")
def test_gate_compares_on_rows_the_champion_never_trained_on(trained, champion_home, monkeypatch):
    result, _ = trained
    reuse_model(monkeypatch, result.model)
    assert result.gate.champion is None  # version 1 of the copied home was the first
    # Same split seed: every held-out row is unseen by the champion, all 900 are compared.
    same_split = train.run_training(overrides=SMALL)
    assert same_split.gate.difference.n == 900
    assert same_split.gate.difference.estimate == 0  # the very same model
    # Another split seed: the champion trained on ~70 % of these held-out rows; the gate
    # compares on the rest only, which is still above its floor of 200 rows.
    other_split = train.run_training(overrides=SMALL, seed=4)
    assert 200 <= other_split.gate.difference.n < 900
    assert f"on {other_split.gate.difference.n} held-out rows" in other_split.gate.reason
    # The note on the rows left out is its own sentence (it ran on from "...same rows)").
    left_out = f"{900 - other_split.gate.difference.n:,} of the 900 rows belong to people"
    assert f"same rows). {left_out}" in other_split.gate.reason


def test_primary_must_be_an_outcome_where_lower_is_better():
    # The recommendation minimises the primary effect: with pa it would pick the worst arm.
    with pytest.raises(InputError) as caught:
        train.config_from_mapping({"primary": "pa"})
    assert "primary = 'pa'" in str(caught.value) and "['ee', 'dp']" in str(caught.value)
    assert train.config_from_mapping({"primary": "dp"})["primary"] == "dp"


def test_card_min_cell_reaches_the_subgroup_table(trained):
    from recommender.evaluation import subgroup_frame

    result, _ = trained
    config = train.config_from_mapping(SMALL)
    cohort = train.load_stage(config)
    split = train.split_stage(cohort, config)
    groups = subgroup_frame(split.holdout)
    role_gender = groups["role"].astype(str) + " x " + groups["gender"].astype(str)
    sizes = pd.concat(
        [groups[c].astype(str).value_counts() for c in groups.columns]
        + [role_gender.value_counts()]
    )
    # A floor just above the smallest cell that 11 would publish: that cell must now go.
    min_cell = int(sizes[sizes >= 11].min()) + 1
    config = train.config_from_mapping(SMALL, overrides={"card": {"min_cell": min_cell}})
    table = train.evaluate_stage(result.model, split, cohort, config).report.subgroups
    published = table[~table["suppressed"]]
    assert len(published) > 0 and (published["n"] >= min_cell).all()


def test_the_support_recorded_is_the_training_rows_and_the_card_counts_held_out_rows_outside(
    trained,
):
    from recommender.model import support_check

    result, home = trained
    config = train.config_from_mapping(SMALL)
    split = train.split_stage(train.load_stage(config), config)
    model = result.model
    support = model.metadata["training_support"]
    assert support["rows"] == len(split.train) and support["min_rows"] == 11  # card.min_cell
    X = model.feature_frame(split.train)
    assert list(support["features"]) == model.feature_names
    for name, entry in support["features"].items():
        if "rows" in entry:
            counts = X[name].astype(str).value_counts()
            assert entry["rows"] == {level: int(counts.get(level, 0)) for level in entry["rows"]}
            assert sum(entry["rows"].values()) == len(X)
        else:
            assert (entry["min"], entry["max"]) == (X[name].min(), X[name].max())
    for role, entries in support["within"]["levels"].items():  # and within each role
        group = X[(X["role"] == role).to_numpy()]
        assert len(group) >= 11
        for name, entry in entries.items():
            if "min" in entry:
                assert (entry["min"], entry["max"]) == (group[name].min(), group[name].max())
    # every training row lies inside every range, its role's too, by construction: what may
    # be said of one is only a level (or a level within its role) too few rows had
    said = [item for row in support_check(model).outside(X) for item in row]
    assert all(item["seen"].endswith("(fewer than 11)") for item in said)
    held_out = support_check(model).outside(model.feature_frame(split.holdout))
    card = json.loads((home / "cards" / "1" / "card.json").read_text())["training_data"]
    assert card["outside"]["rows"] == len(split.holdout)
    assert card["outside"]["outside"] == sum(map(bool, held_out))
    per_field = {row[0]: row[1] for row in card["outside"]["fields"]["rows"]}
    assert per_field == {
        field: sum(field in [item["field"] for item in row] for row in held_out)
        for field in per_field
    }
    assert sum(per_field.values()) == sum(len(row) for row in held_out)


def test_training_person_hashes_are_keyed_by_a_secret_kept_out_of_the_artifact(trained):
    import hashlib
    import pickle

    result, _ = trained
    hashes = np.asarray(result.model.metadata["training_person_hashes"])
    config = train.config_from_mapping(SMALL)
    split = train.split_stage(train.load_stage(config), config)
    ids = split.train["person_id"].astype(str).head(50).tolist()
    assert "s5-000001" in set(split.train["person_id"].astype(str)) | set(
        split.holdout["person_id"].astype(str)
    )
    unkeyed = [
        int.from_bytes(hashlib.blake2b(p.encode(), digest_size=8).digest(), "big")
        for p in [*ids, "s5-000001"]
    ]
    assert not np.isin(np.array(unkeyed, dtype=np.uint64), hashes).any()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("RECOMMENDER_TRAINING_KEY", "test-suite-key")
        key = train.training_key()
    assert np.isin(train.person_hashes(ids, key), hashes).all()
    assert key not in pickle.dumps(result.model)
    assert b"test-suite-key" not in pickle.dumps(result.model)


def test_no_person_id_of_the_training_data_is_logged_with_the_model(trained):
    # The model's MLflow input example was the first held-out rows as they came, person_id
    # included: a data file's ids (here the simulator's s5-...) sat in input_example.json and
    # serving_input_example.json, beside hashes kept keyed precisely so that they would not.
    result, home = trained
    logged = [p for p in (home / "mlartifacts").rglob("*.json") if "example" in p.name]
    assert logged
    for path in logged:
        assert "s5-" not in path.read_text(), path


def test_the_runs_data_is_logged_as_mlflow_datasets_without_person_ids(trained, monkeypatch):
    # MLflow's Datasets column was empty: a data scientist could not see which runs were
    # trained and judged on the same rows without opening each run's parameters.
    result, home = trained
    use_home(monkeypatch, home)
    inputs = registry.client().get_run(result.run_id).inputs.dataset_inputs
    by_context = {
        next(t.value for t in i.tags if t.key == "mlflow.data.context"): i.dataset for i in inputs
    }
    assert set(by_context) == {"training", "evaluation"}
    rows = {c: json.loads(d.profile)["num_rows"] for c, d in by_context.items()}
    assert rows == {"training": 2100, "evaluation": 900}
    for dataset in by_context.values():
        assert dataset.name == f"simulated ({result.data_sha256[:8]})"
        columns = {c["name"] for c in json.loads(dataset.schema)["mlflow_colspec"]}
        assert {"ee", "intervention", "ee_followup"} <= columns
        assert not {"person_id", "true_effect_coaching"} & columns
        assert "s5-" not in json.dumps([dataset.schema, dataset.source, dataset.profile])


def test_run_and_version_say_what_they_are_why_and_in_which_units(trained, monkeypatch):
    # Runs were named seed-3-<sha> whatever the learner, with no description, and versions had
    # no description: comparing learners meant opening every run's parameters.
    result, home = trained
    use_home(monkeypatch, home)
    client = registry.client()
    run = client.get_run(result.run_id)
    assert run.info.run_name == f"auto-seed-3-{result.data_sha256[:8]}"
    described = run.data.tags["mlflow.note.content"]
    for fact in ("seed 3", "scenario default", "2,100 rows to train", "900 held out"):
        assert fact in described, fact
    assert (
        "Why: fixture run." in described and "policy_value.* and true_value.* are EE" in described
    )
    version = client.get_model_version("burnout-recommender", result.version)
    assert version.description.startswith(described.split("\n")[0])
    assert f"Gate passed: {result.gate.reason}" in version.description


def test_the_qini_curves_are_step_metrics_by_percent_targeted(trained, monkeypatch):
    # The curves were only PNG plots and report.json arrays: MLflow's compare view could not
    # overlay them across runs.
    result, home = trained
    use_home(monkeypatch, home)
    client = registry.client()
    for arm, curve in result.report.qini_curves.items():
        for column, name in (("qini", "qini_curve"), ("oracle", "qini_curve_oracle")):
            history = client.get_metric_history(result.run_id, f"{name}.{arm}")
            steps = sorted((m.step, m.value) for m in history)
            assert [s for s, _ in steps] == list(range(101)), name
            np.testing.assert_allclose([v for _, v in steps], curve[column].to_numpy())
    described = client.get_run(result.run_id).data.tags["mlflow.note.content"]
    assert "qini_curve.<arm>" in described and "share targeted in percent" in described


def test_training_key_file_is_created_once_private(home, monkeypatch):
    monkeypatch.delenv("RECOMMENDER_TRAINING_KEY")
    assert train.training_key(create=False) is None
    key = train.training_key()
    path = home / "training.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert train.training_key() == key and train.training_key(create=False) == key
    assert [p.name for p in home.iterdir()] == ["training.key"]  # no temp file left


@pytest.mark.usefixtures("sketched_plots")
def test_gate_without_the_champions_key_compares_on_all_rows_and_says_so(
    trained, champion_home, monkeypatch
):
    result, _ = trained
    reuse_model(monkeypatch, result.model)
    monkeypatch.setenv("RECOMMENDER_TRAINING_KEY", "another-machine")
    other_split = train.run_training(overrides=SMALL, seed=4)
    assert other_split.gate.difference.n == 900
    assert "training key this machine does not hold" in other_split.gate.reason


def test_data_design_is_checked_and_named():
    with pytest.raises(InputError, match=r"data.design = 'rct'"):
        train.config_from_mapping({"data": {"design": "rct"}})


class _StopHere(Exception):
    pass


def test_declared_trial_without_propensity_uses_design_shares(home, tmp_path, monkeypatch):
    from recommender.cohort import write_cohort
    from recommender.simulate import simulate_cohort

    frame = simulate_cohort("default", 1500, seed=2, assignment="rct")
    frame = frame[
        [c for c in frame.columns if c != "propensity" and not c.startswith("true_effect_")]
    ]
    path = write_cohort(frame, tmp_path / "trial.csv")
    seen = {}

    def recording(name):
        def fake(*args, **kwargs):
            seen[name] = kwargs.get("design")
            raise _StopHere

        return fake

    import recommender.uplift as uplift

    for declared, expected in (("randomized", "randomized"), (None, "auto")):
        config = train.config_from_mapping(SMALL, overrides={"data": {"design": declared}})
        cohort = train.load_stage(config, path)
        split = train.split_stage(cohort, config)
        monkeypatch.setattr(uplift, "UpliftModel", recording("fit"))
        monkeypatch.setattr(uplift, "doubly_robust_scores", recording("evaluate"))
        with pytest.raises(_StopHere):
            train.fit_stage(split, cohort, config)
        with pytest.raises(_StopHere):
            train.evaluate_stage(fake_model(), split, cohort, config)
        assert seen == {"fit": expected, "evaluate": expected}
        monkeypatch.undo()
        use_home(monkeypatch, home)


def test_usual_care_too_small_to_fit_after_the_split_stops_before_any_run(home, tmp_path, capsys):
    # (A treatment arm that small is carried instead: tests/test_small_program_dec06b.py.)
    from recommender.simulate import simulate_cohort

    cohort = simulate_cohort("default", 2000, seed=1)
    cohort["intervention"] = cohort["intervention"].astype(str)
    small = cohort.index[cohort["intervention"] == "none"][35:]
    cohort = cohort.drop(index=small)
    path = tmp_path / "small-arm.csv"
    cohort.to_csv(path, index=False)
    # 35 rows pass the contract's floor of 30, but the 70 % training part keeps 24 of them.
    assert train.fit_min_arm_rows(train.load_config()) > 35
    assert main(["train", "--data", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "'none' has 35 rows" in err and "--evidence-only" in err
    assert runs() == [] and not (home / "cards").exists()


@pytest.mark.usefixtures("sketched_plots")
def test_failure_after_registration_says_the_version_was_registered(
    trained, home, monkeypatch, tmp_path, capsys
):
    import yaml

    result, _ = trained
    reuse_model(monkeypatch, result.model)

    def note(gate, registration, display):  # the first thing said after registration
        raise OSError("disk full while printing")

    monkeypatch.setattr(train, "regated_note", note)
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    assert main(["train", "--config", str(config), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "version 1 was registered" in err and "disk full while printing" in err
    assert "nothing was registered" not in err
    assert versions() == ["1"]


def test_card_folder_is_swapped_in_whole_or_not_at_all(tmp_path, monkeypatch):
    import shutil

    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "card.json").write_text("new")
    (staging / "card.html").write_text("new")
    cards = tmp_path / "cards"
    target = cards / "3"
    target.mkdir(parents=True)
    (target / "card.json").write_text("old")
    real_copytree = shutil.copytree

    def copy_one_then_fail(src, dst, *args, **kwargs):
        Path(dst).mkdir()
        shutil.copy2(Path(src) / "card.json", Path(dst) / "card.json")
        raise OSError("disk full")

    monkeypatch.setattr(shutil, "copytree", copy_one_then_fail)
    with pytest.raises(OSError, match="disk full"):
        train.publish_folder(staging, target)
    assert [p.name for p in cards.iterdir()] == ["3"]
    assert [p.name for p in target.iterdir()] == ["card.json"]
    assert (target / "card.json").read_text() == "old"
    monkeypatch.setattr(shutil, "copytree", real_copytree)
    train.publish_folder(staging, target)
    assert [p.name for p in cards.iterdir()] == ["3"]
    assert sorted(p.read_text() for p in target.iterdir()) == ["new", "new"]


def test_failed_score_write_leaves_the_earlier_output(trained, monkeypatch, tmp_path):
    from pipelines.score import score_file

    _, home = trained
    use_home(monkeypatch, home)
    data = tmp_path / "cohort.csv"
    profiles(50, seed=9).to_csv(data, index=False)
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "scored.csv"
    out.write_text("earlier scores\n")

    def half_write(frame, path, *args, **kwargs):  # the writer under write_cohort fails midway
        Path(path).write_text("person_id,recomm")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_write)
    with pytest.raises(OSError, match="disk full"):
        score_file("champion", data, out)
    assert out.read_text() == "earlier scores\n"
    assert [p.name for p in folder.iterdir()] == ["scored.csv"]
    monkeypatch.undo()
    use_home(monkeypatch, home)
    result = score_file("champion", data, out)
    assert result.rows == 50 and len(pd.read_csv(out)) == 50
    assert [p.name for p in folder.iterdir()] == ["scored.csv"]


@pytest.mark.parametrize(
    "text, words",
    [
        (
            "learner: {n_fold: 5}\n",
            "learner.n_fold = 5 is not a known key; accepted: learner, n_folds, params "
            "(did you mean 'n_folds'?)",
        ),
        (
            "evaluation: {n_folds: -3}\n",
            "evaluation.n_folds = -3 is not accepted; give an integer from 2 to 20",
        ),
        ("learner: {n_folds: 2.5}\n", "learner.n_folds = 2.5 is not accepted; give an integer"),
        ("data: {n: '5000'}\n", "data.n = '5000' is not accepted; give an integer from 200"),
        (
            "outcomes: [ee, burnout]\n",
            "outcomes[1] = 'burnout' is not accepted; give a non-empty "
            "list from ['ee', 'dp', 'pa']",
        ),
        (
            "gate: {alpha: 0.5}\n",
            "gate.alpha = 0.5 is not accepted; give a number at least 1e-12 and below 0.5",
        ),
        # YAML reads `scenario: null` (the null scenario of the README) as no value
        ("data: {scenario: null}\n", 'or "null" in quotes: a bare null is YAML for no value'),
        # a seed this long made the simulated person_ids longer than the contract's 64 characters
        ("data: {seed: " + "9" * 30 + "}\n", "data.seed = " + "9" * 30 + " is not accepted"),
    ],
)
def test_config_typos_and_ranges_are_refused_by_name(tmp_path, text, words):
    path = tmp_path / "train.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        train.load_config(path)
    assert words in str(caught.value)
    assert str(path) in str(caught.value)


def test_shipped_config_round_trips_through_the_settings_model():
    config = train.load_config()
    assert config["learner"] == {"learner": "auto", "n_folds": 3, "params": {}}
    assert config["data"]["design"] is None and config["evaluation"]["n_folds"] == 5
    assert train.config_from_mapping(config) == config


def test_a_version_whose_files_are_gone_is_named_not_a_traceback(champion_home, capsys):
    # The artifact folder deleted or moved (a restore of mlflow.db alone, a cleaned disk):
    # score, allocate and evaluate-policy ended in MLflow's download traceback.
    from recommender.errors import ModelUnavailable
    from recommender.simulate import simulate_cohort

    home = champion_home
    simulate_cohort("default", 50, seed=1).to_csv(home / "c.csv", index=False)
    (home / "mlartifacts").rename(home / "moved")
    with pytest.raises(ModelUnavailable, match="version 1 of burnout-recommender is registered"):
        registry.load_model("champion")
    out = home / "scored.csv"
    assert main(["score", "--model", "1", "--data", str(home / "c.csv"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "its files could not be read" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.usefixtures("sketched_plots")
def test_a_csv_and_its_parquet_train_the_same_model_with_numeric_extras_as_numbers(home, tmp_path):
    # Found: a numeric extra feature read from a CSV stayed text, so the version's MLflow
    # signature declared it a string and its pyfunc refused the same data read from Parquet
    # ("Can not safely convert int64 to <U0"); the run's datasets showed other digests too.
    from recommender.simulate import simulate_cohort

    cohort = simulate_cohort("default", 1200, seed=2)
    cohort = cohort.astype({c: str for c in cohort.select_dtypes("category").columns})
    cohort["night_shifts"] = np.arange(len(cohort)) % 9
    cohort.to_csv(tmp_path / "cohort.csv", index=False)
    cohort.to_parquet(tmp_path / "cohort.parquet", index=False)
    # Two real trainings, one per file: the claim is of how each file is read, so the quick
    # learner does (its fits are as deterministic as SMALL's, compared exactly below).
    small = {**QUICK, "extra_features": ["night_shifts"]}
    runs = {
        kind: train.run_training(overrides=small, data=tmp_path / f"cohort.{kind}")
        for kind in ("csv", "parquet")
    }
    pyfuncs = {
        kind: registry.load_pyfunc(f"models:/burnout-recommender/{r.version}")
        for kind, r in runs.items()
    }
    signatures = {
        kind: {c.name: str(c.type) for c in pyfunc.metadata.get_input_schema().inputs}
        for kind, pyfunc in pyfuncs.items()
    }
    assert (
        signatures["csv"]["night_shifts"]
        == signatures["parquet"]["night_shifts"]
        == ("DataType.long")
    )
    digests = {
        kind: sorted(
            i.dataset.digest for i in registry.client().get_run(r.run_id).inputs.dataset_inputs
        )
        for kind, r in runs.items()
    }
    assert digests["csv"] == digests["parquet"]
    rows = pd.read_parquet(tmp_path / "cohort.parquet").head(40)
    scored = pyfuncs["csv"].predict(rows)
    effects = runs["parquet"].model.predict_effect(rows)
    pd.testing.assert_frame_equal(runs["csv"].model.predict_effect(rows), effects, check_exact=True)
    assert scored["effect_coaching"].to_numpy() == pytest.approx(effects["coaching"].to_numpy())


def test_validations_notes_reach_the_training_run(home, tmp_path):
    # `train` printed none of what `recommender validate` notes (a column it ignores, one value
    # written several ways): a scientist who trains straight away never saw them.
    from recommender.simulate import simulate_cohort

    frame = simulate_cohort("default", 1200, seed=3)
    frame["ward"] = "4 west"  # not in the contract, not named as a feature
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    cohort = train.load_stage(train.config_from_mapping(SMALL), tmp_path / "cohort.csv")
    (note,) = [n for n in cohort.notes if "[unknown_column]" in n]
    assert note.startswith("ward [unknown_column]: column 'ward' is not in the contract")

    class Said:
        def __init__(self):
            self.notes = []

        def note(self, text):
            self.notes.append(text)

        def stage(self, name, description):
            if name == "split":  # enough: the notes come right after loading
                raise KeyboardInterrupt
            return contextlib.nullcontext()

    said = Said()
    with pytest.raises(KeyboardInterrupt):
        train.run_training(overrides=SMALL, data=tmp_path / "cohort.csv", progress=said)
    assert f"note: {note}" in said.notes
