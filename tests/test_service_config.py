"""serve.yaml: the shipped file loads; mistakes name the key, the value and what is accepted."""

import pytest
import yaml

from recommender.errors import InputError
from recommender.paths import config_path
from recommender.service import load_serve_config


def test_shipped_config():
    config = load_serve_config()
    assert (config.host, config.port) == ("127.0.0.1", 3000)
    assert config.alpha == pytest.approx(0.1) and config.coverage == pytest.approx(0.9)
    assert config.max_batch_rows == 10_000
    assert config.api_keys == ()  # no keys in the repository, not even hashed
    assert "not a diagnosis" in config.disclaimer and "QD85" in config.disclaimer


@pytest.mark.parametrize(
    "change, words",
    [
        ({"port": 0}, "port = 0 is not accepted; give an integer from 1 to 65535"),
        ({"alpha": "ten"}, "alpha = 'ten'"),
        ({"colour": "red"}, "colour = 'red' is not a known key; accepted: host, port"),
        (
            {"auth": {"keys": [{"role": "admin", "sha256": "0" * 64}]}},
            "auth.keys[0].role = 'admin' is not accepted; give one of 'program', 'scientist', 'auditor'",
        ),
        ({"workers": "2"}, "workers = '2' is not accepted; give an integer from 1 to 64"),
        ({"threads": 2.5}, "threads = 2.5 is not accepted; give an integer from 1 to 64"),
        (
            {"auth": {"keys": [{"role": "program", "sha256": "my-clear-key"}]}},
            "never the key itself",
        ),
        ({"ranking": {"max_overlap": 2}}, "ranking.max_overlap = 2"),
        ({"disclaimer": ""}, "disclaimer"),
    ],
)
def test_mistakes_are_named(tmp_path, change, words):
    raw = yaml.safe_load(config_path("serve.yaml").read_text())
    raw.update(change)
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError) as caught:
        load_serve_config(path)
    assert words in str(caught.value)
    assert "my-clear-key" not in str(caught.value)


def test_config_file_from_the_environment(tmp_path, monkeypatch):
    raw = yaml.safe_load(config_path("serve.yaml").read_text())
    raw["port"] = 4321
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("RECOMMENDER_SERVE_CONFIG", str(path))
    assert load_serve_config().port == 4321


def _write(tmp_path, change):
    raw = yaml.safe_load(config_path("serve.yaml").read_text())
    raw.update(change)
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_misspelt_audit_url_is_refused_not_ignored(tmp_path):
    # Before, `ulr` was dropped and the audit trail went silently to a local SQLite file.
    path = _write(tmp_path, {"audit": {"ulr": "postgresql+psycopg://svc:hunter2@db/audit"}})
    with pytest.raises(InputError) as caught:
        load_serve_config(path)
    message = str(caught.value)
    assert "audit.ulr = 'postgresql+psycopg://svc:***@db/audit' is not a known key" in message
    assert "accepted: url, salt, durability (did you mean 'url'?)" in message
    assert "hunter2" not in message  # a password in a misplaced URL is not repeated
    assert caught.value.problems[0]["field"] == "audit.ulr"


def test_misspelt_auth_keys_are_refused(tmp_path):
    path = _write(tmp_path, {"auth": {"kyes": [{"role": "program", "sha256": "a" * 64}]}})
    with pytest.raises(InputError) as caught:
        load_serve_config(path)
    assert "auth.kyes = " in str(caught.value)
    assert "accepted: keys (did you mean 'keys'?)" in str(caught.value)


def test_every_problem_is_named_at_once(tmp_path):
    path = _write(tmp_path, {"port": -1, "explanation": {"top": 0, "tpo": 3}})
    with pytest.raises(InputError) as caught:
        load_serve_config(path)
    fields = [p["field"] for p in caught.value.problems]
    assert fields == ["port", "explanation.top", "explanation.tpo"]


def test_audit_url_and_salt_from_the_environment_or_a_secrets_folder(tmp_path, monkeypatch):
    from recommender.service import resolve_salt

    path = _write(tmp_path, {"audit": {"url": "sqlite:///from-the-file.db", "salt": None}})
    # relative: beside the file (tests/test_config_relative_paths.py)
    assert load_serve_config(path).audit_url == f"sqlite:///{path.parent / 'from-the-file.db'}"
    monkeypatch.setenv("RECOMMENDER_AUDIT_URL", "postgresql+psycopg://svc@db/audit")
    assert load_serve_config(path).audit_url == "postgresql+psycopg://svc@db/audit"
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "audit_salt").write_text("salt-from-a-mounted-file\n")
    monkeypatch.delenv("RECOMMENDER_AUDIT_SALT", raising=False)
    monkeypatch.setenv("RECOMMENDER_SECRETS_DIR", str(secrets))
    assert resolve_salt(None, tmp_path / "models") == "salt-from-a-mounted-file"
    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", "salt-from-the-environment")
    assert resolve_salt(None, tmp_path / "models") == "salt-from-the-environment"
    assert not (tmp_path / "models" / "audit.salt").exists()  # no random salt was made


@pytest.mark.parametrize("workers, threads", [(2, 4), (None, None)])
def test_a_plain_bentoml_serve_reads_workers_and_threads_from_serve_yaml(
    tmp_path, workers, threads
):
    # BentoML takes them from the service class; `recommender serve` and `bentoml serve` both
    # define it from the file named by RECOMMENDER_SERVE_CONFIG (else configs/serve.yaml).
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_SERVE_")}
    if workers is not None:
        env["RECOMMENDER_SERVE_CONFIG"] = str(
            _write(tmp_path, {"workers": workers, "threads": threads})
        )
    code = (
        "import json; from recommender.service.service import Recommender as R; "
        "print(json.dumps([R.config['workers'], R.config['threads']]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    shipped = load_serve_config(config_path("serve.yaml"))
    expected = [workers or shipped.workers, threads or shipped.threads]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected


# -- found by red-teaming the operator's paths (redpg) ------------------------------------------
@pytest.mark.parametrize(
    "setting, value",
    [
        ("epsilon", "abc"),
        ("epsilon", "0.1"),  # a number as text: strict, as every other setting
        ("epsilon", None),
        ("epsilon", [0.1]),
        ("usual_care_share", "x"),
        ("max_cost", None),
    ],
)
def test_an_exploration_setting_that_is_not_a_number_is_named(tmp_path, setting, value):
    exploration = yaml.safe_load(config_path("serve.yaml").read_text())["exploration"]
    with pytest.raises(InputError) as caught:
        load_serve_config(_write(tmp_path, {"exploration": {**exploration, setting: value}}))
    assert f"exploration.{setting}: {value!r} is not accepted; give a number from 0" in str(
        caught.value
    )


def test_a_config_path_that_is_a_folder_is_named(tmp_path):
    with pytest.raises(InputError, match=f"service config {tmp_path} is a folder"):
        load_serve_config(tmp_path)


@pytest.mark.parametrize(
    "variable, text, words",
    [
        ("RECOMMENDER_SERVE_WORKERS", "abc", "'abc' is not accepted; give an integer from 1 to 64"),
        ("RECOMMENDER_SERVE_WORKERS", "0", "0 is not accepted; give an integer from 1 to 64"),
        ("RECOMMENDER_SERVE_THREADS", "-3", "-3 is not accepted; give an integer from 1 to 64"),
        ("RECOMMENDER_SERVE_THREADS", "2.5", "'2.5' is not accepted; give an integer from 1 to 64"),
        (
            "RECOMMENDER_SERVE_TIMEOUT",
            "soon",
            "'soon' is not accepted; give a number from 1 to 3600",
        ),
    ],
)
def test_a_worker_setting_from_the_environment_is_checked_as_the_files_are(
    monkeypatch, variable, text, words
):
    from recommender.service import worker_settings

    monkeypatch.delenv("RECOMMENDER_SERVE_CONFIG", raising=False)
    monkeypatch.setenv(variable, text)
    with pytest.raises(InputError) as caught:
        worker_settings()
    assert str(caught.value) == f"{variable} = {words}"
