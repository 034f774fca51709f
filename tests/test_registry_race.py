"""Registrations, promotions and rollbacks of several processes on one SQLite store.

Each test starts real processes on a store under tmp_path. Nothing waits on the clock: a
process stops at a named point of its registration (a patched function) and either kills
itself there with SIGKILL or says so and waits for a line on its stdin, which the test writes once
the other process has shown where it is (the line it logs while it waits for the store's lock,
or its exit).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_model_fakes import fake_model, profiles
from test_registry_mlflow import home  # noqa: F401 - a fixture used below

from pipelines.score import safety_rules
from recommender import registry
from recommender.errors import InputError

TESTS = Path(__file__).resolve().parent


def register(champion_version=None, on_registered=None):
    """Register a fake model whose gate compared with ``champion_version`` and passed."""
    values = np.ones(20)
    gate = registry.gate_decision(
        values,
        None if champion_version is None else values,
        champion_version=champion_version,
    )
    with registry.TrainingRun(run_name="fake") as run:
        info = run.log_model(fake_model(), profiles(5), safety=safety_rules())
        return run.register(info, gate=gate, reason="test", on_registered=on_registered)


# Another process: registers a version gated against version 1, where `patch` and
# `on_registered` stop it.
REGISTER = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from test_registry_race import register
{patch}
register(champion_version="1", on_registered={on_registered})
"""


def start(home: Path, code: str, **streams) -> subprocess.Popen:
    env = {**os.environ, "RECOMMENDER_HOME": str(home), "RECOMMENDER_ACTOR": "other"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS.parent), str(TESTS), env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=home, text=True, **streams)


def register_in_process(home, *, patch="", on_registered="None", **streams):
    code = REGISTER.format(
        tests=str(TESTS), patch=textwrap.dedent(patch), on_registered=on_registered
    )
    return start(home, code, **streams)


# Where a training run can be killed while it registers its version.
KILL_POINTS = {
    # while the card is being published (on_registered)
    "card": ("", "lambda registration: os.kill(os.getpid(), signal.SIGKILL)"),
    # once the aliases moved, at the first promotion record
    "record": (
        """
        from mlflow.tracking import MlflowClient
        tag = MlflowClient.set_model_version_tag
        def killing(self, name, version, key, value):
            if key.startswith("promotion."):
                os.kill(os.getpid(), signal.SIGKILL)
            return tag(self, name, version, key, value)
        MlflowClient.set_model_version_tag = killing
        """,
        "None",
    ),
}


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_a_run_killed_while_registering_leaves_nothing_to_serve_or_promote(home, point):
    first = register()
    assert registry.aliases() == {"champion": "1", "challenger": "1"}
    patch, on_registered = KILL_POINTS[point]
    killed = register_in_process(home, patch=patch, on_registered=on_registered)
    assert killed.wait() == -signal.SIGKILL

    # What the service would load is still the version that was champion.
    assert registry.resolve_model("champion").version == "1"
    # The half-registered version cannot be promoted: the next alias change undoes it.
    with pytest.raises(InputError, match="half registered.*removed"):
        registry.promote("2", reason="try the new one")
    client = registry.client()
    versions = client.search_model_versions("name='burnout-recommender'")
    assert [str(v.version) for v in versions] == ["1"]
    assert registry.aliases() == {"champion": "1", "challenger": "1"}
    assert not (home / "cards" / "2").exists()
    runs = {r.info.run_id: r.info.status for r in client.search_runs([_experiment()])}
    assert runs.pop(first.run_id) == "FINISHED"
    assert list(runs.values()) == ["KILLED"]  # the killed run no longer shows as running
    # The promotion log records only what happened, and the store goes on working.
    assert [(e.alias, e.version) for e in registry.read_promotion_log()] == [
        ("challenger", "1"),
        ("champion", "1"),
    ]
    again = register(champion_version="1")
    assert again.aliases == ["challenger", "champion"]
    assert registry.rollback(reason="back").version == "1"


def _experiment() -> str:
    return registry.client().get_experiment_by_name("burnout-recommender").experiment_id


def test_a_rollback_waits_for_a_registration_under_way_and_then_undoes_it(home):
    register()
    wait = """
    def waiting(registration):
        print("inside", flush=True)
        sys.stdin.readline()
    """
    streams = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    registering = register_in_process(home, patch=wait, on_registered="waiting", **streams)
    for line in registering.stdout:  # until it is inside its registration (publishing its card)
        if line == "inside\n":
            break
    assert registering.poll() is None
    code = "from recommender.cli import main; raise SystemExit(main(['rollback', '--reason', 'r']))"
    rolling = start(home, code, stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    said = ""
    for line in rolling.stderr:  # until it waits for the store's lock, or ends
        said += line
        if "waiting for another training run" in line:
            break
    registering.communicate("go\n")
    assert registering.returncode == 0
    out, err = rolling.communicate()
    assert rolling.returncode == 0, said + err
    # The rollback saw the registration whole: it undid version 2's promotion.
    events = [e for e in registry.read_promotion_log() if e.alias == "champion"]
    assert [(e.kind, e.previous_version, e.version) for e in events] == [
        ("gate", None, "1"),
        ("gate", "1", "2"),
        ("rollback", "2", "1"),
    ]
    assert registry.aliases()["champion"] == "1"


def test_a_gate_judged_against_a_champion_replaced_meanwhile_does_not_promote(home):
    register()
    register(champion_version="1")
    registry.rollback(reason="version 2 misbehaves")
    # A run gated while version 2 was champion registers now that version 1 is again.
    values = np.ones(20)
    stale = registry.gate_decision(values, values, champion_version="2")
    with registry.TrainingRun(run_name="stale") as run:
        info = run.log_model(fake_model(), profiles(5), safety=safety_rules())
        registration = run.register(info, gate=stale, reason="test")
    assert registration.aliases == ["challenger"]
    assert not registration.gate.passed
    assert "compared with version 2" in registration.gate.reason
    assert "now version 1" in registration.gate.reason
    assert registry.aliases()["champion"] == "1"
    tags = registry.client().get_model_version("burnout-recommender", "3").tags
    assert tags["gate.passed"] == "false"
    with pytest.raises(InputError, match="--force"):
        registry.promote("3", reason="unreviewed")


def test_a_store_another_program_holds_locked_is_said_to_be_so_not_to_lack_a_champion(home):
    # Found: a /reload while a program held the SQLite store locked (a write, an open
    # transaction in a SQL shell) answered 409 "no registered model version matches
    # 'models:/burnout-recommender@champion'", as if the champion were gone; it is a 503 now.
    import sqlite3

    from recommender.errors import ModelUnavailable

    register()
    holder = sqlite3.connect(home / "mlflow.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ModelUnavailable, match=r"could not be read.*database is locked"):
            registry.resolve_model("champion")  # after MLflow's own wait (20 s)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert registry.resolve_model("champion").version == "1"
    with pytest.raises(InputError, match="no registered model version matches"):
        registry.resolve_model("challenger-2")


def test_a_run_killed_before_it_registered_is_ended_killed_by_the_next_run(home):
    # Found: a run killed with SIGKILL (during its fit or its logging) showed RUNNING in MLflow
    # for ever, though the README says a run stopped by a kill ends KILLED.
    code = """
import os, signal
from recommender import registry
with registry.TrainingRun(run_name="killed while fitting") as run:
    run.log_params({"seed": 7})
    os.kill(os.getpid(), signal.SIGKILL)
"""
    assert start(home, code).wait() == -signal.SIGKILL
    client = registry.client()
    [killed] = client.search_runs([_experiment()])
    assert killed.info.status == "RUNNING"
    register()  # the next training run on the store
    assert client.get_run(killed.info.run_id).info.status == "KILLED"
    statuses = sorted(r.info.status for r in client.search_runs([_experiment()]))
    assert statuses == ["FINISHED", "KILLED"]
