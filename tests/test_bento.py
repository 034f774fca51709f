"""`make bento`'s `bentoml build` makes a bento holding the code, the configs and the runtime
lock's exact, hashed requirements (BentoML's home in a temporary folder)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _pins(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", text, flags=re.M))


def test_bentoml_build_holds_configs_code_and_pinned_requirements(tmp_path):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "True"}
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
        for p in (tmp_path / "bentoml" / "bentos" / "burnout_recommender").iterdir()
        if p.name != "latest" and p.is_dir()
    ]
    assert len(bentos) == 1
    bento = bentos[0]
    manifest = yaml.safe_load((bento / "bento.yaml").read_text())
    assert manifest["service"] == "recommender.service.service:Recommender"
    src = bento / "src"
    for name in ("serve.yaml", "train.yaml", "interventions.yaml", "scenarios/default.yaml"):
        assert (src / "configs" / name).read_text() == (ROOT / "configs" / name).read_text()
    assert (src / "recommender" / "service" / "service.py").exists()
    assert (src / "recommender" / "service" / "migrations" / "versions").is_dir()
    assert not list(src.rglob("__pycache__")) and not (src / "tests").exists()
    shipped = (bento / "env" / "python" / "requirements.txt").read_text()
    lock = (ROOT / "requirements" / "runtime.lock").read_text()
    assert _pins(shipped) == _pins(lock)
    assert _pins(shipped)["bentoml"] == "1.4.39"
    assert {"mlflow", "psycopg", "lightgbm"} <= set(_pins(shipped))
    assert shipped.count("--hash=sha256:") == lock.count("--hash=sha256:") > 100
