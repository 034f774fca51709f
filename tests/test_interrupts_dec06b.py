"""Ctrl-C (SIGINT) and ``kill`` (SIGTERM) in the middle of a command that writes: one line
saying what stopped and what it left, exit 130 or 143, nothing half-done, and the next run works.

Already covered elsewhere (not repeated): a training run interrupted ends KILLED
(test_registry_mlflow.py), a kill during training undoes like Ctrl-C (test_cli_bad_input.py),
a kill -9 between an alias move and its record (test_registry_lifecycle.py), tables and plans
written whole (test_cli_bad_input.py, test_pipeline_allocate.py), batch-score and its JVM
(test_batch_bad_input.py), serve forwarding Ctrl-C (test_service_cli.py).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.cli import main
from test_pipeline_train import use_home

ROOT = Path(__file__).resolve().parents[1]


def _stopped_by(signum):
    def run(args):
        os.kill(os.getpid(), signum)  # as the terminal's Ctrl-C or a scheduler's kill
        raise AssertionError("the signal did not stop the command")

    return run


@pytest.mark.parametrize(
    "argv, left",
    [
        (["promote", "2", "--reason", "r"], "made and recorded whole or not at all"),
        (["rollback", "--reason", "r"], "made and recorded whole or not at all"),
        (["outcomes", "import", "f.csv"], "import the file again"),
        (["audit", "erase", "--person-id", "p"], "an erasure is written in parts, each whole"),
        (["audit", "export", "--out", "a.csv"], "written whole or not at all"),
        (["score", "--data", "c.csv", "--out", "s.csv"], "no file was left half-written"),
        (["allocate", "--data", "c.csv", "--out", "p.csv"], "no file was left half-written"),
        (["card", "--out", "card"], "no file was left half-written"),
        (["simulate", "--n", "10", "--out", "c.csv"], "no file was left half-written"),
    ],
)
@pytest.mark.parametrize(
    "signum, said, code",
    [(signal.SIGINT, "interrupted (SIGINT)", 130), (signal.SIGTERM, "terminated (SIGTERM)", 143)],
)
def test_a_stopped_command_says_in_one_line_what_it_left(
    monkeypatch, capsys, argv, left, signum, said, code
):
    # It said a bare "interrupted" (train: a line of its own before it), whatever was stopped.
    import recommender.cli as cli

    module = dict(cli._command_modules())[argv[0]]
    monkeypatch.setattr(module, "run", _stopped_by(signum))
    assert main(argv) == code
    err = capsys.readouterr().err
    command = " ".join(argv[:2] if argv[0] in ("outcomes", "audit") else argv[:1])
    assert err.count("\n") == 1, err
    assert err.startswith(f"{said}: recommender {command} stopped; "), err
    assert left in err


def _integrity(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]


def test_promote_interrupted_as_the_alias_moves_makes_and_records_the_change(
    trained_copy, monkeypatch
):
    # Found: Ctrl-C just after the alias moved left the champion changed with no record in the
    # promotion log (only the intent tag, completed by the next promote, rollback or champions,
    # marked late); the command said only "interrupted".
    from mlflow.tracking import MlflowClient

    from recommender.registry import client, promote, read_promotion_log
    from recommender.registry._intent import INTENT_TAG

    use_home(monkeypatch, trained_copy)
    moved = MlflowClient.set_registered_model_alias

    def moved_then_interrupted(self, *args, **kwargs):
        moved(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", moved_then_interrupted)
    before = len(read_promotion_log())
    with pytest.raises(KeyboardInterrupt):
        promote("1", reason="interrupted endorsement", actor="tester")
    events = read_promotion_log()
    assert len(events) == before + 1
    assert events[-1].reason == "interrupted endorsement"
    assert not events[-1].to_dict().get("recorded_late")
    registered = client().get_registered_model("burnout-recommender")
    assert INTENT_TAG not in (registered.tags or {})
    assert str(registered.aliases["champion"]) == "1"
    assert _integrity(trained_copy / "mlflow.db") == "ok"


def test_erasure_stopped_after_its_commit_still_empties_the_write_ahead_log(tmp_path, monkeypatch):
    # Found: Ctrl-C between the erasure's commit and its checkpoint left the erased rows
    # readable in audit.db-wal, and running the command again found no one to erase, so it
    # did not checkpoint either.
    from recommender.service import AuditLog, erase_people, erasure_history
    from recommender.service import _erasure
    from service_fixtures import SALT
    from test_erasure_dec06 import _fill

    database = tmp_path / "audit.db"
    audit = AuditLog(f"sqlite:///{database}", salt=SALT)
    try:
        _fill(audit)
        checkpoint = _erasure._reclaim

        def interrupted_then_checkpoint(engine):
            os.kill(os.getpid(), signal.SIGINT)  # after the commit, before the checkpoint
            checkpoint(engine)

        monkeypatch.setattr(_erasure, "_reclaim", interrupted_then_checkpoint)
        with pytest.raises(KeyboardInterrupt):
            erase_people(audit, ["p-0"])
        wal = Path(f"{database}-wal")
        assert not wal.exists() or wal.stat().st_size == 0
        assert len(erasure_history(audit)) == 1  # done, once
        monkeypatch.setattr(_erasure, "_reclaim", checkpoint)
        again = erase_people(audit, ["p-0"])
        assert again.found == 0 and len(erasure_history(audit)) == 1
    finally:
        audit.close()
    assert _integrity(database) == "ok"


def test_train_stopped_mid_run_registers_nothing_and_says_one_line(trained_copy, tmp_path):
    """A real `recommender train` subprocess, SIGINT once its run has fitted its learners."""
    config = tmp_path / "fast.yaml"
    config.write_text(
        "\n".join(
            [
                f"catalog: {ROOT / 'configs' / 'interventions.yaml'}",
                "data: {scenario: "
                f"{ROOT / 'configs' / 'scenarios' / 'default.yaml'}, n: 2000, seed: 7}}",
                "learner: {learner: t, n_folds: 2}",
                "evaluation: {n_folds: 2}",
            ]
        )
    )
    env = {
        **os.environ,
        "RECOMMENDER_HOME": str(trained_copy),
        "RECOMMENDER_TRAINING_KEY": "test-suite-key",
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "200",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "recommender", "train", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal's
    )
    said = []
    for line in process.stdout:
        said.append(line)
        if "fit:" in line:  # said as the fit ends: the run is evaluating now
            process.send_signal(signal.SIGINT)
            break
    said += process.stdout.readlines()
    assert process.wait(timeout=120) == 130, "".join(said)
    text = "".join(said)
    assert "Traceback" not in text
    last = said[-1].strip()
    assert last.startswith("interrupted (SIGINT): recommender train stopped; "), text
    assert "nothing was registered and the champion is unchanged" in last
    assert not any(line.startswith("error: training stopped") for line in said)

    from recommender.registry import client

    with pytest.MonkeyPatch.context() as patch:
        use_home(patch, trained_copy)
        store = client()
        versions = store.search_model_versions("name='burnout-recommender'")
        assert [str(v.version) for v in versions] == ["1"]
        assert str(store.get_registered_model("burnout-recommender").aliases["champion"]) == "1"
        runs = store.search_runs(
            [e.experiment_id for e in store.search_experiments()], order_by=["start_time DESC"]
        )
        assert runs[0].info.status == "KILLED"
    assert _integrity(trained_copy / "mlflow.db") == "ok"
    assert not (trained_copy / "mlflow.db.lock").exists() or _lock_free(trained_copy)


def test_train_stopped_before_its_run_started_does_not_say_a_run_was_marked(
    tmp_path, monkeypatch, capsys
):
    # Found: Ctrl-C while the cohort was read or split (before the MLflow run is started) said
    # "the MLflow run is marked KILLED", of a run that never existed.
    import pipelines.train

    from recommender.registry import client

    use_home(monkeypatch, tmp_path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipelines.train, "load_stage", interrupted)
    assert main(["train", "--quiet"]) == 130
    err = capsys.readouterr().err
    assert err == (
        "interrupted (SIGINT): recommender train stopped; no MLflow run was started, nothing "
        "was registered and the champion is unchanged\n"
    )
    store = client()
    assert store.search_runs([e.experiment_id for e in store.search_experiments()]) == []


def _lock_free(home: Path) -> bool:
    import fcntl

    with open(home / "mlflow.db.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
    return True


def test_files_written_together_are_renamed_together_while_other_threads_run(tmp_path, monkeypatch):
    # The renames now hold Ctrl-C by swapping its handler rather than by blocking the signal in
    # the main thread (which let it through during a promote, with MLflow's threads alive):
    # with another thread alive, the two files still change together.
    import threading

    from recommender._files import write_together

    plan, fairness = tmp_path / "plan.csv", tmp_path / "plan.fairness.csv"
    plan.write_text("earlier plan\n")
    fairness.write_text("earlier fairness\n")
    done = threading.Event()
    other = threading.Thread(target=done.wait)
    other.start()
    renamed = os.replace

    def renamed_then_interrupted(source, target):
        renamed(source, target)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(os, "replace", renamed_then_interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            write_together(
                {
                    plan: lambda path: path.write_text("new plan\n"),
                    fairness: lambda path: path.write_text("new fairness\n"),
                }
            )
    finally:
        done.set()
        other.join()
    assert (plan.read_text(), fairness.read_text()) == ("new plan\n", "new fairness\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.csv", "plan.fairness.csv"]


def test_a_migration_stopped_midway_leaves_the_old_schema_and_runs_again(tmp_path):
    """The audit store's migration at `serve` start, Ctrl-C as revision 0008 creates its table:
    the store stays at its old revision with its rows, and the next start migrates it."""
    import sqlalchemy as sa
    from alembic import command

    from recommender.service._migrate import _config, head_revision, schema_revision, upgrade_schema

    database = tmp_path / "audit.db"
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        command.upgrade(_config(connection), "0004")
        connection.execute(
            sa.text(
                "INSERT INTO recommendations (logged_at, request_id, model_version, caller_role, "
                "person_hash, safety_level, recommended, ranking_meaningful, effects) VALUES "
                "('2026-11-20 10:00:00.000000', 'old-1', '1', 'program', 'abc', 'routine', "
                "'mindfulness', TRUE, '{}')"
            )
        )

    def interrupted_at_erasures(connection, cursor, statement, *args):
        if "CREATE TABLE erasures" in statement:
            os.kill(os.getpid(), signal.SIGINT)

    sa.event.listen(engine, "before_cursor_execute", interrupted_at_erasures)
    with pytest.raises(KeyboardInterrupt):
        upgrade_schema(engine)
    sa.event.remove(engine, "before_cursor_execute", interrupted_at_erasures)
    assert schema_revision(engine) == "0004"
    tables = set(sa.inspect(engine).get_table_names())
    assert "recommendations" in tables and "erasures" not in tables
    columns = {c["name"] for c in sa.inspect(engine).get_columns("recommendations")}
    assert "dp_effect" not in columns  # 0005 undone with it: one transaction
    assert _integrity(database) == "ok"

    assert upgrade_schema(engine) == head_revision() == schema_revision(engine)
    with engine.connect() as connection:
        ids = connection.execute(sa.text("SELECT request_id FROM recommendations")).scalars()
        assert list(ids) == ["old-1"]
    engine.dispose()


def test_an_outcomes_import_stopped_midway_stores_nothing_and_imports_whole_again(tmp_path):
    from datetime import datetime, timedelta, timezone

    import sqlalchemy as sa

    from recommender.catalog import load_catalog
    from recommender.service import (
        AuditLog,
        RecommendationEngine,
        load_serve_config,
        outcome_history,
        record_outcomes,
    )
    from service_fixtures import SALT, LinearModel, outcome, profile

    database = tmp_path / "audit.db"
    audit = AuditLog(f"sqlite:///{database}", salt=SALT)
    arms = load_catalog().arm_ids
    engine = RecommendationEngine(
        LinearModel(), "5", catalog=load_catalog(), config=load_serve_config(), audit=audit
    )
    served = [engine.check_row(profile(person_id=f"p-{i}")) for i in range(3)]
    engine.recommend(served, caller_role="program")
    now = datetime.now(timezone.utc) + timedelta(seconds=5)
    measured = (now - timedelta(seconds=4)).isoformat()
    rows = [outcome(f"p-{i}", measured_at=measured, ee_followup=20 + i) for i in range(3)]

    def interrupted_at_insert(connection, cursor, statement, *args):
        if statement.startswith("INSERT INTO outcomes"):
            os.kill(os.getpid(), signal.SIGINT)

    try:
        sa.event.listen(audit.engine, "before_cursor_execute", interrupted_at_insert)
        with pytest.raises(KeyboardInterrupt):
            record_outcomes(audit, rows, arms=arms, source="import f.csv", now=now)
        sa.event.remove(audit.engine, "before_cursor_execute", interrupted_at_insert)
        assert outcome_history(audit) == []
        report = record_outcomes(audit, rows, arms=arms, source="import f.csv", now=now)
        assert (report.recorded, report.already_recorded) == (3, 0)
        assert len(outcome_history(audit)) == 3
    finally:
        audit.close()
    assert _integrity(database) == "ok"


def _until(condition, what: str):
    """``condition()`` once it is true (polled every 50 ms); the test fails, naming ``what``,
    if it is not within a minute."""
    import time

    deadline = time.monotonic() + 60
    while not (found := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.05)
    return found


def _tcp_inodes(port: int, *, remote: int | None = None) -> set[int]:
    """The inodes of this host's IPv4 TCP sockets on local ``port``: the listening ones, or
    the one connected to ``remote`` (the server's side of a connection: inode 0 until it is
    accepted) (Linux: /proc/net/tcp)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, peer, state, inode = fields[1], fields[2], fields[3], int(fields[9])
        if int(local.rsplit(":", 1)[1], 16) != port:
            continue
        if (state == "0A") if remote is None else int(peer.rsplit(":", 1)[1], 16) == remote:
            inodes.add(inode)
    return inodes


def _socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process ``pid`` holds open (none once it has ended)."""
    inodes = set()
    folder = Path(f"/proc/{pid}/fd")
    try:
        links = [os.readlink(fd) for fd in folder.iterdir()]
    except OSError:  # ended, or a descriptor closed while read
        return inodes
    for link in links:
        if link.startswith("socket:["):
            inodes.add(int(link[len("socket:[") : -1]))
    return inodes


def _holder(inodes: set[int]) -> int | None:
    """The process holding one of the sockets ``inodes`` open, once one does (a connection
    not yet accepted is the kernel's, with inode 0)."""
    inodes = inodes - {0}
    if not inodes:
        return None
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    return next((pid for pid in pids if inodes & _socket_inodes(pid)), None)


@pytest.mark.slow
@pytest.mark.server
def test_sigterm_to_serve_while_a_crisis_request_arrives_still_answers_it(
    trained_copy, tmp_path, monkeypatch
):
    """A real `recommender serve`: a crisis request whose body is still arriving when the
    service is told to stop (a container stopped, a rolling restart) gets its resources, and
    the answer is in the audit store; then the service ends cleanly."""
    import json
    import socket

    from recommender.service import AuditLog
    from service_fixtures import auth, profile, running_server_process

    if not os.environ.get("RECOMMENDER_TEST_PORTS"):
        monkeypatch.setenv("RECOMMENDER_TEST_PORTS", "3140-3149")
    store = f"sqlite:///{tmp_path / 'audit.db'}"
    body = json.dumps(profile(person_id="crisis-in-flight", crisis_risk=True)).encode()
    head = (
        "POST /recommend HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: {auth('program')['Authorization']}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    log = tmp_path / "serve.log"
    with running_server_process(
        trained_copy, env={"RECOMMENDER_AUDIT_URL": store}, log_path=log
    ) as (url, process):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
            connection.sendall(head + body[:20])
            # Polled, not slept on: a worker has accepted the connection (uvicorn reads the
            # headers as it does; a connection without a request is closed at the stop, and
            # the test fails), ...
            mine = connection.getsockname()[1]
            worker = _until(
                lambda: _holder(_tcp_inodes(port, remote=mine)), "a worker accepted the request"
            )
            listening = _tcp_inodes(port) & _socket_inodes(worker)
            assert listening, "the worker holding the request does not listen on the port"
            os.kill(process.pid, signal.SIGTERM)
            # ... and the stop is under way in that worker: uvicorn's shutdown closes its
            # listening socket first, then waits for the connections in flight.
            _until(
                lambda: not listening & _socket_inodes(worker),
                "the worker holding the request stopped listening",
            )
            connection.sendall(body[20:])
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 200 OK", answer[:500]
    said = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert said["safety"]["level"] == "crisis" and said["safety"]["resources"]
    audit = AuditLog(store, salt=None)
    recorded = {row["request_id"]: row["safety_level"] for row in audit.export()}
    audit.close()
    assert recorded == {said["request_id"]: "crisis"}


@pytest.mark.parametrize("command", ["score", "allocate"])
def test_a_table_stopped_midway_still_gives_the_flagged_people_their_resources(
    tmp_path, monkeypatch, capsys, command
):
    # Found: Ctrl-C or a kill while score or allocate loaded the model or worked withheld the
    # crisis resources of the people flagged in the file: nothing was written for them.
    import pandas as pd

    import recommender.registry

    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    data, out = tmp_path / "cohort.csv", tmp_path / "out.csv"
    frame = {"person_id": ["p1", "p2"], "role": ["nurse", "physician"], "crisis_risk": [1, 0]}
    pd.DataFrame(frame).to_csv(data, index=False)

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C while the model is looked up

    monkeypatch.setattr(recommender.registry, "resolve_model", stopped)
    assert main([command, "--data", str(data), "--out", str(out)]) == 130
    err = capsys.readouterr().err
    crisis = tmp_path / "out.crisis.csv"
    assert err.count("\n") == 1 and err.startswith(f"interrupted (SIGINT): recommender {command}")
    assert f"flagged for crisis risk need the crisis resources now: they are in {crisis}" in err
    rows = pd.read_csv(crisis)
    assert rows["person_id"].tolist() == ["p1"] and rows["referral"].str.contains("988").all()
    assert not out.exists()


def test_a_writer_killed_outright_leaves_no_partial_file_after_the_next_run(tmp_path):
    # Found: `kill -9` (or the out-of-memory killer) while simulate, score, allocate, card or
    # audit export wrote its output left the partial table as .tmp-<random>-<name> beside it,
    # for good, one more with every such kill.
    out = tmp_path / "cohort.csv"
    out.write_text("earlier\n")
    code = (
        "import os, signal\n"
        "from recommender._files import write_atomically\n"
        "def write(temporary):\n"
        "    temporary.write_text('person_id,ag')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        f"write_atomically({str(out)!r}, write)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60
    )
    assert done.returncode == -signal.SIGKILL
    assert len(list(tmp_path.glob(".tmp-*-cohort.csv"))) == 1  # what a kill -9 leaves
    alive = tmp_path / f".tmp-{os.getpid()}-0123abcd-cohort.csv"  # a live writer's: kept
    alive.write_text("person_id\n")
    from recommender._files import write_atomically

    write_atomically(out, lambda temporary: temporary.write_text("person_id\np1\n"))
    assert out.read_text() == "person_id\np1\n"
    assert {p.name for p in tmp_path.iterdir()} == {"cohort.csv", alive.name}
