"""``recommender backup --restore`` killed with SIGKILL at chosen points: the next ``recommender
backup`` leaves the models folder wholly as before the restore or wholly restored, and removes
the copies a restore left; ``serve`` refuses to start over a restore stopped midway; a backup
killed midway is refused by ``--restore``.

The command runs in a subprocess (the real CLI, this checkout's code). The child stops itself
at the chosen point, says so on stdout and waits; the test checks the folder shows that point
(a ``.restoring-*`` copy, a store swapped and the other not) and then kills it with SIGKILL, so
where it dies is decided, not timed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.cli import main
from recommender.service import AuditLog

from service_fixtures import AUDIT_RECORD, SALT
from test_restore_dec06b import _mark, _marks

ROOT = Path(__file__).resolve().parents[1]

# The real CLI with one function wrapped: at the nth call meeting the point, it does the call,
# prints "stopped at <path>" and waits on stdin for the SIGKILL the test sends.
_CHILD = """
import os, shutil, sys

point, wanted = sys.argv[1], sys.argv[2]
calls = []

def stop_here(what):
    print(f"stopped at {what}", flush=True)
    sys.stdin.read()
    os._exit(99)  # the test closed stdin without killing: say so by an odd exit

if point == "copy":  # after the nth file copied
    real_copy2 = shutil.copy2
    def copy2(source, target, **options):
        done = real_copy2(source, target, **options)
        calls.append(target)
        if len(calls) == int(wanted):
            stop_here(target)
        return done
    shutil.copy2 = copy2
elif point == "swap":  # after the restored copy of the file named `wanted` is renamed in
    real_replace = os.replace
    def replace(source, target, **options):
        real_replace(source, target, **options)
        if os.path.basename(source).startswith(".restoring-") and (
            os.path.basename(target) == wanted
        ):
            stop_here(target)
    os.replace = replace

from recommender.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _state(home):
    """Every file under ``home`` with its bytes, but for the SQLite side files a read-only
    look at a store may create, empty, and the copies moved aside; the stores' rows are
    compared by :func:`_marks`."""
    return {
        str(p.relative_to(home)): p.read_bytes()
        for p in sorted(home.rglob("*"))
        if p.is_file()
        and not p.name.endswith(("-wal", "-shm"))
        and ".before-restore-" not in p.name
        and not p.name.endswith(".db")
    }


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", SALT)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path / "models"
    home.mkdir()
    monkeypatch.setenv("RECOMMENDER_HOME", str(home))
    return home


@pytest.fixture
def backed_up(home, tmp_path, capsys):
    """A home with an audit store and an MLflow store (``mlflow.db``, where the tracking URI
    points by default) backed up, then each file changed; returns the backup folder."""
    store = AuditLog(f"sqlite:///{home / 'audit.db'}", salt=SALT)
    store.append([{**AUDIT_RECORD, "request_id": "r-1", "person_id": "p-1"}])
    store.close()
    _mark(home / "audit.db", "at backup")
    _mark(home / "mlflow.db", "at backup")  # a stand-in: restore copies the file as it is
    (home / "cards").mkdir()
    (home / "cards" / "v1.md").write_text("at backup")
    (home / "promotions.jsonl").write_text("at backup\n")
    assert main(["backup", "--to", str(tmp_path / "backup")]) == 0
    for database in ("audit.db", "mlflow.db"):
        _mark(home / database, "after backup")
    (home / "cards" / "v1.md").write_text("after backup")
    (home / "promotions.jsonl").write_text("after backup\n")
    capsys.readouterr()
    return tmp_path / "backup"


def _restored(home):
    assert _marks(home / "audit.db") == ["at backup"]
    assert _marks(home / "mlflow.db") == ["at backup"]
    assert (home / "cards" / "v1.md").read_text() == "at backup"
    assert (home / "promotions.jsonl").read_text() == "at backup\n"
    return True


def _as_before(home):
    assert _marks(home / "audit.db") == ["after backup", "at backup"]
    assert _marks(home / "mlflow.db") == ["after backup", "at backup"]
    assert (home / "cards" / "v1.md").read_text() == "after backup"
    assert (home / "promotions.jsonl").read_text() == "after backup\n"
    return True


def _left_by_restores(home):
    return sorted(
        str(p.relative_to(home))
        for p in home.rglob("*")
        if p.name.startswith((".restoring-", ".restore-journal"))
    )


def _child_env():
    env = dict(os.environ, PYTHONPATH=str(ROOT), BENTOML_DO_NOT_TRACK="True")
    return env


def _killed_at(point, wanted, *command, check=None):
    """Run ``recommender *command`` until it stops at ``point``, call ``check()`` on what it
    left there, then kill it with SIGKILL."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, point, str(wanted), *command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(),
        cwd=ROOT,
    )
    try:
        said = child.stdout.readline()
        assert said.startswith("stopped at"), (said, child.communicate(timeout=60))
        if check is not None:
            check()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    return said.split("stopped at ", 1)[1].strip()


def _recommender(*command):
    return subprocess.run(
        [sys.executable, "-m", "recommender", *command],
        capture_output=True,
        text=True,
        env=_child_env(),
        cwd=ROOT,
        timeout=300,
    )


def test_a_restore_killed_while_copying_left_copies_the_next_restore_removes(
    home, backed_up, tmp_path
):
    before = _state(home)

    def copies_and_nothing_replaced():
        assert any(p.name.startswith(".restoring-") for p in home.rglob("*"))
        assert _as_before(home)

    copied = _killed_at(
        "copy", 2, "backup", "--restore", str(backed_up), check=copies_and_nothing_replaced
    )
    assert Path(copied).name.startswith(".restoring-") and Path(copied).exists()
    assert ".restore-journal.json" in _left_by_restores(home)  # not vacuous: something left

    # `backup --to` runs first what any `recommender backup` does: the copies go, nothing else
    done = _recommender("backup", "--to", str(tmp_path / "later"))
    assert done.returncode == 0, done.stderr
    assert "recovered: the restore of" in done.stderr
    assert "while copying, before it replaced anything: removed its 2" in done.stderr
    assert _left_by_restores(home) == []
    assert _as_before(home) and _state(home) == before
    assert not list(home.rglob("*.before-restore-*"))
    # the backup taken then holds none of the restore's files
    names = [
        f["path"] for f in json.loads((tmp_path / "later" / "manifest.json").read_text())["files"]
    ]
    assert not [n for n in names if ".restoring-" in n or "journal" in n]

    done = _recommender("backup", "--restore", str(backed_up))
    assert done.returncode == 0, done.stderr
    assert "recovered" not in done.stderr
    assert _restored(home) and _left_by_restores(home) == []


def test_a_restore_killed_between_the_audit_and_the_mlflow_store_is_finished_next(home, backed_up):
    def audit_restored_mlflow_not():  # the window the journal closes
        assert _marks(home / "audit.db") == ["at backup"]
        assert _marks(home / "mlflow.db") == ["after backup", "at backup"]

    _killed_at(
        "swap", "audit.db", "backup", "--restore", str(backed_up), check=audit_restored_mlflow_not
    )
    # the service does not start over it
    refused = _recommender("serve", "--check")
    assert refused.returncode == 2
    assert f"{home / '.restore-journal.json'}: a restore into this models folder" in refused.stderr
    assert "stopped midway (killed)" in refused.stderr
    assert "recommender backup --restore DIR" in refused.stderr

    done = _recommender("backup", "--restore", str(backed_up))
    assert done.returncode == 0, done.stderr
    said = done.stderr
    assert f"the restore of {backed_up} started" in said
    assert "after 1 of 4 file(s) were swapped in: finished it from its journal" in said
    assert str(home / "mlflow.db") in said  # named: the store it put in place
    assert "wholly the restored backup" in said
    assert _restored(home) and _left_by_restores(home) == []
    # the killed restore's moved-aside files hold what was there before it
    stamp = said.split(f"the restore of {backed_up} started ")[1].split()[0]
    for database in ("audit.db", "mlflow.db"):
        assert _marks(home / f"{database}.before-restore-{stamp}") == ["after backup", "at backup"]
    assert (home / "cards" / f"v1.md.before-restore-{stamp}").read_text() == "after backup"


def test_a_killed_restore_whose_copy_is_gone_is_undone_next(home, backed_up, tmp_path):
    before = _state(home)
    _killed_at("swap", "audit.db", "backup", "--restore", str(backed_up))
    (lost,) = home.glob(".restoring-*-mlflow.db")
    lost.unlink()  # the copy still to be swapped in: the restore cannot be finished

    done = _recommender("backup", "--to", str(tmp_path / "later"))
    assert done.returncode == 0, done.stderr
    assert f"cannot be finished: {lost} is gone; undone from its journal" in done.stderr
    assert f"put back {home / 'audit.db'}" in done.stderr
    assert "as it was before the restore" in done.stderr
    assert _as_before(home) and _state(home) == before
    assert _left_by_restores(home) == [] and not list(home.rglob("*.before-restore-*"))


def test_a_restore_still_running_is_left_alone(home, backed_up, tmp_path):
    def the_next_backup_refuses_and_touches_nothing():
        left = _left_by_restores(home)
        done = _recommender("backup", "--to", str(tmp_path / "meanwhile"))
        assert done.returncode == 2
        assert "a restore of" in done.stderr and "is running (process" in done.stderr
        assert _left_by_restores(home) == left and len(left) == 2  # its copy, its journal

    _killed_at(
        "copy",
        1,
        "backup",
        "--restore",
        str(backed_up),
        check=the_next_backup_refuses_and_touches_nothing,
    )


def test_copies_left_without_a_journal_are_removed_and_named(home, backed_up, capsys):
    # as a restore before the journal, killed while copying, left them
    left = [
        home / ".restoring-20261206T100000Z-audit.db",
        home / "cards" / ".restoring-20261206T100000Z-v1.md",
    ]
    for path in left:
        path.write_text("half")
    assert main(["backup", "--restore", str(backed_up)]) == 0
    said = capsys.readouterr().err
    assert "recovered: removed 2 copy(ies) that a stopped restore left and never swapped in" in said
    assert all(str(path) in said for path in left)
    assert _restored(home) and _left_by_restores(home) == []


def test_a_backup_killed_midway_is_refused_by_restore(home, backed_up, tmp_path):
    half = tmp_path / "half"
    before = _state(home)
    _killed_at("copy", 1, "backup", "--to", str(half))
    assert any(p.is_file() for p in half.rglob("*"))  # not vacuous: files were written

    refused = _recommender("backup", "--restore", str(half))
    assert refused.returncode == 2
    assert "no manifest.json, which `recommender backup --to` writes last" in refused.stderr
    assert "nothing was restored" in refused.stderr
    assert _as_before(home) and _state(home) == before
    assert not list(home.rglob("*.before-restore-*")) and _left_by_restores(home) == []


def test_restore_puts_back_only_the_files_the_manifest_names(home, backed_up, capsys):
    (backed_up / "models" / "planted.txt").write_text("not in the manifest")
    assert main(["backup", "--restore", str(backed_up)]) == 0
    assert not (home / "planted.txt").exists()
    assert _restored(home)
