"""Day one from the evidence: per arm and role, published effects with their intervals, served,
carded and gated like any model."""

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from recommender.catalog import Evidence, load_catalog
from recommender.errors import InputError
from recommender.model import evidence_estimates, evidence_model
from recommender.service import AuditLog, RecommendationEngine, load_serve_config
from service_fixtures import SMALL_TRAINING, profile, recommender_home


@dataclasses.dataclass(frozen=True)
class _Finding(Evidence):
    # A record of the real catalog's kind whose short citation the test names itself.
    label: str = ""

    @property
    def citation(self) -> str:
        return self.label


def _finding(points, ci, roles, citation, specific=True):
    template = next(item for arm in load_catalog().arms for item in arm.evidence)
    fields = {f.name: getattr(template, f.name) for f in dataclasses.fields(Evidence)}
    fields.update(
        effect_points=points,
        effect_points_ci=ci,
        roles=roles,
        specific_to_arm=specific,
        conversion="SMD x 9.5",
    )
    return _Finding(**fields, label=citation)


def evidence_catalog():
    catalog = load_catalog()
    findings = {
        "coaching": (
            _finding(-6.7, (-10.1, -3.3), ("physician",), "Dyrbye 2019"),
            _finding(-3.5, (-5.9, -1.2), ("physician",), "Collett 2025"),
        ),
        "mindfulness": (
            _finding(-3.8, (-6.2, -1.5), ("physician", "nurse"), "Collett 2025 MBI"),
            _finding(-2.4, (-3.8, -1.0), ("resident",), "pooled review", False),
        ),
        "peer_group": (_finding(-2.4, (-3.8, -1.0), ("resident",), "pooled review", False),),
    }
    arms = tuple(
        dataclasses.replace(arm, evidence=findings.get(arm.id, ())) for arm in catalog.arms
    )
    return dataclasses.replace(catalog, arms=arms)


def test_estimates_per_arm_and_role_prefer_specific_precise_findings():
    table = {(e.arm, e.role): e for e in evidence_estimates(evidence_catalog())}
    assert table[("coaching", "physician")].citation == "Collett 2025"  # the narrower interval
    assert table[("mindfulness", "nurse")].effect == -3.8
    assert not table[("peer_group", "resident")].specific_to_arm
    assert ("coaching", "nurse") not in table  # no finding: no estimate


def test_the_model_scores_by_role_with_published_intervals():
    model = evidence_model(evidence_catalog())
    profiles = pd.DataFrame(
        [
            profile(person_id=f"p{i}", role=r)
            for i, r in enumerate(["physician", "nurse", "resident", "app"])
        ]
    )
    scores = model.score(profiles, alpha=0.05)
    assert scores.loc[0, "effect_coaching"] == -3.5
    assert scores.loc[0, ["lower_coaching", "upper_coaching"]].tolist() == pytest.approx(
        [-5.85, -1.15]
    )  # the published 95 % interval's width, centred on the effect
    # Physicians: mindfulness (-3.8) ahead of coaching (-3.5); app: no evidence, usual care.
    assert list(scores["recommended"]) == ["mindfulness", "mindfulness", "mindfulness", "none"]
    # Nothing beyond role: two physicians with different scores get the same figures.
    other = model.score(pd.DataFrame([profile(ee=50, dp=25, weekly_hours=80.0)]))
    assert other.loc[0, "effect_coaching"] == scores.loc[0, "effect_coaching"]


def test_a_catalog_without_converted_effects_is_refused():
    with pytest.raises(InputError, match="effect_points_ci"):
        evidence_model(
            dataclasses.replace(
                load_catalog(),
                arms=tuple(dataclasses.replace(a, evidence=()) for a in load_catalog().arms),
            )
        )


def _evidence_engine():
    catalog = evidence_catalog()
    return RecommendationEngine(
        evidence_model(catalog),
        "1",
        catalog=catalog,
        config=load_serve_config(),
        audit=AuditLog("sqlite://", salt="s"),
    )


def test_answers_say_they_rest_on_published_trials():
    engine = _evidence_engine()
    answer = engine.recommend([engine.check_row(profile())], caller_role="program")[0]
    assert answer["ranking"][0]["arm"] == "mindfulness"
    assert "rest on published trials alone" in answer["ranking_note"]
    # the published findings are in EE points alone: no DP or PA figure, and no interval
    # made up for one
    best = answer["ranking"][0]
    assert [best[f"{o}_{k}"] for o in ("dp", "pa") for k in ("effect", "lower", "upper")] == [
        None
    ] * 6
    assert (
        "Collett 2025 MBI" in answer["ranking_note"]
        and "not personalised beyond role" in answer["ranking_note"]
    )
    nurse = engine.recommend([engine.check_row(profile(role="nurse"))], caller_role="program")[0]
    assert {a["arm"] for a in nurse["ranking"]} <= {"mindfulness", "none"}
    assert any("no estimate" in e["reason"] for e in nurse["excluded"])
    # Seen serving `train --evidence-only`: the context said "The data this model learned
    # from is not recorded in it" while the ranking note and the card said published trials.
    data = answer["context"]["training_data"]
    assert data["source"] == "evidence" and "published" in data["statement"]
    assert "not recorded" not in data["statement"]


def test_answers_say_a_pooled_figure_is_pooled_and_never_that_arms_cannot_be_offered():
    engine = _evidence_engine()
    # Residents: mindfulness's only figure is a review pooling several kinds of intervention;
    # the note cited it as if it were mindfulness's own.
    resident = engine.recommend([engine.check_row(profile(role="resident"))], caller_role="program")
    note = resident[0]["ranking_note"]
    assert "pooled review, an estimate pooled over several kinds of intervention" in note
    # APPs: the catalog offers them coaching, but no finding concerns APPs, so only usual care
    # is ranked; the answer said "Only usual care can be offered to this person".
    app = engine.recommend([engine.check_row(profile(role="app"))], caller_role="program")[0]
    assert [a["arm"] for a in app["ranking"]] == ["none"]
    assert any(e["arm"] == "coaching" and "no estimate" in e["reason"] for e in app["excluded"])
    assert "can be offered" not in app["ranking_note"]
    assert "can be offered" not in app["explanation"]["sentence"]
    assert app["ranking_note"].startswith("Usual care is the only arm ranked for this person")


def test_scored_files_say_the_evidence_model_rests_on_published_trials():
    from pipelines.score import model_notes

    notes = " ".join(model_notes(evidence_model(evidence_catalog())))
    assert "published" in notes and "not recorded" not in notes


def test_train_evidence_only_registers_gates_and_cards(tmp_path, monkeypatch):
    import recommender.catalog

    from pipelines.train import run_training

    monkeypatch.setattr(recommender.catalog, "load_catalog", lambda *a, **k: evidence_catalog())
    serve = tmp_path / "serve.yaml"
    serve.write_text(
        open(load_serve_config().source)
        .read()
        .replace("models_dir: null", f"models_dir: {tmp_path / 'home'}")
    )
    overrides = {**SMALL_TRAINING, "source": "evidence", "log": {"serve_config": str(serve)}}
    with recommender_home(tmp_path / "home"):
        first = run_training(overrides=overrides)
        assert first.promoted and first.gate.passed
        assert "day-one" in first.gate.reason
        facts = json.loads((first.card_folder / "card.json").read_text())
        assert facts["training_data"]["source"] == "evidence"
        # the finding's population and certainty (columns 7 and 8) are tested in
        # test_card_audit_dec08a.py
        rows = [r[:6] + r[8:] for r in facts["evaluation"]["average_effects"]["rows"]]
        assert [
            "coaching",
            "physician",
            -3.5,
            -5.9,
            -1.2,
            "Collett 2025",
            "yes",
            "SMD x 9.5",
        ] in rows
        html = (first.card_folder / "card.html").read_text()
        assert (
            "not personalised beyond role" in html.replace("personalized", "personalised")
            or "Nothing is personalised beyond role" in html
        )
        from recommender.registry import load_champion

        loaded, version = load_champion()
        assert version == first.version and loaded.metadata["source"] == "evidence"
        # Found: the run's params said config.learner.learner = t (the config's) though no
        # learner was fitted; they now hold only what the run read.
        from recommender.registry import client

        logged = client().get_run(first.run_id)
        params = logged.data.params
        assert params["learner.chosen.ee"] == "evidence"
        assert params["config.gate.alpha"] and params["config.catalog"]
        assert not [k for k in params if k.startswith(("config.learner.", "config.data."))]
        assert "config.outcomes" not in params and "config.split.holdout_share" not in params
        given = client().download_artifacts(first.run_id, "config/train.yaml", str(tmp_path))
        assert "learner: t" in Path(given).read_text()  # the config as given, to repeat the run
        # A champion exists and there is no log to compare on: the next stays challenger.
        second = run_training(overrides=overrides)
        assert not second.gate.passed and "stays challenger" in second.gate.reason
        assert not second.promoted


def test_a_log_with_too_few_outcomes_names_the_log_and_does_not_stop_evidence_training(
    tmp_path, monkeypatch
):
    # Found following the README's loop: with a couple of outcomes recorded, `train
    # --evidence-only` failed with the learners' "only one arm in treatment", `train
    # --from-log` blamed "the simulated cohort" and `evaluate-policy` never named the log.
    from datetime import datetime, timedelta, timezone

    import recommender.catalog

    from pipelines.train import evaluate_policies_on_log, load_config, run_training
    from recommender.service import record_outcomes

    catalog = evidence_catalog()
    monkeypatch.setattr(recommender.catalog, "load_catalog", lambda *a, **k: catalog)
    home = tmp_path / "home"
    serve = tmp_path / "serve.yaml"
    serve.write_text(
        open(load_serve_config().source).read().replace("models_dir: null", f"models_dir: {home}")
    )
    overrides = {**SMALL_TRAINING, "source": "evidence", "log": {"serve_config": str(serve)}}
    with recommender_home(home):
        assert run_training(overrides=overrides).promoted  # day one: no log yet
        audit = AuditLog(f"sqlite:///{home / 'audit.db'}", salt="s")
        engine = RecommendationEngine(
            evidence_model(catalog), "1", catalog=catalog, config=load_serve_config(), audit=audit
        )
        rows = [engine.check_row(profile(person_id=f"p-{i}")) for i in range(2)]
        # a nurse offered only an arm with no nurse estimate is served usual care
        rows.append(
            engine.check_row(profile(person_id="p-2", role="nurse", offered=["peer_group"]))
        )
        engine.recommend(rows, caller_role="program")
        later = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()
        outcome = {"measured_at": later, "arm_taken": "mindfulness", "ee_followup": 20}
        outcome.update(dp_followup=7, pa_followup=38)
        record_outcomes(
            audit,
            [{"person_id": f"p-{i}", **outcome} for i in range(3)],
            arms=catalog.arm_ids,
            source="api",
            now=datetime.now(timezone.utc) + timedelta(seconds=5),
        )
        audit.close()

        again = run_training(overrides=overrides)
        assert not again.promoted and "stays challenger" in again.gate.reason
        assert "the service's log cannot value the models yet" in again.gate.reason
        with pytest.raises(InputError, match="need at least .* the log holds 3 "):
            run_training(overrides={**overrides, "source": "log"})
        config = load_config(overrides={"log": {"serve_config": str(serve)}})
        with pytest.raises(InputError, match="^the service's log holds 3 served"):
            evaluate_policies_on_log(config, catalog)
