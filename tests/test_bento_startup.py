"""A plain `bentoml serve` (what the bento's container runs: no `recommender serve` before it)
refuses the settings every worker would refuse, once, naming the variable, before any worker
starts; and a secrets folder that is named but cannot be read is refused rather than ignored.

Found by red-teaming the deployment (reddeploy): in the built bento, RECOMMENDER_API_KEYS with
an unknown role made every worker fail at start, again and again (a traceback every ~10 s, no
answer at all, crisis ones included), while `bentoml serve` itself kept running; a
RECOMMENDER_SECRETS_DIR whose mount had failed was silently ignored, so the service came up
ready on a new local SQLite store with a new random salt and no keys.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.errors import InputError
from service_fixtures import free_port

ROOT = Path(__file__).resolve().parents[1]


def _environment(tmp_path: Path, **extra: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RECOMMENDER_", "MLFLOW_TRACKING_URI"))
    }
    env.update(
        RECOMMENDER_HOME=str(tmp_path / "home"),
        BENTOML_HOME=str(tmp_path / "bentoml"),
        BENTOML_DO_NOT_TRACK="True",
        RECOMMENDER_AUDIT_SALT="a-salt-of-the-bento-tests",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


REFUSED = [
    (
        {"RECOMMENDER_API_KEYS": "admin=a-key-of-20-chars.."},
        "RECOMMENDER_API_KEYS entry 1: role 'admin' is not accepted; roles: program, "
        "scientist, auditor",
    ),
    ({"RECOMMENDER_API_KEYS": "program="}, "RECOMMENDER_API_KEYS entry 1: expected ROLE=KEY"),
    (
        {"RECOMMENDER_AUDIT_URL": "postgres://svc:pw@db/audit"},
        "the audit store URL postgres://svc:***@db/audit is not accepted",
    ),
    (
        {"RECOMMENDER_SECRETS_DIR": "/no/such/secrets"},
        "RECOMMENDER_SECRETS_DIR = '/no/such/secrets' is not a folder",
    ),
]


@pytest.mark.parametrize("extra, words", REFUSED)
def test_defining_the_service_refuses_what_every_worker_would(tmp_path, extra, words):
    # `bentoml serve` defines the service class in its own process before it starts a worker:
    # a refusal there ends it, named, instead of a worker failing at every start.
    done = subprocess.run(
        [sys.executable, "-c", "import recommender.service.service"],
        env=_environment(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert words in done.stderr.strip().splitlines()[-1]
    assert "pw" not in done.stderr.replace("pw@", "")  # no password shown


@pytest.mark.slow
def test_a_plain_bentoml_serve_with_a_bad_key_entry_stops_naming_it(tmp_path):
    env = _environment(
        tmp_path, RECOMMENDER_API_KEYS="program=a-key-of-20-chars..,admin=another-key-of-20.."
    )
    command = [sys.executable, "-m", "bentoml", "serve", "recommender.service.service:Recommender"]
    # A free port, not a fixed one another program may hold. No second try on a taken port (as
    # service_fixtures.serving makes): the refusal comes before the bind, so a server that got
    # as far as binding its port has failed this test already.
    command += ["--host", "127.0.0.1", "--port", str(free_port())]
    try:
        # Bounded only so that a server that keeps running fails the test rather than hangs it.
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"bentoml serve kept running:\n{(expired.stderr or b'')[-2000:]!r}")
    assert done.returncode != 0
    assert "RECOMMENDER_API_KEYS entry 2: role 'admin' is not accepted" in done.stderr
    assert "Initializing service error" not in done.stderr  # no worker was started


def test_a_named_secrets_folder_that_is_missing_is_refused(tmp_path, monkeypatch):
    from recommender.service import resolve_salt, secret_api_keys
    from recommender.service._config import load_serve_config

    monkeypatch.delenv("RECOMMENDER_API_KEYS", raising=False)
    monkeypatch.delenv("RECOMMENDER_AUDIT_SALT", raising=False)
    monkeypatch.delenv("RECOMMENDER_AUDIT_URL", raising=False)
    missing = tmp_path / "not-mounted"
    monkeypatch.setenv("RECOMMENDER_SECRETS_DIR", str(missing))
    words = f"RECOMMENDER_SECRETS_DIR = '{missing}' is not a folder"
    with pytest.raises(InputError, match=words):
        secret_api_keys()
    with pytest.raises(InputError, match=words):
        resolve_salt(None, tmp_path / "models")
    with pytest.raises(InputError, match=words):
        load_serve_config()
    assert not (tmp_path / "models" / "audit.salt").exists()  # no random salt made instead


def test_a_secret_file_that_cannot_be_read_is_named(tmp_path, monkeypatch):
    from recommender.service import secret_api_keys

    monkeypatch.delenv("RECOMMENDER_API_KEYS", raising=False)
    monkeypatch.setenv("RECOMMENDER_SECRETS_DIR", str(tmp_path))
    (tmp_path / "api_keys").write_bytes(b"program=\xff\xfe-not-text")
    with pytest.raises(InputError) as caught:
        secret_api_keys()
    assert f"{tmp_path / 'api_keys'} cannot be read" in str(caught.value)
    assert "UTF-8" in str(caught.value)
    (tmp_path / "api_keys").unlink()
    (tmp_path / "api_keys").mkdir()  # a mount of a folder where the file was meant
    with pytest.raises(InputError, match="api_keys is not a file"):
        secret_api_keys()


def test_a_registry_server_that_is_down_is_given_up_on_within_three_tries(monkeypatch):
    """MLflow tries a tracking server it cannot reach 8 times, waiting up to 2 minutes between
    tries: the built bento started while its registry was down gave no answer at all, crisis
    ones included, for 4 min 25 s, and `recommender serve` waited as long before starting. The
    service's loads of the champion now give up after three tries (a variable the operator sets
    still wins), so crisis answers come within seconds and /reload brings the model later."""
    import socket
    import threading

    from recommender.errors import ModelUnavailable
    from recommender.service._model_loading import load_champion_model

    for name in ("MAX_RETRIES", "BACKOFF_FACTOR", "TIMEOUT"):
        # Unset for this test, and unset again after it (what the load sets must not stay).
        monkeypatch.setenv(f"MLFLOW_HTTP_REQUEST_{name}", "")
        monkeypatch.delenv(f"MLFLOW_HTTP_REQUEST_{name}")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(1)
    tries, done = [], threading.Event()

    def refuse_every_request():  # a server that accepts and closes, counted
        while not done.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            tries.append(1)
            connection.close()

    threading.Thread(target=refuse_every_request, daemon=True).start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{server.getsockname()[1]}")
    try:
        with pytest.raises(ModelUnavailable, match="could not be read"):
            load_champion_model()
    finally:
        done.set()
        server.close()
    assert 1 <= len(tries) <= 3
