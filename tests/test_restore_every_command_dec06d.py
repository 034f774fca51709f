"""Every command that opens the models folder meets a restore killed there (its journal left
``swapping``) before it reads anything: ``serve`` refuses, every other command finishes the
restore first and then sees the folder wholly restored; a command that opens no models folder
leaves it alone. Also: a restore killed between renaming a database's ``-wal`` and the
database itself is finished, or undone, with each log still beside its own database.

The state a killed restore leaves is written here by hand, as the journal names it (see
``recommender._restore_swap``); each command's ``run`` is replaced by a spy that records what
the folder held when the command began, so that only the CLI's own handling is tested.
"""

from __future__ import annotations

import importlib
import json
import os
import sqlite3
import subprocess
import sys

import pytest

from recommender.cli import main

from test_restore_dec06b import _KILLED_WRITER, _mark, _marks

STAMP = "20261206T120000Z"
JOURNAL = ".restore-journal.json"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", "a-salt-for-the-tests-only")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RECOMMENDER_SERVE_CONFIG", raising=False)
    home = tmp_path / "models"
    home.mkdir()
    monkeypatch.setenv("RECOMMENDER_HOME", str(home))
    return home


def _journal(home, steps, *, phase="swapping", process=None):
    journal = {
        "stamp": STAMP,
        "backup": "/backups/then",
        "phase": phase,
        "steps": [
            {
                "target": str(home / name),
                "copy": str((home / name).with_name(f".restoring-{STAMP}-{(home / name).name}")),
                "aside": f"{home / name}.before-restore-{STAMP}",
                "existed": True,
            }
            for name in steps
        ],
    }
    if process is not None:
        journal["process"] = process
    (home / JOURNAL).write_text(json.dumps(journal))


def _half_restored(home, process=None):
    """The audit store swapped in, the MLflow store and a card not yet: killed between them."""
    for database in ("audit.db", "mlflow.db"):
        _mark(home / database, "before")
        _mark(home / f".restoring-{STAMP}-{database}", "restored")
    (home / "cards").mkdir()
    (home / "cards" / "v1.md").write_text("before")
    (home / "cards" / f".restoring-{STAMP}-v1.md").write_text("restored")
    _journal(home, ["audit.db", "mlflow.db", "cards/v1.md"], process=process)
    # the first swap done: audit.db moved aside, its copy renamed in
    os.rename(home / "audit.db", home / f"audit.db.before-restore-{STAMP}")
    os.rename(home / f".restoring-{STAMP}-audit.db", home / "audit.db")


def _seen(home):
    """What a command reading the folder would read: each store's rows, the card, the journal."""
    return {
        "audit.db": _marks(home / "audit.db"),
        "mlflow.db": _marks(home / "mlflow.db"),
        "card": (home / "cards" / "v1.md").read_text(),
        "journal": (home / JOURNAL).exists(),
    }


HALF = {"audit.db": ["restored"], "mlflow.db": ["before"], "card": "before", "journal": True}
WHOLE = {"audit.db": ["restored"], "mlflow.db": ["restored"], "card": "restored", "journal": False}


@pytest.fixture
def spy(monkeypatch, home):
    """Replace a command's ``run``: it records what the folder held when the command began."""
    seen = []

    def install(command, folder=home, look=_seen):
        module = importlib.import_module(f"recommender.cli.cmd_{command.replace('-', '_')}")

        def run(args):
            seen.append(look(folder))
            return 0

        monkeypatch.setattr(module, "run", run)
        return seen

    return install


# Every command that opens the models folder's stores, with arguments it accepts.
FINISHING = [
    ["allocate", "--data", "cohort.csv", "--out", "plan.csv"],
    ["audit", "export"],
    ["audit", "erase", "--person-id", "p-1"],
    ["audit", "erase", "--person-id", "p-1", "--dry-run"],
    ["backup", "--to", "backup"],
    ["backup", "--restore", "backup"],
    ["batch-score", "--data", "cohort.csv", "--out", "scored"],
    ["card", "--out", "card"],
    ["champions"],
    ["evaluate-policy", "--from-log"],
    ["outcomes", "import", "outcomes.csv"],
    ["promote", "2", "--reason", "a test"],
    ["rollback", "--reason", "a test"],
    ["score", "--data", "cohort.csv", "--out", "scored.csv"],
    ["train"],
    ["train", "--from-log"],
]


@pytest.mark.parametrize("argv", FINISHING, ids=" ".join)
def test_a_command_finishes_a_killed_restore_before_it_reads(home, spy, argv, capsys):
    _half_restored(home)
    assert _seen(home) == HALF  # not vacuous: the folder is half restored
    seen = spy(argv[0])

    assert main(argv) == 0
    assert seen == [WHOLE]  # what the command met: the folder wholly restored
    said = capsys.readouterr().err
    assert f"recovered: the restore of /backups/then started {STAMP} was stopped" in said
    assert "after 1 of 3 file(s) were swapped in: finished it from its journal" in said
    assert _seen(home) == WHOLE
    assert not list(home.rglob(".restoring-*")) and not (home / ".restore.lock").exists()
    assert _marks(home / f"mlflow.db.before-restore-{STAMP}") == ["before"]


def test_serve_refuses_a_killed_restore_and_changes_nothing(home, spy, capsys):
    _half_restored(home)
    seen = spy("serve")

    assert main(["serve", "--check"]) == 2
    assert seen == []
    said = capsys.readouterr().err
    assert f"{home / JOURNAL}: a restore into this models folder is running, or was" in said
    assert "recommender backup --restore DIR" in said and "recommender champions" in said
    assert _seen(home) == HALF and (home / f".restoring-{STAMP}-mlflow.db").exists()


# Commands that open no models folder: a journal there is none of theirs.
ELSEWHERE = [
    ["simulate", "--out", "cohort.csv"],
    ["validate", "cohort.csv"],
    ["evidence", "--out", "evidence.md"],
    ["crisis-fallback", "--out", "fallback"],
    ["calibration", "--out", "calibration.md"],
]


@pytest.mark.parametrize("argv", ELSEWHERE, ids=" ".join)
def test_a_command_opening_no_models_folder_leaves_the_journal_alone(home, spy, argv, capsys):
    _half_restored(home)
    seen = spy(argv[0])
    assert main(argv) == 0
    assert seen == [HALF] and _seen(home) == HALF
    assert "recovered" not in capsys.readouterr().err


def test_the_folder_the_service_settings_name_is_settled_too(home, tmp_path, spy, capsys):
    # the audit store's folder (serve.yaml's models_dir), where `backup --restore` keeps its
    # journal, is not the registry's
    served = tmp_path / "served"
    served.mkdir()
    _half_restored(served)
    settings = tmp_path / "serve.yaml"
    shipped = (importlib.import_module("recommender.paths").config_path("serve.yaml")).read_text()
    settings.write_text(shipped.replace("models_dir: null", f"models_dir: {served}"))
    seen = spy("audit", served)

    assert main(["audit", "export", "--config", str(settings)]) == 0
    assert seen == [WHOLE] and not (served / JOURNAL).exists()
    assert "recovered: the restore of /backups/then" in capsys.readouterr().err


def test_a_reader_that_cannot_finish_it_reads_nothing(home, spy, monkeypatch, capsys):
    _half_restored(home)
    seen = spy("score")

    def refused(source, target):
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(os, "replace", refused)
    assert main(["score", "--data", "cohort.csv", "--out", "scored.csv"]) == 2
    monkeypatch.undo()
    assert seen == []
    said = capsys.readouterr().err
    assert "`recommender score` could not finish it (Permission denied" in said
    assert "read nothing there" in said and "as a user that may write" in said
    assert (home / JOURNAL).exists()  # left for the next run: finishing is idempotent


# A process that holds a database open until its stdin closes.
_HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1])
connection.execute("SELECT count(*) FROM marks").fetchone()
print("holding", flush=True)
sys.stdin.read()
"""


def _holding(path):
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline() == "holding\n"
    return child


def test_a_store_held_open_is_not_renamed_under_its_holder(home, spy, capsys):
    _half_restored(home)
    seen = spy("champions")
    holder = _holding(home / "mlflow.db")  # a service started on the folder anyhow
    try:
        assert main(["champions"]) == 2
    finally:
        holder.communicate("", timeout=60)
    assert seen == []
    said = capsys.readouterr().err
    assert f"holds open {home / 'mlflow.db'} (process {holder.pid})" in said
    assert "nothing was finished or undone" in said
    assert _seen(home) == HALF


def test_a_restore_still_running_is_refused_by_every_command(home, spy, capsys):
    from recommender._restore_swap import _started

    running = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=-1)
    try:
        _half_restored(home, process={"pid": running.pid, "started": _started(running.pid)})
        seen = spy("promote")
        assert main(["promote", "2", "--reason", "a test"]) == 2
    finally:
        running.communicate(b"", timeout=60)
    assert seen == []
    assert f"is running (process {running.pid}); nothing was done" in capsys.readouterr().err
    assert _seen(home) == HALF


def _rows(database):
    """The marks and the count of late rows, read as SQLite reads them: with the log it pairs
    with the file by name (a read-write connection: a read-only one needs no log at all)."""
    connection = sqlite3.connect(database)
    try:
        marks = [row[0] for row in connection.execute("SELECT v FROM marks ORDER BY v")]
        late = connection.execute("SELECT count(*) FROM late").fetchone()[0]
        return marks, late
    finally:
        connection.close()


@pytest.mark.parametrize("copy_lost", [False, True], ids=["finished", "undone"])
def test_a_restore_killed_between_a_logs_rename_and_its_databases(home, spy, copy_lost, capsys):
    audit = home / "audit.db"
    _mark(audit, "before")
    subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(audit)], check=True)
    assert os.path.getsize(f"{audit}-wal") > 0  # not vacuous: rows only in the log
    _mark(home / f".restoring-{STAMP}-audit.db", "restored")
    (home / "promotions.jsonl").write_text("before\n")
    if not copy_lost:
        (home / f".restoring-{STAMP}-promotions.jsonl").write_text("restored\n")
    _journal(home, ["audit.db", "promotions.jsonl"])
    # killed inside the first swap: the log renamed after the moved-aside name, the file not
    aside = home / f"audit.db.before-restore-{STAMP}"
    os.rename(f"{audit}-wal", f"{aside}-wal")
    seen = spy("champions", look=lambda folder: (folder / JOURNAL).exists())

    assert main(["champions"]) == 0
    said = capsys.readouterr().err
    assert seen == [False] and not (home / JOURNAL).exists()
    if copy_lost:
        assert "cannot be finished" in said and "undone from its journal" in said
        # the store as it was, paired with its own log again: no committed row lost
        assert not list(home.glob("*.before-restore-*"))
        assert _rows(audit) == (["before"], 100)
    else:
        assert "finished it from its journal" in said
        # the restored file is never paired with the old log; the old one keeps its rows
        assert not os.path.exists(f"{audit}-wal") and not os.path.exists(f"{audit}-shm")
        assert _marks(audit) == ["restored"]
        assert _rows(aside) == (["before"], 100)
        assert (home / "promotions.jsonl").read_text() == "restored\n"
    assert not list(home.glob(".restoring-*"))


def test_service_settings_that_cannot_be_read_leave_the_models_folder_settled(
    home, tmp_path, spy, monkeypatch, capsys
):
    # promote reads no serve.yaml: a broken one names no second folder, and stops nothing
    (tmp_path / "serve.yaml").write_text("port: [unclosed\n")
    monkeypatch.setenv("RECOMMENDER_SERVE_CONFIG", str(tmp_path / "serve.yaml"))
    _half_restored(home)
    seen = spy("promote")

    assert main(["promote", "2", "--reason", "a test"]) == 0
    assert seen == [WHOLE]
    assert "recovered: the restore of /backups/then" in capsys.readouterr().err
