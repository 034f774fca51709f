"""A full disk loses no data and withholds no crisis resources.

The disk is made full without a mount (CI may not allow one): a subprocess whose file-size
limit (``RLIMIT_FSIZE``, SIGXFSZ ignored) makes every write past it fail, SQLite's own
``max_page_count`` (it then says "database or disk is full", as on a full disk), or
``OSError(ENOSPC)`` raised by the one write call the code uses.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from service_fixtures import (  # noqa: F401  (fixtures)
    PROFILE,
    asgi_client,
    auth,
    linear_model,
    outcome,
    service_home,
)

from recommender.cli import main

_LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv.pop(1)),) * 2)
from recommender.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _run_with_file_limit(arguments: list[str], limit: int, **env) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[1]
    environment = {**os.environ, "PYTHONPATH": str(root), "MPLBACKEND": "Agg", **env}
    return subprocess.run(
        [sys.executable, "-c", _LIMITED, str(limit), *arguments],
        capture_output=True,
        text=True,
        env=environment,
        cwd=root,
        timeout=300,
    )


def _said_plainly(result, target: Path) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert str(target) in result.stderr and "no space left" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "suffix"),
    [
        (["simulate", "--n", "2000", "--seed", "3"], ".csv"),
        (["simulate", "--n", "2000", "--seed", "3"], ".parquet"),
        (["evidence"], ".md"),
    ],
    ids=["simulate-csv", "simulate-parquet", "evidence"],
)
def test_an_output_the_disk_cannot_hold_leaves_the_earlier_file_and_no_half(
    tmp_path, arguments, suffix
):
    target = tmp_path / f"output{suffix}"
    target.write_text("an earlier run's file\n")
    result = _run_with_file_limit([*arguments, "--out", str(target)], limit=2048)
    _said_plainly(result, target)
    assert target.read_text() == "an earlier run's file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
    # Room again: the same command writes it whole.
    assert main([*arguments, "--out", str(target)]) == 0
    assert target.stat().st_size > 2048


def _failing_after_half(real):
    """``real`` (a write of a path), but the disk fills halfway through."""

    def write(self, path, *args, **kwargs):
        real(self, path, *args, **kwargs)
        with open(path, "r+b") as written:
            written.truncate(max(1, os.path.getsize(path) // 2))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return write


def test_score_on_a_full_disk_leaves_no_half_table(trained_copy, tmp_path, monkeypatch, capsys):
    import pandas as pd
    from test_pipeline_train import use_home

    use_home(monkeypatch, trained_copy)
    cohort = tmp_path / "cohort.csv"
    assert main(["simulate", "--n", "60", "--seed", "4", "--out", str(cohort)]) == 0
    folder = tmp_path / "scores"
    folder.mkdir()
    out = folder / "scored.csv"
    out.write_text("earlier scores\n")
    with monkeypatch.context() as full:
        full.setattr(pd.DataFrame, "to_csv", _failing_after_half(pd.DataFrame.to_csv))
        assert main(["score", "--data", str(cohort), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "no space left" in err and "Traceback" not in err
    assert out.read_text() == "earlier scores\n"
    assert [p.name for p in folder.iterdir()] == ["scored.csv"]
    assert main(["score", "--data", str(cohort), "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 60


def test_a_card_the_disk_cannot_hold_leaves_the_earlier_card_whole(
    trained_copy, tmp_path, monkeypatch, capsys
):
    # `recommender card` deleted the earlier card's files, then copied the new one in: a full
    # disk midway left half a card (or none) and a traceback.
    import shutil

    from test_pipeline_train import use_home

    use_home(monkeypatch, trained_copy)
    out = tmp_path / "card"
    assert main(["card", "--out", str(out)]) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert Path("card.html") in before and any(p.parts[0] == "plots" for p in before)
    real_copy = shutil.copyfile
    copied = []

    def copy(source, target, *args, **kwargs):
        if Path(target).parent.is_relative_to(out):
            copied.append(target)
            if len(copied) == 3:  # the disk fills on the third file of the card
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
        return real_copy(source, target, *args, **kwargs)

    with monkeypatch.context() as full:
        full.setattr(shutil, "copyfile", copy)
        assert main(["card", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no space left" in err and str(out) in err and "Traceback" not in err
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_training_on_a_full_disk_says_so_in_one_line(monkeypatch, tmp_path, capsys):
    import sqlite3

    import sqlalchemy as sa
    from mlflow.exceptions import MlflowException

    import pipelines.train as train

    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path))

    def full(*args, **kwargs):
        full_store = sqlite3.OperationalError("database or disk is full")
        try:
            raise sa.exc.OperationalError("UPDATE runs", {}, full_store)
        except sa.exc.OperationalError as error:
            raise MlflowException(str(error)) from error

    monkeypatch.setattr(train, "run_training", full)
    assert main(["train", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert "no space left" in err and str(tmp_path) in err and "champion is unchanged" in err


def test_a_registration_the_full_store_cannot_undo_says_the_version_stays_pending(
    tmp_path, monkeypatch
):
    # Found on a full disk: the card could not be published, the version could not be deleted
    # again either (the store took no writes), and the run said "nothing was registered" while
    # a version stayed in the registry (pending, no alias) until the next train.
    import numpy as np
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient
    from test_model_fakes import fake_model, profiles
    from test_pipeline_train import use_home

    from pipelines.score import safety_rules
    from recommender import registry
    from recommender.cli.cmd_train import _undone

    use_home(monkeypatch, tmp_path)

    def no_card(registration):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "cards"))

    def store_full(self, *args, **kwargs):
        raise MlflowException("(sqlite3.OperationalError) database or disk is full")

    with registry.TrainingRun(run_name="disk full") as run:
        info = run.log_model(fake_model(), profiles(5), safety=safety_rules())
        with monkeypatch.context() as full, pytest.raises(OSError) as raised:
            full.setattr(MlflowClient, "delete_model_version", store_full)
            gate = registry.gate_decision(np.ones(20))
            run.register(info, gate=gate, reason="disk full", on_registered=no_card)
    pending = raised.value.pending_version
    assert pending == "1" and registry.aliases() == {}
    said = _undone(raised.value)
    assert "version 1 could not be deleted again" in said and "champion is unchanged" in said
    # Space again: the next registration on the store deletes it first.
    with registry.TrainingRun(run_name="room again") as run:
        info = run.log_model(fake_model(), profiles(5), safety=safety_rules())
        again = run.register(info, gate=registry.gate_decision(np.ones(20)), reason="room")
    store = registry.client(existing=True)
    versions = store.search_model_versions(f"name='{registry.MODEL_NAME}'")
    assert [v.version for v in versions] == [int(again.version)] and again.version != "1"
    assert registry.aliases()["champion"] == again.version


# -- the service on a full disk ---------------------------------------------------------------


def _full_sqlite(monkeypatch, audit):
    """Make ``audit``'s SQLite file unable to grow (SQLite then says "database or disk is
    full", as on a full disk) and its disk show no room; returns a function that frees it."""
    import sqlalchemy as sa

    from recommender.service import _audit

    engine = audit.engine

    def no_growth(dbapi_connection, _record):
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    sa.event.listen(engine, "connect", no_growth)
    engine.dispose()
    monkeypatch.setattr(_audit, "ROOM", 1 << 62)  # what statvfs shows of a full disk

    def free():
        sa.event.remove(engine, "connect", no_growth)
        engine.dispose()
        monkeypatch.setattr(_audit, "ROOM", 1)

    return free


def test_the_service_on_a_full_disk_refuses_plainly_answers_crisis_and_recovers(
    asgi_client, service_home, monkeypatch
):
    import sqlite3

    import bentoml

    service = bentoml.get_current_service()
    served = asgi_client.post("/recommend", json=PROFILE, headers=auth("program"))
    assert served.status_code == 200
    recorded = service.audit.count()
    free = _full_sqlite(monkeypatch, service.audit)
    # Enough rows that the store must grow to take them: a batch of many people, one of them
    # flagged for crisis risk.
    people = [{**PROFILE, "person_id": f"p-{i:05d}"} for i in range(400)]
    batch = {"profiles": [*people, {"person_id": "p-crisis", "crisis_risk": True}]}
    refused = asgi_client.post("/recommend_batch", json=batch, headers=auth("program"))
    assert refused.status_code == 503
    assert "no space left" in refused.json()["error"]
    (crisis,) = refused.json()["crisis_results"]
    assert crisis["index"] == 400 and crisis["answer"]["safety"]["resources"]
    # Recorded first, on its own: in the audit log while its one small row still fits in
    # the file's free pages, else in the service log, saying why.
    recorded_in = crisis["answer"]["safety"]["recorded_in"]
    assert recorded_in == "audit log" or "no space left" in recorded_in
    alone = asgi_client.post(
        "/recommend", json={"person_id": "p-9", "crisis_risk": True}, headers=auth("program")
    )
    assert alone.status_code == 200 and alone.json()["safety"]["resources"]
    ready = asgi_client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["reason"] == "audit_store_full"
    assert service.audit.count() <= recorded + 2  # of the batch at most the crisis row

    free()  # space is freed: no restart, no /reload
    assert asgi_client.get("/readyz").status_code == 200
    again = asgi_client.post("/recommend_batch", json=batch, headers=auth("program"))
    assert again.status_code == 200 and service.audit.count() > recorded + 400
    database = service_home / "audit.db"
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_outcomes_on_a_full_disk_are_refused_and_nothing_recorded_is_lost(
    asgi_client, service_home, monkeypatch
):
    import sqlite3

    import bentoml

    service = bentoml.get_current_service()
    people = [f"p-{i:04d}" for i in range(300)]
    batch = {"profiles": [{**PROFILE, "person_id": person} for person in people]}
    assert asgi_client.post("/recommend_batch", json=batch, headers=auth("program")).status_code
    first = {"outcomes": [outcome(people[0])]}
    assert asgi_client.post("/outcomes", json=first, headers=auth("program")).status_code == 200
    database = service_home / "audit.db"

    def stored():
        with sqlite3.connect(database) as connection:
            return connection.execute("SELECT count(*) FROM outcomes").fetchone()[0]

    assert stored() == 1
    free = _full_sqlite(monkeypatch, service.audit)
    rest = {"outcomes": [outcome(person) for person in people[1:]]}
    refused = asgi_client.post("/outcomes", json=rest, headers=auth("program"))
    assert refused.status_code == 503 and "no space left" in refused.json()["error"]
    assert stored() == 1
    free()
    accepted = asgi_client.post("/outcomes", json=rest, headers=auth("program"))
    assert accepted.status_code == 200 and stored() == len(people)
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_crisis_rows_get_their_resources_when_the_disk_holds_neither_table_nor_crisis_file(
    trained_copy, tmp_path, monkeypatch, capsys
):
    # The scored table was written outside the block that keeps the crisis rows' resources:
    # on a full disk the flagged people got them nowhere; and the crisis file beside the
    # output cannot be written on that disk either, so they are said on stderr, by row.
    import pandas as pd
    from test_pipeline_train import use_home

    use_home(monkeypatch, trained_copy)
    cohort = tmp_path / "cohort.csv"
    assert main(["simulate", "--n", "40", "--seed", "4", "--out", str(cohort)]) == 0
    frame = pd.read_csv(cohort)
    frame["crisis_risk"] = [i in (3, 7) for i in range(len(frame))]
    frame.to_csv(cohort, index=False)
    for command in ("score", "allocate"):
        out = tmp_path / f"{command}.csv"
        with monkeypatch.context() as full:
            full.setattr(pd.DataFrame, "to_csv", _failing_after_half(pd.DataFrame.to_csv))
            assert main([command, "--data", str(cohort), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "no space left" in err and "Traceback" not in err
        assert "row 3: CRISIS" in err and "row 7: CRISIS" in err and "988" in err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort.csv"]


def test_serve_removes_the_shared_memory_homes_of_runs_that_ended_without_removing_theirs():
    # A `recommender serve` stopped by kill -9 cannot remove its BentoML home in /dev/shm: the
    # next start removes the homes of this user's runs whose process has ended, and no other.
    from recommender.cli.cmd_serve import _remove_ended_runs_homes

    memory = Path("/dev/shm")
    if not memory.is_dir():
        pytest.skip("no /dev/shm on this system: the models folder is used, as before")
    ended = subprocess.Popen(["true"])
    ended.wait()
    gone = memory / f"recommender-bentoml-{ended.pid}-test{os.getpid()}"
    alive = memory / f"recommender-bentoml-{os.getpid()}-test"
    other = memory / f"recommender-bentoml-notapid-test{os.getpid()}"
    try:
        for folder in (gone, alive, other):
            (folder / "prometheus_multiproc_dir").mkdir(parents=True)
        _remove_ended_runs_homes(memory)
        assert not gone.exists()
        assert alive.is_dir() and (alive / "prometheus_multiproc_dir").is_dir()
        assert other.is_dir()
    finally:
        for folder in (gone, alive, other):
            shutil.rmtree(folder, ignore_errors=True)
