"""`recommender train --from-log --if-changed`, as a program's nightly retraining runs it: a log
with no new outcome since a version was trained on it is not trained again, whatever that
version's gate said; a new outcome is trained on, an answer without one is no change."""

import contextlib
import dataclasses
import io
import shutil
from datetime import datetime, timezone

import pytest
import yaml
from test_loop_outcome_times import _served_at
from test_loop_pipeline import _outcomes, _serve, _serve_yaml
from test_pipeline_train import sketch_plots

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
    ``training.key``, which each copy takes along, or the session's $RECOMMENDER_TRAINING_KEY
    when it has one), so its records of whom it was trained on are read as before."""
    if "logged" not in _MADE:
        _MADE["logged"] = _logged(copy_champion, tmp_path_factory)
    return _MADE["logged"]


def _logged(copy_champion, tmp_path_factory):
    folder = tmp_path_factory.mktemp("if-changed")
    home = copy_champion(folder / "home")  # version 1, as train_version(home) leaves it
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECOMMENDER_AUDIT_SALT", SALT)
        sketch_plots(patch)  # nothing here is of the plots' pixels
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


def _copied(home, tmp_path, monkeypatch):
    """A copy of ``home`` to change, this process pointed at it; its audit log."""
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", SALT)
    with recommender_home(copy):
        audit = AuditLog(f"sqlite:///{copy / 'audit.db'}", salt=SALT)
        yield audit
        audit.close()


@pytest.fixture
def copy(logged, tmp_path, monkeypatch):
    """A copy of ``logged``'s home to change, this process pointed at it; its audit log."""
    folder, _ = logged
    yield from _copied(folder / "home", tmp_path, monkeypatch)


def _failing(gate):
    """``gate`` (the gate stage) with its verdict made a failure (a test's gate)."""

    def failing(*args, **kwargs):
        return dataclasses.replace(
            gate(*args, **kwargs), passed=False, reason="worse than the champion (a test's gate)."
        )

    return failing


@pytest.fixture
def retrained(logged, tmp_path_factory):
    """``(home, said, champion)``: a copy of ``logged``'s home where ``held_back`` was then
    recorded and the scheduled run (``--if-changed``) trained version 3 on that log, its gate
    made to fail; the run's one line, and the champion before it.

    Made once per test process: a new outcome is trained on, and the version trained on it
    (whose gate failed) is what a later night finds; training it for each would train the
    same settings on the same log twice."""
    if "retrained" not in _MADE:
        _MADE["retrained"] = _retrained(logged, tmp_path_factory)
    return _MADE["retrained"]


def _retrained(logged, tmp_path_factory):
    folder, held_back = logged
    home = tmp_path_factory.mktemp("if-changed-retrained") / "home"
    shutil.copytree(folder / "home", home)
    said = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, recommender_home(home):
        patch.setenv("RECOMMENDER_AUDIT_SALT", SALT)
        patch.setattr(train, "gate_stage", _failing(train.gate_stage))
        sketch_plots(patch)
        audit = AuditLog(f"sqlite:///{home / 'audit.db'}", salt=SALT)
        try:
            record_outcomes(audit, [held_back], arms=load_catalog().arm_ids, source="test")
        finally:
            audit.close()
        champion = load_champion()[1]
        with contextlib.redirect_stdout(said):
            assert main([*_train(folder), "--if-changed", "--quiet"]) == 0
    return home, said.getvalue().strip(), champion


@pytest.fixture
def copy_retrained(retrained, tmp_path, monkeypatch):
    """A copy of ``retrained``'s home to change, this process pointed at it; its audit log."""
    home, _, _ = retrained
    yield from _copied(home, tmp_path, monkeypatch)


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


def test_a_new_linked_outcome_is_trained(retrained, copy_retrained):
    _, said, _ = retrained
    assert said.startswith("registered burnout-recommender version 3 "), said
    assert _versions() == ["1", "2", "3"]


def test_a_version_whose_gate_failed_on_the_same_log_is_not_trained_again(
    logged, retrained, copy_retrained, capsys
):
    folder, _ = logged
    _, _, champion = retrained  # version 3's gate failed: it stayed challenger
    assert _versions()[-1] == "3" and load_champion()[1] == champion
    # the next night, no outcome recorded since
    said = _scheduled(folder, capsys)
    assert said.startswith("not trained: version 3 (run "), said
    assert "its gate did not pass against the champion of now (worse than the champion" in said
    assert _versions() == ["1", "2", "3"]
