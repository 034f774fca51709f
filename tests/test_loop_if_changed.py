"""`recommender train --from-log --if-changed`, as a program's nightly retraining runs it: a log
with no new outcome since a version was trained on it is not trained again, whatever that
version's gate said; a new outcome is trained on, an answer without one is no change."""

import dataclasses
import shutil
from datetime import datetime, timezone

import pytest
import yaml
from test_loop_outcome_times import _served_at
from test_loop_pipeline import _outcomes, _serve, _serve_yaml

import pipelines.train as train
from bench._program import staff_cohort
from recommender.catalog import load_catalog
from recommender.cli import main
from recommender.registry import client, load_champion
from recommender.service import AuditLog, RecommendationEngine, load_serve_config, record_outcomes
from service_fixtures import SALT, SMALL_TRAINING, recommender_home
from service_fixtures import champion_home, copy_champion  # noqa: F401 - fixtures

NAME = "burnout-recommender"

# What ``logged`` made, once per test process: the cache, not the scope, keeps it to one (a
# module-scoped fixture cannot take the per-test ``copy_champion``).
_MADE: dict = {}


@pytest.fixture
def logged(copy_champion, tmp_path_factory):  # noqa: F811
    """``(folder, held_back)``: ``folder/home`` holds version 1 (simulated), which served 2,500
    staff, every outcome but ``held_back`` recorded, and version 2 trained from that log;
    ``folder`` holds the training config and the service settings (the store: the home's).

    Version 1 is the session's champion, copied: ``train_version`` with the same settings,
    not trained again. Every run here uses the training key it was trained under (the home's
    ``training.key``, which each copy takes along), so its records of whom it was trained on
    are read as before."""
    if "logged" not in _MADE:
        _MADE["logged"] = _logged(copy_champion, tmp_path_factory)
    return _MADE["logged"]


def _logged(copy_champion, tmp_path_factory):
    folder = tmp_path_factory.mktemp("if-changed")
    home = copy_champion(folder / "home")  # version 1, as train_version(home) leaves it
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECOMMENDER_AUDIT_SALT", SALT)
        serve_yaml = _serve_yaml(folder, home)
        raw = yaml.safe_load(serve_yaml.read_text())
        raw["models_dir"] = None  # the home this process points at: a copy's own store
        serve_yaml.write_text(yaml.safe_dump(raw))
        (folder / "train.yaml").write_text(yaml.safe_dump(SMALL_TRAINING))
        with recommender_home(home):
            model, version = load_champion()
            audit = AuditLog(f"sqlite:///{home / 'audit.db'}", salt=SALT)
            engine = RecommendationEngine(
                model,
                version,
                catalog=load_catalog(),
                config=load_serve_config(serve_yaml),
                audit=audit,
            )
            staff = staff_cohort("default", 2500, seed=11)
            answers = _serve(engine, staff)
            served = [
                outcome
                for outcome, answer in zip(_outcomes(staff, answers), answers)
                if answer["assignment"]
            ]
            record_outcomes(audit, served[:-1], arms=load_catalog().arm_ids, source="test")
            assert main([*_train(folder), "--quiet"]) == 0
    return folder, served[-1]


def _train(folder) -> list:
    """The scheduled command, without --if-changed."""
    return [
        "train",
        "--from-log",
        "--config",
        str(folder / "train.yaml"),
        "--serve-config",
        str(folder / "serve.yaml"),
    ]


@pytest.fixture
def copy(logged, tmp_path, monkeypatch):
    """A copy of the fixture's home to change, this process pointed at it; its audit log."""
    folder, _ = logged
    home = tmp_path / "home"
    shutil.copytree(folder / "home", home)
    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", SALT)
    with recommender_home(home):
        audit = AuditLog(f"sqlite:///{home / 'audit.db'}", salt=SALT)
        yield audit
        audit.close()


def _versions() -> list[str]:
    found = client(existing=True).search_model_versions(f"name = '{NAME}'")
    return sorted((str(v.version) for v in found), key=int)


def _scheduled(folder, capsys) -> str:
    """The nightly run's one line (exit 0)."""
    capsys.readouterr()
    assert main([*_train(folder), "--if-changed", "--quiet"]) == 0
    return capsys.readouterr().out.strip()


def test_an_unchanged_log_is_not_trained_and_nothing_is_registered(logged, copy, capsys):
    folder, _ = logged
    said = _scheduled(folder, capsys)
    assert said.startswith("not trained: "), said
    assert " version 2 (run " in said and "on this log (outcomes recorded up to " in said
    assert "\n" not in said
    assert _versions() == ["1", "2"]


def test_an_answer_without_an_outcome_is_no_change(logged, copy, capsys):
    folder, _ = logged
    _served_at(copy, datetime.now(timezone.utc), person_id="p-new")  # no outcome yet
    copy.append(
        [
            {
                "request_id": "r-crisis",
                "model_version": "2",
                "caller_role": "program",
                "person_id": "p-crisis",
                "safety_level": "crisis",
                "recommended": None,
                "ranking_meaningful": None,
                "effects": {},
            }
        ]
    )
    said = _scheduled(folder, capsys)
    assert said.startswith("not trained: ") and " version 2 (run " in said, said
    assert _versions() == ["1", "2"]


def test_a_new_linked_outcome_is_trained(logged, copy, capsys):
    folder, held_back = logged
    record_outcomes(copy, [held_back], arms=load_catalog().arm_ids, source="test")
    said = _scheduled(folder, capsys)
    assert said.startswith("registered burnout-recommender version 3 "), said
    assert _versions() == ["1", "2", "3"]


def test_a_version_whose_gate_failed_on_the_same_log_is_not_trained_again(
    logged, copy, capsys, monkeypatch
):
    folder, held_back = logged
    record_outcomes(copy, [held_back], arms=load_catalog().arm_ids, source="test")
    gate = train.gate_stage

    def failing(*args, **kwargs):
        return dataclasses.replace(
            gate(*args, **kwargs), passed=False, reason="worse than the champion (a test's gate)."
        )

    monkeypatch.setattr(train, "gate_stage", failing)
    champion = load_champion()[1]
    assert main([*_train(folder), "--quiet"]) == 0
    assert _versions()[-1] == "3" and load_champion()[1] == champion
    # the next night, no outcome recorded since
    said = _scheduled(folder, capsys)
    assert said.startswith("not trained: version 3 (run "), said
    assert "its gate did not pass against the champion of now (worse than the champion" in said
    assert _versions() == ["1", "2", "3"]
