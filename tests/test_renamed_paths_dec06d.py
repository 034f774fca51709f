"""An arm the catalog renamed (``renamed_from``) is served under its new id with what the
champion learnt under the former one on every path where a model meets the catalog in force,
not only by the service: ``score``, ``allocate``, ``champions``, ``serve --check``, the
``promote`` check and the training gate. Over the session's real champion (tests/service_fixtures.py), under a copy of
the configs folder (the ``under`` fixture of tests/test_catalog_change_dec06b.py).

Also: a worker that cannot read the catalog another worker's /reload of the same version put in
force says what differs (the catalogs), not "version 7, not version 7".
"""

from __future__ import annotations

import pandas as pd
import pytest
from service_fixtures import champion_home, copy_champion, service_home  # noqa: F401 - fixtures
from service_fixtures import free_port
from test_catalog_change_dec06b import under  # noqa: F401 - a fixture
from test_catalog_reload_dec06c import _arm, _edit, _rename_balint
from test_catalog_reload_dec06c import catalog_file, client  # noqa: F401 - fixtures

NOTE = "renamed balint (formerly balint_group)"


def _unchanged(data):
    pass


@pytest.fixture
def cohort_file(tmp_path):
    from recommender.simulate import load_scenario, simulate_cohort

    cohort = simulate_cohort(load_scenario("default"), 60, seed=11, assignment="rct")
    path = tmp_path / "cohort.csv"
    cohort.to_csv(path, index=False)
    return path


@pytest.fixture
def before_and_after(under, tmp_path):  # noqa: F811
    """``run(command)``: ``command()`` under the installed catalog, then under the same catalog
    with balint_group renamed balint; returns both results."""

    def run(command):
        under(_unchanged)
        before = command("before")
        _edit(tmp_path / "configs" / "interventions.yaml", _rename_balint)
        return before, command("after")

    return run


def test_score_scores_a_renamed_arm_with_the_former_ids_effects_and_says_so(
    before_and_after, cohort_file, tmp_path, capsys
):
    from recommender.cli import main

    def score(label):
        out = tmp_path / f"scored-{label}.csv"
        # Only the renamed arm offered: the champion recommends it where it beats usual care.
        offered = "balint_group" if label == "before" else "balint"
        args = ["score", "--data", str(cohort_file), "--out", str(out), "--contributions"]
        assert main([*args, "--offered", offered]) == 0
        return pd.read_csv(out), capsys.readouterr().out.splitlines()

    (before, _), (after, said) = before_and_after(score)
    assert not any("never learnt" in line for line in said)
    assert any(line.startswith("note:") and NOTE in line for line in said)
    old = [c for c in before.columns if c.endswith("balint_group")]
    assert old and not [c for c in after.columns if c.endswith("balint_group")]
    for column in old:
        new = column.removesuffix("balint_group") + "balint"
        pd.testing.assert_series_equal(after[new], before[column], check_names=False)
    recommended = before["recommended"].replace("balint_group", "balint")
    pd.testing.assert_series_equal(after["recommended"], recommended)
    assert (after["recommended"] == "balint").any()  # the renamed arm is recommended to some
    contributions = [c for c in before.columns if c.startswith("contrib_")]
    pd.testing.assert_frame_equal(after[contributions], before[contributions])


def test_allocate_plans_a_renamed_arm_with_the_former_ids_effects_and_says_so(
    before_and_after, cohort_file, tmp_path, capsys
):
    from recommender.cli import main

    def allocate(label):
        out = tmp_path / f"plan-{label}.csv"
        offered = "balint_group" if label == "before" else "balint"
        args = ["allocate", "--data", str(cohort_file), "--out", str(out), "--budget", "40000"]
        assert main([*args, "--offered", offered]) == 0
        return pd.read_csv(out), capsys.readouterr().out.splitlines()

    (before, _), (after, said) = before_and_after(allocate)
    assert not any("never learnt" in line for line in said)
    assert any("note:" in line and NOTE in line for line in said)
    assert (before["allocated"] == "balint_group").any()
    for column in ("allocated", "recommended"):
        renamed = before[column].replace("balint_group", "balint")
        pd.testing.assert_series_equal(after[column], renamed)
    for column in ("allocated_effect", "allocated_lower", "allocated_upper"):
        pd.testing.assert_series_equal(after[column], before[column])


def test_champions_and_serve_check_say_the_rename_not_never_learnt(under, capsys):  # noqa: F811
    from recommender.cli import main

    under(_rename_balint)
    assert main(["champions"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert not any("never learnt" in line for line in out)
    assert any(line.startswith("warning:") and NOTE in line for line in out)
    # --check says whether the port is free: one free now, not a fixed one another test may hold
    code = main(["serve", "--check", "--host", "127.0.0.1", "--port", str(free_port())])
    said = capsys.readouterr().err.splitlines()
    assert code == 0
    assert not any("never learnt" in line for line in said)
    assert any(line.startswith("warning:") and NOTE in line for line in said)


def test_figures_carried_from_published_evidence_name_the_arm_by_its_id_in_force(under):  # noqa: F811
    from recommender.registry import MODEL_NAME, load_model
    from recommender.registry._fit import misfits

    home = under(_rename_balint)
    assert home.is_dir()
    model = load_model(f"models:/{MODEL_NAME}/1")
    # As a retraining from the log leaves it: balint_group's figures carried from the
    # published trials of the catalog it was trained under, which is not the one in force.
    model.catalog_version = "2025.01-1"
    model.metadata["arm_sources"] = {
        "balint_group": {"source": "carried", "citations": {"physician": "Trial 2020"}}
    }
    (found,) = misfits(model, "2", "1", name=MODEL_NAME)
    assert "figures for balint are carried from catalog 2025.01-1" in found["statement"]
    assert "balint_group" not in found["statement"]
    # The model as learnt is unchanged: only the view names the arm by its id in force.
    from recommender.catalog import load_catalog
    from recommender.model import served_under

    served, _ = served_under(model, load_catalog())
    assert set(served.metadata["arm_sources"]) == {"balint"}
    assert set(model.metadata["arm_sources"]) == {"balint_group"}


def test_a_follower_that_cannot_read_the_edited_catalog_of_its_own_version_names_the_catalogs(
    client,  # noqa: F811
    catalog_file,  # noqa: F811
    caplog,
):
    import bentoml

    from recommender.catalog import catalog_sha256

    service = bentoml.get_current_service()
    served = service.engine.catalog
    _edit(catalog_file, lambda data: _arm(data, "coaching").update(cost_per_person=-5))
    # Another worker's /reload kept version 7 and put this catalog in force; here it is refused.
    service.audit.announce_reload("7", "scientist")
    with caplog.at_level("ERROR"):
        service._follow_once()
    body = client.get("/readyz").json()
    assert body["stale"] and (body["serving_version"], body["champion_version"]) == ("7", "7")
    assert body["reason"] == "catalog_unreadable"
    in_force = f"intervention catalog {served.version} (sha256 {served.sha256})"
    now = f"sha256 {catalog_sha256(catalog_file)}"
    differs = f"version 7 under {in_force}, not under the catalog file as it is now ({now})"
    assert "not with version 7" not in body["warning"] and differs in body["warning"]
    assert differs in service.stale.statement()  # the card's words
    assert "It tries the catalog file again" in body["warning"]
    facts = service.stale.facts()
    assert (facts["serving_catalog"], facts["announced_catalog"]) == (in_force[21:], now)
    (logged,) = [r.getMessage() for r in caplog.records if "/readyz says stale" in r.getMessage()]
    assert "the catalog file, which a /reload of version 7 put in force, could not" in logged
    assert "cost_per_person" in logged and in_force in logged
    # Corrected, the file is read at the next poll, and the worker is current again.
    _edit(catalog_file, lambda data: _arm(data, "coaching").update(cost_per_person=5))
    service._follow_once()
    assert service.stale is None and client.get("/readyz").text == "\n"  # current again


class _FavoursBalintGroup:
    """A learner (EE) for whom balint_group is everyone's best arm: -5 points, the others -1."""

    def __init__(self, arms):
        self.arms_ = list(arms)

    def predict_effect(self, X):
        return pd.DataFrame(
            {arm: -5.0 if arm == "balint_group" else -1.0 for arm in self.arms_}, index=X.index
        )


def test_the_gate_values_the_champion_as_served_under_the_renamed_arm(
    under,  # noqa: F811
    cohort_file,
    monkeypatch,
):
    from types import SimpleNamespace as NS

    import numpy as np

    from pipelines._train_carry import scores_with_estimates
    from pipelines._train_gate import _gate_on_holdout
    from recommender.catalog import load_catalog
    from recommender.model import RecommendationModel, served_under
    from recommender.registry import MODEL_NAME, load_model, policy_value_scores

    under(_rename_balint)
    catalog = load_catalog()
    learnt = load_model(f"models:/{MODEL_NAME}/1")
    # The registry's champion, with effects that make it serve balint_group where it may.
    champion = RecommendationModel(
        outcome_models={"ee": _FavoursBalintGroup(learnt.treatment_arms)},
        features=learnt.features,
        catalog_version=learnt.catalog_version,
        catalog=learnt.catalog,
    )
    monkeypatch.setattr("recommender.registry.load_model", lambda uri: champion)
    holdout = pd.read_csv(cohort_file)
    # The held-out rows measure balint (the id in force) far better than usual care; the
    # champion serves it, so its value is that measure, not its own estimate for an arm id
    # the rows do not have.
    scores = pd.DataFrame({"none": 0.0, "balint": -50.0}, index=holdout.index)
    evaluation = NS(dr_scores=scores, recommended=np.array(["none"] * len(holdout)))
    config = {"gate": {"alpha": 0.1}, "registry": {"model_name": MODEL_NAME}}
    cohort = NS(catalog=catalog, loop=None)
    decision = _gate_on_holdout(evaluation, NS(holdout=holdout), cohort, config)
    assert decision.champion is not None, decision.reason
    served, _ = served_under(champion, catalog)
    effects = served.predict_effect(holdout)[list(served.treatment_arms)]
    picks = served.recommend(effects, eligible=served.eligibility(holdout)).to_numpy()
    assert (picks == "balint").any() and "balint_group" not in set(picks)
    valued = scores_with_estimates(scores, effects, control="none")
    expected = policy_value_scores(valued, picks, control="none").mean()
    assert decision.champion.estimate == pytest.approx(expected)
