"""The salt the service makes for itself (red-team redprivacy).

Without a configured salt the service keeps one in ``<models>/audit.salt``. Found on main:

- an empty salt file (a start killed between creating the file and writing it, a second worker
  reading it meanwhile, a ``touch``) was taken as the salt: routine answers were refused 422 "the
  audit salt is empty" while /readyz said ready, and crisis answers were stored under an HMAC
  with an empty key, which anyone can compute from a guessed staff id;
- a service given no salt made a new random one even for a store that already held records (a
  container whose secret was forgotten, a lost salt file): a store from before the salt
  fingerprint (migration 0004) then adopted that new salt, orphaning every earlier record and
  refusing the salt those records were written with once it was given.
"""

from __future__ import annotations

import hmac

import bentoml
import pytest
import sqlalchemy as sa
from alembic import command

from recommender.cli import cmd_serve
from recommender.errors import InputError
from recommender.service import AuditLog, AuditSaltMissing, load_serve_config, resolve_salt
from recommender.service._audit import salted_hash
from recommender.service._migrate import _config
from service_fixtures import (  # noqa: F401  (fixtures)
    AUDIT_RECORD,
    PROFILE,
    asgi_client,
    auth,
    linear_model,
    service_home,
)

WRITTEN_WITH = "the-salt-the-old-records-were-written-with"


def _keyless(person_id: str) -> str:
    return hmac.digest(b"", person_id.encode(), "sha256").hex()


@pytest.mark.parametrize("where", ["environment", "config", "file"])
def test_a_salt_shorter_than_16_characters_is_refused_naming_where_it_came_from(
    tmp_path, monkeypatch, where
):
    # Person ids are guessable (payroll numbers, ids in sequence): under a short salt anyone
    # could recompute their hashes, so "a-salt" is as good as none.
    monkeypatch.delenv("RECOMMENDER_AUDIT_SALT", raising=False)
    configured = None
    if where == "environment":
        monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", "a-salt")
    elif where == "config":
        configured = "a-salt"
    else:
        (tmp_path / "audit.salt").write_text("a-salt\n")
    with pytest.raises(InputError) as refused:
        resolve_salt(configured, tmp_path)
    message = str(refused.value)
    said = {"environment": "RECOMMENDER_AUDIT_SALT", "config": "serve.yaml", "file": "audit.salt"}
    assert said[where] in message and "6 characters" in message and "at least 16" in message
    if where == "config":  # sixteen is enough
        assert resolve_salt("a-salt-of-16-chr", tmp_path) == "a-salt-of-16-chr"


def test_an_empty_salt_file_is_refused_naming_it(tmp_path, monkeypatch):
    monkeypatch.delenv("RECOMMENDER_AUDIT_SALT", raising=False)
    (tmp_path / "audit.salt").write_text("\n")
    with pytest.raises(InputError) as refused:
        resolve_salt(None, tmp_path)
    message = str(refused.value)
    assert str(tmp_path / "audit.salt") in message and "empty" in message
    assert "RECOMMENDER_AUDIT_SALT" in message


def test_a_salt_file_that_is_not_utf8_is_refused_naming_it(tmp_path, monkeypatch):
    # Read in the locale's encoding, it gave a traceback under UTF-8 and, under Latin-1,
    # another salt than the same bytes given as RECOMMENDER_AUDIT_SALT.
    monkeypatch.delenv("RECOMMENDER_AUDIT_SALT", raising=False)
    (tmp_path / "audit.salt").write_bytes("sel-de-la-mer-\u00e9t\u00e9-2026\n".encode("latin-1"))
    with pytest.raises(AuditSaltMissing) as refused:
        resolve_salt(None, tmp_path)
    message = str(refused.value)
    assert str(tmp_path / "audit.salt") in message and "line 1 is not UTF-8" in message
    assert "accepted: UTF-8 text" in message
    (tmp_path / "audit.salt").write_text("sel-de-la-mer-\u00e9t\u00e9-2026\n", encoding="utf-8")
    assert resolve_salt(None, tmp_path) == "sel-de-la-mer-\u00e9t\u00e9-2026"


def test_no_salt_is_ever_empty():
    with pytest.raises(ValueError):
        salted_hash("", "p-1")
    with pytest.raises(InputError, match="empty"):
        AuditLog("sqlite://", salt="")


def test_a_salt_file_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    monkeypatch.delenv("RECOMMENDER_AUDIT_SALT", raising=False)
    import secrets

    def disk_full(_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(secrets, "token_hex", disk_full)
    with pytest.raises(OSError):
        resolve_salt(None, tmp_path)
    assert list(tmp_path.iterdir()) == []  # no empty salt file left for the next start
    monkeypatch.undo()
    monkeypatch.delenv("RECOMMENDER_AUDIT_SALT", raising=False)
    made = resolve_salt(None, tmp_path)
    assert len(made) == 64 and (tmp_path / "audit.salt").read_text() == made


@pytest.fixture
def empty_salt_file(service_home, monkeypatch):
    """No salt given, and an empty salt file where the service keeps its own."""
    monkeypatch.delenv("RECOMMENDER_AUDIT_SALT")
    (service_home / "audit.salt").write_text("")
    return service_home / "audit.salt"


def test_the_service_with_an_empty_salt_file_stores_no_keyless_hash(
    empty_salt_file, asgi_client, service_home
):
    client = asgi_client
    assert client.get("/readyz").status_code != 200
    crisis = client.post(
        "/recommend", json={"person_id": "x-1", "crisis_risk": True}, headers=auth("program")
    )
    assert crisis.status_code == 200 and crisis.json()["safety"]["resources"]
    routine = client.post("/recommend", json=PROFILE, headers=auth("program"))
    assert routine.status_code == 503, routine.text  # the service's fault, not the caller's
    assert "audit.salt" in routine.json()["error"] and "empty" in routine.json()["error"]
    assert "please retry" not in routine.json()["error"]
    # Given a salt, the next try of the watcher opens the store, without a restart.
    empty_salt_file.write_text("a-salt-written-at-last")
    bentoml.get_current_service()._follow_once()
    assert client.post("/recommend", json=PROFILE, headers=auth("program")).status_code == 200
    stored = sa.create_engine(f"sqlite:///{service_home / 'audit.db'}")
    with stored.connect() as connection:
        hashes = {h for (h,) in connection.execute(sa.text("SELECT person_hash FROM assignments"))}
        hashes |= {
            h for (h,) in connection.execute(sa.text("SELECT person_hash FROM recommendations"))
        }
    stored.dispose()
    assert hashes and _keyless("x-1") not in hashes and _keyless(PROFILE["person_id"]) not in hashes


@pytest.fixture
def store_from_before_the_fingerprint(service_home):
    """The service's default store with a record of a service that had a salt, at revision
    0003 (before stores kept their salt's fingerprint), and no salt file beside it."""
    url = f"sqlite:///{service_home / 'audit.db'}"
    old = AuditLog(url, salt=WRITTEN_WITH)
    old.append([AUDIT_RECORD])
    old.close()
    engine = sa.create_engine(url)
    with engine.begin() as connection:  # Alembic's own way back, through every later revision
        command.downgrade(_config(connection), "0003")
    engine.dispose()
    return url


@pytest.fixture
def store_without_its_salt(store_from_before_the_fingerprint, monkeypatch):
    monkeypatch.delenv("RECOMMENDER_AUDIT_SALT")  # the secret a deployment forgot
    return store_from_before_the_fingerprint


def test_recommender_serve_makes_no_salt_for_a_store_that_holds_records(
    store_without_its_salt, service_home, capsys
):
    cmd_serve._check_audit_store(load_serve_config())
    said = capsys.readouterr().err
    assert said.startswith("warning: ") and "holds records" in said, said
    assert "crisis answers only" in said
    assert not (service_home / "audit.salt").exists()


def test_the_service_makes_no_salt_for_a_store_that_holds_records(
    store_without_its_salt, asgi_client, service_home, monkeypatch
):
    client = asgi_client
    crisis = client.post(
        "/recommend", json={"person_id": "x-1", "crisis_risk": True}, headers=auth("program")
    )
    assert crisis.status_code == 200 and crisis.json()["safety"]["resources"]
    routine = client.post("/recommend", json=PROFILE, headers=auth("program"))
    assert routine.status_code == 503, routine.text
    assert "holds records" in routine.json()["error"]
    assert "RECOMMENDER_AUDIT_SALT" in routine.json()["error"]
    assert not (service_home / "audit.salt").exists()
    # Given the salt the records were written with, the store opens and adopts it.
    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", WRITTEN_WITH)
    bentoml.get_current_service()._follow_once()
    assert client.post("/recommend", json=PROFILE, headers=auth("program")).status_code == 200
    AuditLog(store_without_its_salt, salt=WRITTEN_WITH).close()


def test_a_new_store_still_gets_a_salt_made(service_home, monkeypatch):
    monkeypatch.delenv("RECOMMENDER_AUDIT_SALT")
    url = f"sqlite:///{service_home / 'audit.db'}"
    AuditLog(url, salt=None).close()  # migrated, empty
    made = resolve_salt(None, service_home, store=url)
    assert len(made) == 64 and resolve_salt(None, service_home, store=url) == made
    assert resolve_salt(None, service_home / "other", store=f"sqlite:///{service_home}/x.db")


def test_a_new_sqlite_audit_store_is_readable_by_its_owner_only(tmp_path):
    # Its rows are pseudonymous, but a profile (age, role, specialty, setting, years) beside a
    # crisis safety level can point at one colleague: not for every user of the machine.
    import os
    import stat

    before = os.umask(0o022)
    try:
        log = AuditLog(f"sqlite:///{tmp_path / 'store' / 'audit.db'}", salt="s")
        log.append([AUDIT_RECORD])
        modes = {
            path.name: stat.S_IMODE(path.stat().st_mode)
            for path in (tmp_path / "store").glob("audit.db*")
            if not path.name.endswith(".lock")  # empty: a lock for migrations
        }
        log.close()
    finally:
        os.umask(before)
    assert {"audit.db", "audit.db-wal"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes
