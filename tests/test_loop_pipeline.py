"""The whole learning loop in process: serve with exploration -> outcomes -> train from the
log -> gate -> reload, on a real registered model and a real MLflow store."""

import json
from datetime import datetime, timezone

import pytest
import yaml

from bench._program import followup_under, staff_cohort
from pipelines.train import SilentProgress
from recommender.catalog import load_catalog
from recommender.cohort import PROFILE_COLUMNS
from recommender.errors import InputError
from recommender.service import (
    AuditLog,
    RecommendationEngine,
    load_serve_config,
    record_outcomes,
)
from service_fixtures import SALT, SMALL_TRAINING, recommender_home
from service_fixtures import champion_home, copy_champion  # noqa: F401 - fixtures
from test_pipeline_train import sketched_plots  # noqa: F401 - a fixture


def _serve_yaml(tmp_path, home, **exploration):
    raw = yaml.safe_load(open(load_serve_config().source))
    raw["models_dir"] = str(home)
    # A program of 2,500 staff needs a larger comparison group than the default 2 % for its
    # first retraining: the log must hold over 100 usual-care rows (see fit_min_arm_rows).
    raw["exploration"] = {
        "policy": "thompson",
        "epsilon": 0.1,
        "cycle": 0,
        "usual_care_share": 0.06,
        "max_cost": 0.1,
        **exploration,
    }
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _serve(engine, staff):
    rows = [
        engine.check_row(
            {
                c: staff[c].iloc[i].item()
                if hasattr(staff[c].iloc[i], "item")
                else str(staff[c].iloc[i])
                for c in PROFILE_COLUMNS
            }
        )
        for i in range(len(staff))
    ]
    return engine.recommend(rows, caller_role="program")


def _outcomes(staff, answers):
    served = [a["recommended"] for a in answers]
    follow = followup_under(staff, served)
    now = datetime.now(timezone.utc).isoformat()
    return [
        {
            "person_id": str(staff["person_id"].iloc[i]),
            "measured_at": now,
            # Every fifth person took usual care instead of the recommended arm.
            "arm_taken": "none" if i % 5 == 0 else served[i],
            **{k: int(follow[k].iloc[i]) for k in follow.columns},
        }
        for i in range(len(staff))
    ]


class _Notes(SilentProgress):
    """The run's progress display, recording its notes."""

    def __init__(self):
        self.lines = []

    def note(self, text: str) -> None:
        self.lines.append(text)


# Its runs' plots are sketched: nothing here is of their pixels (see sketched_plots).
@pytest.mark.usefixtures("sketched_plots")
def test_the_loop_learns_from_its_own_log(tmp_path, monkeypatch, copy_champion):
    import pipelines.train as train
    from pipelines.train import evaluate_policies_on_log, load_config, run_training
    from recommender.registry import load_champion, load_model

    home = tmp_path / "home"
    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", SALT)
    copy_champion(home)  # version 1, as train_version(home) leaves it
    serve_yaml = _serve_yaml(tmp_path, home)
    config = load_serve_config(serve_yaml)
    audit = AuditLog(f"sqlite:///{home / 'audit.db'}", salt=SALT)
    catalog = load_catalog()
    with recommender_home(home):
        model, version = load_champion()
        engine = RecommendationEngine(model, version, catalog=catalog, config=config, audit=audit)
        staff = staff_cohort("default", 2500, seed=11)
        answers = _serve(engine, staff)
        assert all(a["assignment"]["cycle"] == 0 for a in answers if a["assignment"])
        with pytest.raises(InputError, match="no served recommendation with a follow-up"):
            run_training(
                overrides={
                    **SMALL_TRAINING,
                    "source": "log",
                    "log": {"serve_config": str(serve_yaml)},
                }
            )
        report = record_outcomes(
            audit, _outcomes(staff, answers), arms=catalog.arm_ids, source="test"
        )
        assert report.recorded == len([a for a in answers if a["assignment"]])
        notes = _Notes()
        result = run_training(
            overrides={**SMALL_TRAINING, "source": "log", "log": {"serve_config": str(serve_yaml)}},
            reason="from the log",
            progress=notes,
        )
        assert result.version == "2"
        facts = json.loads((result.card_folder / "card.json").read_text())
        loop = facts["training_data"]["loop"]
        certain = sum(
            1 for a in answers if a["assignment"] and a["assignment"]["probability"] == 1.0
        )
        assert loop["served_with_probability_one"] == certain
        assert loop["n_rows"] == report.recorded
        uptake = {
            row[0]: dict(zip(loop["uptake"]["columns"][1:], row[1:]))
            for row in loop["uptake"]["rows"]
        }
        served_counts = {}
        for a in answers:
            if a["assignment"]:
                served_counts[a["recommended"]] = served_counts.get(a["recommended"], 0) + 1
        assert {arm: sum(row.values()) for arm, row in uptake.items()} == served_counts
        assert facts["training_data"]["design"].startswith("observational")
        html = (result.card_folder / "card.html").read_text()
        assert "Uptake: arm recommended" in html and "Rows served with probability 1" in html
        # which outcomes made it, to find them in the store later, and who served them
        assert loop["served_by_version"] == {"1": report.recorded}
        assert (
            f"served by version(s) 1 ({report.recorded:,})" in facts["training_data"]["description"]
        )
        assert f"recorded up to {loop['outcomes_recorded_through']}" in html
        # Arms served too rarely to learn are carried over with the champion's estimates,
        # listed in the card with their rows, and kept by the registered model.
        carried = {c["arm"]: c for c in loop["carried_arms"]}
        assert set(carried) == {"peer_group", "balint_group"} == set(loop["arms_without_overlap"])
        assert "Arms carried over" in html
        registered = load_model(f"models:/burnout-recommender/{result.version}")
        for arm, facts in carried.items():
            assert facts["from"] == "the champion, version 1"
            assert facts["rows"] < facts["min_rows"] == loop["min_arm_rows"]
            assert arm in registered.treatment_arms
            assert registered.metadata["arm_sources"][arm]["source"] == "carried"
        assert registered.compiled is not None  # the service's one-pass prediction form
        # where its answers say they extrapolate: the support of the log's training rows
        trained_on = json.loads((result.card_folder / "card.json").read_text())["training_data"]
        support = registered.metadata["training_support"]
        assert support["rows"] == trained_on["n_train"] < report.recorded
        assert sum(support["features"]["role"]["rows"].values()) == support["rows"]
        # the run says so (the CLI shows these notes)
        said = next(n for n in notes.lines if n.startswith("carried over"))
        # the arms carried have rows in the log: set aside, not missing
        assert not any("has no rows" in line for line in notes.lines), notes.lines
        # (the count follows the exploration, which reads the intervals: 101 before the fifth
        # interval pass, 99 after)
        rows = carried["peer_group"]["rows"]
        assert f"peer_group ({rows} rows of 104 needed; from the champion, version 1)" in said
        assert "balint_group (" in said
        # The gate compared on the log's held-out rows (doubly robust, logged propensities).
        assert result.gate.champion_version == "1"
        # Reload: the engine serves whatever is champion now.
        model2, version2 = load_champion()
        assert version2 == ("2" if result.promoted else "1")
        engine2 = RecommendationEngine(
            model2, version2, catalog=catalog, config=config, audit=audit
        )
        again = _serve(engine2, staff.iloc[:50])
        assert all(a["model_version"] == version2 for a in again)
        # A run on a trial file (here the simulated cohort) is judged on the program's log
        # too, with the doubly robust scores of the logged rows, against the same champion.
        # Its fit is SMALL_TRAINING's on the simulated cohort, as version 1's (copied from the
        # session's champion, with its training key): version 1's model is what it would fit.
        version_1 = load_model("models:/burnout-recommender/1")
        with monkeypatch.context() as patch:
            patch.setattr(train, "fit_stage", lambda split, cohort, config: version_1)
            trial = run_training(
                overrides={**SMALL_TRAINING, "log": {"serve_config": str(serve_yaml)}},
                reason="from a trial",
            )
        assert "Judged on the service's log" in trial.gate.reason, trial.gate.reason
        assert trial.gate.champion_version == version2
        if version2 == "2":
            # That champion was trained on most of this log: the two are compared only on the
            # people it was not trained on (its held-out share), never on what it fitted.
            assert 0.25 * report.recorded <= trial.gate.difference.n < 0.5 * report.recorded
            assert "were left out; compared on the other" in trial.gate.reason
            # `evaluate-policy --from-log` values version 2 (and the champion now) on those
            # same people only
            table = evaluate_policies_on_log(
                load_config(overrides={"log": {"serve_config": str(serve_yaml)}}),
                catalog,
                versions=["2"],
            )
            assert table["rows"] == trial.gate.difference.n < table["logged_rows"]
            assert table["note"].startswith(f"{table['logged_rows'] - table['rows']:,} of the")
        else:  # the evidence-only champion was trained on no one
            assert 0.8 * report.recorded <= trial.gate.difference.n <= report.recorded
    # Without a log the same kind of run is judged on its own held-out rows.
    other = tmp_path / "no-log"
    copy_champion(other)
    with recommender_home(other):
        # (SMALL_TRAINING's fit again: version 1's model, as for the trial run above)
        monkeypatch.setattr(train, "fit_stage", lambda split, cohort, config: version_1)
        plain = run_training(overrides=SMALL_TRAINING, reason="no log")
    assert "held-out rows" in plain.gate.reason
    assert "service's log" not in plain.gate.reason
