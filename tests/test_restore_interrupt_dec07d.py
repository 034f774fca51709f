"""Ctrl-C while a restore is finishing, that is while its copies are swapped into the models
folder: by ``backup --restore`` itself, or by the next command finishing a restore killed there.
The swaps are done whole, the command then exits 130 saying the folder holds the restored
backup, and the next command finds nothing to finish.

The command runs in a subprocess (the real CLI, this checkout's code). The child pauses just
after a chosen copy is renamed in, says so on stdout and reads a line; the test sends SIGINT,
then the line, so the signal comes at that step, decided, not timed.
"""

from __future__ import annotations

import signal
import subprocess
import sys

from test_restore_killed_dec06c import (
    ROOT,
    _child_env,
    _killed_at,
    _left_by_restores,
    _recommender,
    _restored,
    backed_up,  # noqa: F401 (a fixture)
    home,  # noqa: F401 (a fixture)
)

# The real CLI, pausing after the restored copy of the file named argv[1] is renamed in.
_PAUSING = """
import os, sys

wanted = sys.argv[1]
real_replace = os.replace

def replace(source, target, **options):
    real_replace(source, target, **options)
    if os.path.basename(source).startswith(".restoring-") and os.path.basename(target) == wanted:
        print(f"paused at {target}", flush=True)
        sys.stdin.readline()  # the test's SIGINT comes meanwhile

os.replace = replace

from recommender.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _interrupted_at(wanted, *command):
    """Run ``recommender *command``, send SIGINT once it paused after swapping ``wanted`` in,
    let it go on; returns its exit code and stderr."""
    piped = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    child = subprocess.Popen(
        [sys.executable, "-c", _PAUSING, wanted, *command],
        **piped,
        text=True,
        env=_child_env(),
        cwd=ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal's
    )
    try:
        said = child.stdout.readline()
        assert said.startswith("paused at"), (said, child.communicate(timeout=60))
        child.send_signal(signal.SIGINT)
        _, err = child.communicate("go on\n", timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode, err


def test_ctrl_c_among_the_swaps_of_a_restore_finishes_it_and_says_so(home, backed_up, tmp_path):
    # Found: the restore was held whole, but the command then said "no file was left
    # half-written ...; run it again", as if nothing had been restored.
    code, err = _interrupted_at("audit.db", "backup", "--restore", str(backed_up))
    assert code == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted (SIGINT): recommender backup stopped; "), err
    assert f"the restore had finished: {home} holds the backup {backed_up}" in last
    assert "run it again" not in last
    assert _restored(home) and _left_by_restores(home) == []
    (stamp,) = {p.name.rpartition(".before-restore-")[2] for p in home.glob("*.before-restore-*")}
    assert f"<name>.before-restore-{stamp}" in last

    later = _recommender("backup", "--to", str(tmp_path / "later"))
    assert later.returncode == 0, later.stderr
    assert "recovered" not in later.stderr


def test_ctrl_c_while_a_command_finishes_a_killed_restore_leaves_it_finished(
    home, backed_up, tmp_path
):
    # Found: finishing a killed restore was not held; Ctrl-C stopped it among its renames, the
    # folder part restored (the journal kept for the next command, the service refused).
    _killed_at("swap", "audit.db", "backup", "--restore", str(backed_up))
    code, err = _interrupted_at("mlflow.db", "backup", "--to", str(tmp_path / "stopped"))
    assert code == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted (SIGINT): recommender backup stopped; "), err
    assert "before it stopped it settled a restore killed earlier: the restore of" in last
    assert "the models folder is now wholly the restored backup" in last
    assert _restored(home) and _left_by_restores(home) == []

    for command in (("serve", "--check"), ("backup", "--to", str(tmp_path / "later"))):
        later = _recommender(*command)
        assert "recovered" not in later.stderr and "journal" not in later.stderr, later.stderr
    assert later.returncode == 0, later.stderr
