"""`recommender audit export --out` replaces the file whole or leaves it as it was."""

from datetime import datetime, timezone
from pathlib import Path

import pytest

from recommender.cli import main
from recommender.service import AuditLog
from service_fixtures import service_home  # noqa: F401  (fixture)


def test_failed_export_leaves_the_earlier_file_and_no_temporary(
    service_home, tmp_path, monkeypatch
):
    log = AuditLog(f"sqlite:///{service_home / 'audit.db'}", salt="s")
    log.append(
        [
            {
                "request_id": f"r{i}",
                "model_version": "2",
                "caller_role": "program",
                "person_id": f"p{i}",
                "safety_level": "routine",
                "recommended": "coaching",
                "ranking_meaningful": True,
                "effects": {"coaching": [-3.0, -5.0, -1.0]},
                "logged_at": datetime.now(timezone.utc),
            }
            for i in range(3)
        ]
    )
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "audit.csv"
    out.write_text("earlier export\n")
    real_write = Path.write_text

    def half_write(self, text, *args, **kwargs):  # the old code wrote straight to --out
        real_write(self, text[:10], *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", half_write)
    real_fdopen = __import__("os").fdopen

    class HalfStream:
        def __init__(self, stream):
            self.stream = stream

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.stream.close()

        def write(self, text):
            self.stream.write(text[:10])
            raise OSError("disk full")

    monkeypatch.setattr("os.fdopen", lambda *a, **k: HalfStream(real_fdopen(*a, **k)))
    with pytest.raises(OSError, match="disk full"):
        main(["audit", "export", "--out", str(out)])
    assert out.read_text() == "earlier export\n"
    assert [p.name for p in folder.iterdir()] == ["audit.csv"]
    monkeypatch.undo()
    service_home_env(monkeypatch, service_home)
    assert main(["audit", "export", "--out", str(out)]) == 0
    assert out.read_text().count("\n") == 4 and [p.name for p in folder.iterdir()] == ["audit.csv"]


def service_home_env(monkeypatch, home):
    from service_fixtures import ENV_KEYS, SALT

    monkeypatch.setenv("RECOMMENDER_HOME", str(home))
    monkeypatch.setenv("RECOMMENDER_API_KEYS", ENV_KEYS)
    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", SALT)
    monkeypatch.delenv("RECOMMENDER_SERVE_CONFIG", raising=False)


@pytest.mark.parametrize("name", ["audit.db", "promotions.jsonl", "audit.parquet", "audit"])
def test_export_refuses_a_file_it_would_destroy_or_mislabel(
    service_home, monkeypatch, name, capsys
):  # noqa: F811
    # `audit export --out models/audit.db` replaced the live audit store with CSV text (every
    # recommendation, assignment and outcome gone; the service went unready), and
    # `--out x.parquet` wrote CSV into a .parquet file.
    service_home_env(monkeypatch, service_home)
    log = AuditLog(f"sqlite:///{service_home / 'audit.db'}", salt="s")
    log.append(
        [
            {
                "request_id": "r1",
                "model_version": "2",
                "caller_role": "program",
                "person_id": "p1",
                "safety_level": "routine",
                "recommended": "coaching",
                "ranking_meaningful": True,
                "effects": {"coaching": [-3.0, -5.0, -1.0]},
            }
        ]
    )
    log.close()
    target = service_home / name
    if name == "promotions.jsonl":
        target.write_text('{"kind": "promote"}\n')
    before = target.read_bytes() if target.exists() else None
    assert main(["audit", "export", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and "accepted" in err
    assert (target.read_bytes() if target.exists() else None) == before
    assert len(AuditLog(f"sqlite:///{service_home / 'audit.db'}", salt=None).export()) == 1
