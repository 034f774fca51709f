"""Promote and serve what matches: the catalog a version was trained under, the request fields
it needs, a training run deleted after promotion, and an alias change stopped midway.

One home per module: the session's trained version 1 (the champion, of the installed catalog),
then version 2, which needs an extra request field (``night_shifts``), and version 3, an
evidence-only model of the catalog before the installed one, whose figures for mindfulness were
other; both failed their gate and stay challenger. Each test works on its own copy.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml
from service_fixtures import ENV_KEYS, SALT, auth, profile
from test_model_fakes import LinearUplift, features, profiles

# ``home``: a copy of this module's ``three_versions`` for each test.
from test_registry_lifecycle import _log, built_home, home  # noqa: F401 - a fixture too

from pipelines.score import safety_rules
from recommender import registry
from recommender.catalog import load_catalog, parse_catalog
from recommender.cli import main
from recommender.errors import InputError
from recommender.model import RecommendationModel, evidence_estimates, evidence_model
from recommender.paths import config_path

OLD = "2026.12-3"
# The old catalog's mindfulness figures: each published EE effect 2 points stronger.
SHIFT = -2.0


def _old_catalog():
    data = yaml.safe_load(config_path("interventions.yaml").read_text(encoding="utf-8"))
    data["version"] = OLD
    for arm in data["arms"]:
        if arm["id"] != "mindfulness":
            continue
        for item in arm.get("evidence") or ():
            if item.get("effect_points") is not None:
                item["effect_points"] = item["effect_points"] + SHIFT
                item["effect_points_ci"] = [v + SHIFT for v in item["effect_points_ci"]]
    return parse_catalog(data, source="old catalog")


def _with_night_shifts():
    """A model needing the request field ``night_shifts`` beyond the data contract."""
    X = features(profiles()).assign(night_shifts=np.linspace(0.0, 10.0, len(profiles())))
    learners = {o: LinearUplift().fit(X, None, None) for o in ("ee", "dp", "pa")}
    return RecommendationModel(
        outcome_models=learners, features=X, catalog_version=load_catalog().version
    )


def _register(model, example, *, tags=None):
    """Register ``model`` as a version that failed its gate (it stays challenger)."""
    gate = registry.GateDecision(
        passed=False, reason="worse", alpha=0.1, challenger=registry.estimate(np.ones(20))
    )
    with registry.TrainingRun(run_name="lifecycle2") as run:
        run.set_tags(dict(tags or {}))
        info = run.log_model(model, example, safety=safety_rules())
        version = run.register(info, gate=gate, reason="lifecycle2").version
    # A card of its own, as training writes one, for the served card to add to.
    folder = registry.promotion_log_path().parent / "cards" / version
    folder.mkdir(parents=True)
    (folder / "card.html").write_text("<h1>Model card</h1><nav>contents</nav>")
    (folder / "card.json").write_text(json.dumps({"version": version}))
    return version


@pytest.fixture(scope="module")
def three_versions(trained, tmp_path_factory):
    def build():
        example = profiles(5).assign(night_shifts=[1.0, 2.0, 3.0, 4.0, 5.0])
        assert _register(_with_night_shifts(), example) == "2"
        old = evidence_model(_old_catalog())
        assert _register(old, profiles(5), tags={"catalog.version": OLD}) == "3"
        assert registry.aliases() == {"champion": "1", "challenger": "3"}

    return built_home(trained, tmp_path_factory, build)


@pytest.fixture
def served(home, monkeypatch):
    """The service's ASGI app in process over this home's registry (its real champion)."""
    from service_fixtures import _app
    from starlette.testclient import TestClient

    from recommender.service import service as service_module

    monkeypatch.setenv("BENTOML_HOME", str(home / "bentoml"))
    monkeypatch.setenv("RECOMMENDER_API_KEYS", ENV_KEYS)
    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", SALT)
    monkeypatch.delenv("RECOMMENDER_SERVE_CONFIG", raising=False)
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        yield client


def _unchanged(home, before) -> bool:
    return registry.aliases() == {"champion": "1", "challenger": "3"} and _log(home) == before


# -- the catalog a version was trained under ---------------------------------------------------


def test_a_version_of_another_catalog_is_refused_naming_both_and_what_to_do(home):
    installed = load_catalog().version
    before = _log(home)
    with pytest.raises(InputError) as refused:
        registry.promote("3", reason="probe")
    said = str(refused.value)
    # the gate's verdict and the catalog in one refusal: --force is not a blind second step
    assert "failed the promotion gate (worse)" in said
    assert f"trained under intervention catalog {OLD}, not the installed {installed}" in said
    assert f"catalog {OLD}'s published figures" in said  # an evidence-only model's own figures
    assert "evidence quoted beside each ranked arm" in said and "`recommender train`" in said
    assert "--force" in said and _unchanged(home, before)

    event = registry.promote("3", reason="the program accepts 2026.12-3 until Monday", force=True)
    assert event.forced and [o["code"] for o in event.overrides] == ["catalog"]
    assert (event.overrides[0]["trained"], event.overrides[0]["installed"]) == (OLD, installed)
    logged = json.loads(_log(home).splitlines()[-1])
    assert logged["overrides"][0]["trained"] == OLD and logged["forced"] is True
    # a rollback to the version of the installed catalog needs nothing forced
    assert registry.rollback(reason="retrained").version == "1"


def test_a_rollback_to_a_version_of_another_catalog_is_refused_the_same_way(home, capsys):
    registry.promote("3", reason="interim", force=True)
    registry.promote("2", reason="night shifts are sent now", force=True)
    with pytest.raises(InputError, match=f"catalog {OLD}, not the installed") as refused:
        registry.rollback(reason="v2 misranks nurses")
    assert 'recommender rollback --force --reason "..."' in str(refused.value)
    assert registry.aliases()["champion"] == "2"
    assert main(["rollback", "--force", "--reason", "accepted for a week"]) == 0
    out = capsys.readouterr().out
    assert "version 2 -> 3" in out and "forced over version 3 was trained under" in out


def test_an_old_catalogs_champion_is_said_by_champions_the_card_and_the_served_answers(
    home, served, capsys
):
    installed = load_catalog().version
    registry.promote("3", reason="interim", force=True)
    assert main(["champions"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "OVER A FAILED GATE AND ANOTHER CATALOG (--force): interim" in lines[-3]
    assert lines[-2] == "champion now: version 3"
    assert lines[-1].startswith(f"warning: version 3 was trained under intervention catalog {OLD}")

    reload = served.post("/reload", headers=auth("scientist"))
    assert reload.status_code == 200 and reload.json()["model_version"] == "3"
    concerns = served.get("/model_card.json", headers=auth("auditor")).json()["serving"]
    assert any(f"catalog {OLD}, not the installed {installed}" in c for c in concerns["concerns"])
    assert "Made the champion with --force over this" in concerns["champion"]["statement"]
    page = served.get("/model_card", headers=auth("auditor")).text
    assert 'class="warning serving-concern"' in page and OLD in page

    # What the note says is what an answer does: the effect ranked by is the old catalog's
    # figure, the evidence quoted beside it the installed catalog's.
    nurse = profile(role="nurse", offered=["mindfulness"])
    answer = served.post("/recommend", json=nurse, headers=auth("program")).json()
    assert answer["catalog_version"] == installed and answer["model_version"] == "3"
    ranked = {a["arm"]: a for a in answer["ranking"]}["mindfulness"]
    old = {(e.arm, e.role): e for e in evidence_estimates(_old_catalog())}
    new = {(e.arm, e.role): e for e in evidence_estimates(load_catalog())}
    assert ranked["ee_effect"] == pytest.approx(old["mindfulness", "nurse"].effect, abs=0.01)
    quoted = [e["effect_points"] for e in ranked["evidence"] if e.get("effect_points") is not None]
    assert new["mindfulness", "nurse"].effect in quoted
    assert old["mindfulness", "nurse"].effect not in quoted


# -- request fields the champion does not need ---------------------------------------------------


def test_forcing_a_version_needing_new_request_fields_says_and_does_what_it_said(
    home, served, capsys
):
    before = _log(home)
    with pytest.raises(InputError, match="does not take: night_shifts") as refused:
        registry.promote("2", reason="probe")
    assert "refused 422 naming the field" in str(refused.value) and _unchanged(home, before)

    assert main(["promote", "2", "--force", "--reason", "callers send night_shifts"]) == 0
    out = capsys.readouterr().out
    assert "forced over a failed promotion gate (worse)" in out
    assert "forced over version 2 needs request fields that version 1" in out
    assert "crisis_risk is answered with crisis resources" in out

    assert served.post("/reload", headers=auth("scientist")).json()["model_version"] == "2"
    missing = served.post("/recommend", json=profile(), headers=auth("program"))
    assert missing.status_code == 422
    assert [p["field"] for p in missing.json()["problems"]] == ["night_shifts"]
    sent = served.post("/recommend", json=profile(night_shifts=4.0), headers=auth("program"))
    assert sent.status_code == 200 and sent.json()["model_version"] == "2"
    crisis = served.post("/recommend", json=profile(crisis_risk=True), headers=auth("program"))
    assert crisis.status_code == 200 and crisis.json()["safety"]["resources"]
    batch = served.post(
        "/recommend_batch",
        json={"profiles": [profile(), profile(night_shifts=1.0)]},
        headers=auth("program"),
    )
    assert batch.status_code == 200, batch.text
    body = batch.json()
    assert (body["answered"], body["rejected"], body["result_index"]) == (1, 1, [1])
    assert body["errors"][0]["problems"][0]["field"] == "profiles[0].night_shifts"


# -- a training run deleted after promotion ------------------------------------------------------


def test_a_champion_whose_run_was_deleted_afterwards_is_flagged_and_not_rolled_back_to(
    home, served, capsys
):
    client = registry.client()
    run_id = client.get_model_version(registry.MODEL_NAME, "1").run_id
    registry.promote("3", reason="interim", force=True)
    client.delete_run(run_id)
    with pytest.raises(InputError, match=f"training run {run_id} was deleted"):
        registry.rollback(reason="back to 1")
    assert registry.aliases()["champion"] == "3"

    registry.promote("2", reason="now", force=True)
    client.restore_run(run_id)
    registry.rollback(reason="back to 3", force=True)  # version 3 is of the old catalog
    registry.rollback(reason="back to 1")  # version 1 is the champion again, served
    assert served.post("/reload", headers=auth("scientist")).json()["model_version"] == "1"
    client.delete_run(run_id)
    assert main(["champions"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[-1].startswith(f"warning: version 1's training run {run_id} was deleted")
    assert f"mlflow runs restore --run-id {run_id}" in said[-1]
    card = served.get("/model_card.json", headers=auth("auditor")).json()["serving"]
    assert any(f"training run {run_id} was deleted" in c for c in card["concerns"])


# -- an alias change stopped midway --------------------------------------------------------------

_KILLED = """
import os, signal
from recommender.registry import _aliases, _intent, _promotion

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

{patch}
_aliases.promote("3", reason="killed midway", force=True)
"""


def _kill_promote(patch: str):
    code = textwrap.dedent(_KILLED.format(patch=patch))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]


def test_a_kill_after_the_alias_moved_is_recorded_late_by_champions(home, capsys):
    before = _log(home)
    _kill_promote("_aliases.record_events = die")
    assert registry.aliases()["champion"] == "3" and _log(home) == before

    assert main(["champions"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "killed midway [recorded late:" in lines[-3] and "`recommender champions`" in lines[-3]
    assert lines[-2] == "champion now: version 3"
    late = json.loads(_log(home).splitlines()[-1])
    assert late["version"] == "3" and late["reason"] == "killed midway" and late["forced"]
    assert registry.rollback(reason="undo").version == "1"
    assert main(["champions"]) == 0  # completed once: nothing more to complete
    assert capsys.readouterr().out.count("recorded late") == 1


def test_a_kill_between_the_tag_and_the_log_line_completes_the_log_only(home):
    _kill_promote("_aliases.append_events = die")
    tags = [e for e in registry.promotion_history() if e.reason == "killed midway"]
    assert len(tags) == 1 and tags[0].recorded_late is None  # the tag was written in time
    assert "killed midway" not in _log(home)
    registry.promote("1", reason="back")  # completes the log, then promotes
    logged = [json.loads(line) for line in _log(home).splitlines()]
    assert [e["reason"] for e in logged[-2:]] == ["killed midway", "back"]
    assert len([e for e in registry.promotion_history() if e.reason == "killed midway"]) == 1


def test_a_kill_before_the_alias_moved_leaves_nothing_changed_and_nothing_recorded(home):
    before = _log(home)
    _kill_promote("_aliases.declare = lambda *a, _d=_aliases.declare, **k: (_d(*a, **k), die())")
    assert _unchanged(home, before)
    # the next change drops the intent (the alias never moved) and goes on
    with pytest.raises(InputError, match="no earlier champion"):
        registry.rollback(reason="nothing to undo")
    assert not any(e.reason == "killed midway" for e in registry.promotion_history())
    assert _unchanged(home, before)


# -- another registered model name -------------------------------------------------------------


@pytest.mark.parametrize("name", ["o'brien model", "burnout-recommender-2", ""])
def test_training_under_another_model_name_is_refused_before_anything_runs(name):
    # The gate would judge it against that name's champion, and nothing serves or promotes it.
    from pipelines.train import load_config

    with pytest.raises(InputError) as refused:
        load_config(overrides={"registry": {"model_name": name}})
    said = str(refused.value)
    assert f"registry.model_name = {name!r} is not accepted" in said
    assert "give burnout-recommender, the registered model the service serves" in said
