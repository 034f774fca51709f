"""A home made by an older release, opened by this one: nothing lost, and what cannot be used
said as old, never as something else.

The fixtures are built here, by the migrations themselves (an audit store at an older revision)
or by hand (an artifact without a newer field), never by running an older commit.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
import sqlalchemy as sa
import yaml
from alembic import command

from pipelines.score import safety_rules
from recommender import registry
from recommender.catalog import load_catalog, parse_catalog
from recommender.cli import main
from recommender.errors import InputError, ModelUnavailable, ModelUnreadable
from recommender.paths import shipped_config_dir
from recommender.service import (
    AuditLog,
    RecommendationEngine,
    load_serve_config,
    AuditSaltMissing,
    OutcomeRefused,
    logged_cohort,
    record_outcomes,
    resolve_salt,
)
from recommender.service._migrate import _config, schema_revision
from recommender.service._pages import champion_record
from service_fixtures import AUDIT_RECORD, SALT, LinearModel, profile
from service_fixtures import outcome as _outcome
from test_model_fakes import fake_model, profiles
from test_registry_mlflow import home, register_fake  # noqa: F401 - a fixture used below

ARMS = load_catalog().arm_ids
# Rows as a release before the learning loop (revision 0002) wrote them: a ranked answer, a
# crisis answer and a plan line, each for its own person; no assignment table existed.
BEFORE_THE_LOOP = [
    ("old-ranked", None, "p-ranked", "routine", "coaching"),
    ("old-crisis", None, "p-crisis", "crisis", None),
    ("old-plan", "plan-1", "p-planned", "routine", "mindfulness"),
]


def _store_at(url: str, revision: str, rows) -> None:
    hashing = AuditLog("sqlite://", salt=SALT)  # the salt the old service hashed ids with
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)
        for request_id, batch_id, person_id, level, arm in rows:
            connection.execute(
                sa.text(
                    "INSERT INTO recommendations (logged_at, request_id, batch_id, "
                    "model_version, caller_role, person_hash, safety_level, recommended, "
                    "ranking_meaningful, effects) VALUES ('2026-12-03 10:00:00.000000', :r, :b, "
                    "'1', 'program', :h, :level, :arm, NULL, '{}')"
                ),
                {
                    "r": request_id,
                    "b": batch_id,
                    "h": hashing.person_hash(person_id),
                    "level": level,
                    "arm": arm,
                },
            )
    assert schema_revision(engine) == revision
    engine.dispose()
    hashing.close()


def test_an_outcome_of_a_person_served_before_the_learning_loop_says_so(tmp_path):
    # A ranked answer of an older release has no assignment (probability, profile), so no
    # outcome links to it; it used to be refused as "answered only with a crisis answer or a
    # plan line", which sent the program looking for a crisis answer that never was.
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    _store_at(url, "0002", BEFORE_THE_LOOP)
    audit = AuditLog(url, salt=SALT)
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(
            audit,
            [_outcome("p-ranked"), _outcome("p-crisis"), _outcome("p-planned")],
            arms=ARMS,
            source="api",
            now=datetime.now(timezone.utc) + timedelta(seconds=5),
        )
    ranked, crisis, planned = caught.value.problems
    assert caught.value.status == 422
    assert ranked["field"] == "outcomes[0].person_id" and ranked["value"] == "(hidden)"
    assert "older than the learning loop" in ranked["message"]
    assert "revision 0003" in ranked["message"]
    assert "serve the person again" in ranked["accepted"]
    for problem in (crisis, planned):
        assert "crisis answer or a plan line" in problem["message"], problem
    assert logged_cohort(audit).empty
    assert [row["request_id"] for row in audit.export()] == [r[0] for r in BEFORE_THE_LOOP]
    audit.close()


def test_an_outcome_dated_before_a_new_recommendation_says_the_old_one_cannot_link(tmp_path):
    # Served by an older release, then again since the upgrade: an outcome measured between the
    # two follows the old answer, which no outcome links to; "before the person's first
    # recommendation" would be false.
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    _store_at(url, "0002", BEFORE_THE_LOOP[:1])
    audit = AuditLog(url, salt=SALT)
    engine = RecommendationEngine(
        LinearModel(), "5", catalog=load_catalog(), config=load_serve_config(), audit=audit
    )
    engine.recommend([engine.check_row(profile(person_id="p-ranked"))], caller_role="program")
    between = {**_outcome("p-ranked"), "measured_at": "2026-12-04T00:00:00Z"}
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(audit, [between], arms=ARMS, source="api")
    (problem,) = caught.value.problems
    assert problem["field"] == "outcomes[0].measured_at"
    assert "older than the learning loop" in problem["message"]
    assert problem["accepted"].endswith("served with a logged assignment")
    recorded = record_outcomes(audit, [_outcome("p-ranked")], arms=ARMS, source="api")
    assert recorded.recorded == 1  # measured after the new answer, it links to that one
    audit.close()


# A catalog as releases before catalog 2026.12-1 wrote it: evidence as one citation text and an
# SMD, no exclusions (cut to two arms; the fields are those of version 2026.11-1).
CATALOG_2026_11 = """
version: "2026.11-1"
control: none
arms:
  - id: none
    name: Usual care
    description: No program intervention.
    format: none
    dose: none
    group_min: 1
    group_max: 1
    cost_per_person: 0
  - id: coaching
    name: Professional coaching
    description: One-to-one sessions with a trained professional coach.
    format: individual
    dose: 6 sessions
    group_min: 1
    group_max: 1
    cost_per_person: 1400
    cost_is_assumption: true
    eligibility:
      roles: [physician, resident, app]
    evidence:
      - citation: A trial of professional coaching
        population: physicians
        outcome: MBI Emotional Exhaustion at 5 months
        effect: net -6.7 points versus usual care
        effect_points: -6.7
        smd: null
"""


def test_a_catalog_of_an_older_release_is_named_as_such_with_what_to_do():
    # Every evidence record of it is refused field by field (dozens of lines), which alone
    # did not say that the file is an older release's, nor what to do with it.
    with pytest.raises(InputError) as caught:
        parse_catalog(yaml.safe_load(CATALOG_2026_11), source="configs/interventions.yaml")
    message = str(caught.value)
    first, *_, last = message.splitlines()
    assert first.startswith("configs/interventions.yaml: ")
    assert "older release's format" in first
    assert "'2026.11-1'" in last and "carry your own changes over" in last
    assert "recommender serve --check" in last
    assert any("citation: unknown field" in p["message"] for p in caught.value.problems)


@pytest.mark.parametrize("version", ["2026.12-1", None], ids=["older", "this release's"])
def test_a_refused_catalog_of_another_version_names_the_one_this_release_ships(tmp_path, version):
    # Catalog 2026.12-1, kept over an upgrade, breaks one rule added since (an exclusion both
    # an assumption and sourced): the field alone did not say the file was an older release's.
    shipped = shipped_config_dir() / "interventions.yaml"
    raw = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    ships = raw["version"]
    raw["version"] = version or ships
    raw["arms"][1]["cost_per_person"] = "a lot"
    kept = tmp_path / "interventions.yaml"
    kept.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_catalog(kept)
    message = str(caught.value)
    assert "cost_per_person" in message and len(caught.value.problems) == 1
    assert "older release's format" not in message
    if version is None:
        assert "this release ships" not in message
    else:
        assert message.splitlines()[-1].startswith(
            f"This catalog is version '{version}'; this release ships version '{ships}' ({shipped})"
        )


# A pickle naming a class this release does not have, as a model an older release pickled
# with a class since renamed or removed would: GLOBAL, EMPTY_TUPLE, NEWOBJ, STOP.
GONE_CLASS = b"\x80\x04crecommender.model\nRecommendationModelOfOld\n)\x81."


def test_a_version_this_release_cannot_load_is_named_never_a_traceback(home, capsys):
    register_fake()
    register_fake()
    uri = registry.client().get_model_version_download_uri("burnout-recommender", "1")
    (bundle,) = Path(unquote(urlparse(uri).path)).rglob("*.joblib")
    bundle.write_bytes(GONE_CLASS)
    with pytest.raises(ModelUnreadable) as caught:
        registry.load_model("models:/burnout-recommender/1")
    assert isinstance(caught.value, ModelUnavailable)  # handled wherever a missing one is
    message = str(caught.value)
    assert "version 1 of burnout-recommender" in message and "could not load them" in message
    assert "AttributeError" in message and "RecommendationModelOfOld" in message
    assert "recommender promote VERSION" in message

    before = registry.aliases()
    assert main(["promote", "1", "--reason", "back to the old one"]) == 2
    err = capsys.readouterr().err
    assert "refusing to make version 1 the champion" in err and "could not load them" in err
    assert "Traceback" not in err
    assert registry.aliases() == before and before["champion"] == "2"


def test_a_gate_valued_on_no_rows_is_recorded_and_served_as_strict_json(home):
    # The day-one evidence-only model's gate has no rows to value it on: its figures are NaN,
    # which the promotion log and the version's tags held as NaN (this release and older
    # ones), so /model_card.json of such a champion answered 500 (NaN is no JSON).

    # As the evidence-only run's gate values it (pipelines/_train_evidence.py): on no rows.
    nothing = registry.PolicyValue(float("nan"), float("nan"), float("nan"), 0)
    day_one = registry.GateDecision(passed=True, reason="day one", alpha=0.1, challenger=nothing)
    assert np.isnan(day_one.challenger.estimate)
    with registry.TrainingRun(run_name="fake") as run:
        info = run.log_model(fake_model(), profiles(5), safety=safety_rules())
        run.register(info, gate=day_one, reason="evidence-only model")
    assert "NaN" not in (home / "promotions.jsonl").read_text()
    record = champion_record("1")
    json.dumps(record, allow_nan=False)
    assert record["event"]["policy"]["challenger"]["estimate"] is None

    # A home an older release wrote holds the NaN in the version's tags already.
    older = registry.champion_event("1")
    older = registry.PromotionEvent(**{**asdict(older), "time": "2026-12-04T10:00:00.000000+00:00"})
    tags = registry.client()
    tags.set_model_version_tag("burnout-recommender", "1", older.tag_key, json.dumps(asdict(older)))
    record = champion_record("1")
    json.dumps(record, allow_nan=False)


SALT_ENV = "RECOMMENDER_AUDIT_SALT"  # README names it; the service reads it
SHORT = "a-salt-of-old"  # 13 characters: taken by releases before 2026-12-05


@pytest.mark.parametrize("revision", ["0003", None], ids=["before-0004", "with-fingerprint"])
def test_a_short_salt_a_store_was_written_with_is_refused_saying_what_keeps_its_records(
    tmp_path, monkeypatch, revision
):
    # "Make a new salt", alone, orphaned the records: a store from before revision 0004 adopted
    # the new salt silently, and a later one refused it, sending the program back to the short
    # salt that is refused.
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    if revision is None:
        written = AuditLog(url, salt=SHORT)
        written.append([{**AUDIT_RECORD, "person_id": "p-1"}])
        written.close()
    else:
        _store_at(url, revision, BEFORE_THE_LOOP[:1])
    monkeypatch.setenv(SALT_ENV, SHORT)
    with pytest.raises(AuditSaltMissing) as caught:
        resolve_salt(None, tmp_path, store=url)
    message = str(caught.value)
    assert message.startswith(f"the audit salt from {SALT_ENV}") and "has 13 characters" in message
    assert "releases before 2026-12-05" in message and "holds records" in message
    assert ("this very salt" in message) == (revision is None)
    assert "new store (audit.url" in message and "recommender audit export" in message
    assert SHORT not in message

    with pytest.raises(AuditSaltMissing) as caught:  # a store without records: just too short
        resolve_salt(None, tmp_path, store=f"sqlite:///{tmp_path / 'new.db'}")
    assert "holds records" not in str(caught.value)
