"""`make bento`'s `bentoml build` makes a bento holding the code, the configs, the audit store's
migrations and the runtime lock's exact, hashed requirements, and nothing of `models/`, `tests/`
or a virtual environment (BentoML's home in a temporary folder); `bentoml serve` of the built
bento, as its container runs it, answers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from service_fixtures import (  # noqa: F401  (champion_home: a fixture)
    ENV_KEYS,
    KEYS,
    SALT,
    champion_home,
    profile,
    serving,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _pins(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", text, flags=re.M))


@pytest.fixture(scope="module")
def bento(tmp_path_factory) -> Path:
    """The folder of the bento `bentoml build` made from this checkout."""
    home = tmp_path_factory.mktemp("bentoml")
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True"}
    env.pop("RECOMMENDER_SERVE_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "--output", "tag"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    bentos = [
        p
        for p in (home / "bentos" / "burnout_recommender").iterdir()
        if p.name != "latest" and p.is_dir()
    ]
    assert len(bentos) == 1
    return bentos[0]


def test_bentoml_build_holds_configs_code_and_pinned_requirements(bento):
    manifest = yaml.safe_load((bento / "bento.yaml").read_text())
    assert manifest["service"] == "recommender.service.service:Recommender"
    src = bento / "src"
    for name in ("serve.yaml", "train.yaml", "interventions.yaml", "scenarios/default.yaml"):
        assert (src / "configs" / name).read_text() == (ROOT / "configs" / name).read_text()
    assert (src / "recommender" / "service" / "service.py").exists()
    migrations = src / "recommender" / "service" / "migrations"
    revisions = sorted(
        p.name for p in (ROOT / migrations.relative_to(src) / "versions").glob("0*.py")
    )
    assert sorted(p.name for p in (migrations / "versions").glob("0*.py")) == revisions
    assert (migrations / "script.py.mako").exists() and (src / "alembic.ini").exists()
    assert not list(src.rglob("__pycache__")) and not (src / "tests").exists()
    assert not (src / "models").exists() and not (src / ".venv").exists()
    assert not list(src.rglob("*.db")) and not list(src.rglob("*.parquet"))
    shipped = (bento / "env" / "python" / "requirements.txt").read_text()
    lock = (ROOT / "requirements" / "runtime.lock").read_text()
    assert _pins(shipped) == _pins(lock)
    assert _pins(shipped)["bentoml"] == "1.4.39"
    assert {"mlflow", "psycopg", "lightgbm"} <= set(_pins(shipped))
    assert shipped.count("--hash=sha256:") == lock.count("--hash=sha256:") > 100


def test_bentoml_serve_of_the_built_bento_answers_and_audits(bento, champion_home, tmp_path):
    """What the container's entrypoint runs (`bentoml serve $BENTO_PATH`), from another folder,
    with the champion from the registry the environment names."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RECOMMENDER_", "MLFLOW_")) and k != "PYTHONPATH"
    }
    env.update(
        BENTOML_HOME=str(tmp_path / "bentoml"),
        BENTOML_DO_NOT_TRACK="True",
        MLFLOW_TRACKING_URI=f"sqlite:///{champion_home / 'mlflow.db'}",
        RECOMMENDER_HOME=str(tmp_path / "data"),
        RECOMMENDER_API_KEYS=ENV_KEYS,
        RECOMMENDER_AUDIT_SALT=SALT,
    )

    def command(port: int) -> list[str]:
        serve = [sys.executable, "-m", "bentoml", "serve", str(bento)]
        return serve + ["--port", str(port), "--host", "127.0.0.1"]

    log_path = tmp_path / "serve.log"
    with serving(command, env=env, log_path=log_path, cwd=tmp_path) as (url, _):
        assert httpx.get(f"{url}/livez", timeout=30).status_code == 200
        headers = {"Authorization": f"Bearer {KEYS['program']}"}
        answer = httpx.post(f"{url}/recommend", json=profile(), headers=headers, timeout=60)
        assert answer.status_code == 200, answer.text[:1000]
        assert answer.json()["model_version"] == "1" and answer.json()["recommended"]
        crisis = profile(person_id="p-crisis", crisis_risk=True)
        answer = httpx.post(f"{url}/recommend", json=crisis, headers=headers, timeout=60)
        assert answer.status_code == 200 and answer.json()["safety"]["level"] == "crisis"
        exported = httpx.get(
            f"{url}/audit/export",
            headers={"Authorization": f"Bearer {KEYS['auditor']}"},
            timeout=60,
        )
        assert exported.status_code == 200
        assert len(exported.text.strip().splitlines()) == 3  # header and the two answers
    # The store is where the environment put it, not in the bento.
    assert (tmp_path / "data" / "audit.db").exists()
    assert not (bento / "src" / "models").exists()
