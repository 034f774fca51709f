"""The registered model runs where this project is not installed.

A real training run registers the champion; a fresh virtual environment gets only the model's
own requirements.txt (installed by uv, from its cache where it can), so the `recommender`
package is importable there only from the code the model carries. In it the model is loaded
and scores the same as here, and `mlflow models serve --env-manager local` answers on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tether
import pandas as pd
import pytest

from test_pipeline_train import use_home

pytestmark = [pytest.mark.slow, pytest.mark.server]


def _uv() -> str:
    found = Path(sys.executable).with_name("uv")
    if found.exists():
        return str(found)
    located = shutil.which("uv")
    if located:
        return located
    if os.environ.get("CI") == "true":
        pytest.fail("uv is missing; `make venv` installs it")
    pytest.skip("uv is not installed (`make venv` installs it)")


@pytest.fixture(scope="module")
def champion(trained_copy):
    """A real registered champion (the session's trained model, in a home of this module's
    own), its downloaded folder and a few profiles."""
    from recommender import registry
    from recommender.simulate import simulate_cohort

    home = trained_copy
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_home(monkeypatch, home)
        pyfunc = registry.load_pyfunc("champion")
        import mlflow.artifacts

        uri = registry.tracking_uri()
        source = registry.client().get_model_version_download_uri("burnout-recommender", "1")
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=source,
                dst_path=str(home / "downloaded"),
                tracking_uri=uri,
                registry_uri=uri,
            )
        )
        columns = list(pyfunc.metadata.get_input_schema().input_names())
        rows = simulate_cohort("default", 30, seed=11)
        # Every tenth person flagged for crisis risk: the resources travel with the model too.
        rows["crisis_risk"] = np.arange(len(rows)) % 10 == 0
        rows = rows[columns]
        # Plain types, as a caller's JSON or CSV gives them (the simulator's are categorical).
        rows = rows.astype({c: str for c in columns if rows[c].dtype.kind not in "iufb"})
        expected = pyfunc.predict(rows)
        flagged = rows["crisis_risk"].to_numpy()
        assert (expected.loc[flagged, "safety_level"] == "crisis").all()
        assert expected.loc[flagged, "recommended"].isna().all()
        assert expected.loc[~flagged, "recommended"].notna().all()
    return {"home": home, "uri": uri, "local": local, "rows": rows, "expected": expected}


@pytest.fixture(scope="module")
def bare_python(champion, tmp_path_factory):
    """A new venv holding only the model's requirements: no `recommender`, no `pipelines`."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    uv = _uv()
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "-p",
            str(python),
            "-r",
            str(champion["local"] / "requirements.txt"),
        ],
        check=True,
    )
    return python


def _bare_env(champion, python: Path) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "VIRTUAL_ENV", "RECOMMENDER_"))
    }
    # As if the venv were activated: MLflow starts its scoring server as `uvicorn` from PATH.
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env.update(
        {
            "MLFLOW_TRACKING_URI": champion["uri"],
            "BENTOML_DO_NOT_TRACK": "True",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
    )
    return env


def test_the_model_carries_its_code_and_complete_pinned_requirements(champion):
    import yaml

    local = champion["local"]
    mlmodel = yaml.safe_load((local / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["code"] == "code"
    assert (local / "code" / "recommender" / "model" / "_recommendation.py").exists()
    assert (local / "code" / "recommender" / "registry" / "_pyfunc.py").exists()
    requirements = [
        line.strip()
        for line in (local / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    names = {line.split("==")[0] for line in requirements}
    assert {"mlflow", "lightgbm", "scikit-learn", "pandas", "numpy", "joblib"} <= names
    assert all("==" in line for line in requirements), requirements
    assert "burnout-recommender" not in names  # the code travels inside the model instead


def test_loads_and_scores_where_the_project_is_not_installed(champion, bare_python, tmp_path):
    rows_path = tmp_path / "rows.json"
    champion["rows"].to_json(rows_path, orient="records")
    script = f"""
import importlib.util, json, sys
assert importlib.util.find_spec("recommender") is None, "the project is importable"
assert importlib.util.find_spec("pipelines") is None, "the project is importable"
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model({str(champion["local"])!r})
rows = pd.read_json({str(rows_path)!r}, orient="records", dtype={{"person_id": str}})
scored = model.predict(rows)
import recommender
print(json.dumps({{"from": recommender.__file__,
                  "scored": json.loads(scored.to_json(orient="split"))}}))
"""
    done = subprocess.run(
        [str(bare_python), "-c", script],
        capture_output=True,
        text=True,
        env=_bare_env(champion, bare_python),
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    # The package came from the model's own folder, not from this checkout or an install.
    assert Path(out["from"]).is_relative_to(champion["local"] / "code")
    scored = pd.DataFrame(out["scored"]["data"], columns=out["scored"]["columns"])
    expected = champion["expected"]
    assert list(scored.columns) == list(expected.columns)
    assert _arms(scored["recommended"]) == _arms(expected["recommended"])
    assert scored["safety_level"].tolist() == expected["safety_level"].tolist()
    effects = [c for c in expected.columns if c.startswith("effect_")]
    pd.testing.assert_frame_equal(
        scored[effects], expected[effects].reset_index(drop=True), check_dtype=False, rtol=1e-9
    )


def test_mlflow_models_serve_answers_a_scoring_request(champion, bare_python, tmp_path):
    import httpx

    with socket.socket() as probe:  # a free loopback port, chosen by the OS
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mlflow_cli = bare_python.with_name("mlflow")
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [
            str(mlflow_cli),
            "models",
            "serve",
            "-m",
            "models:/burnout-recommender@champion",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=_bare_env(champion, bare_python),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=tether.tethered(),  # it ends with this process, even by kill -9
    )
    owned = tether.record(process=server)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        else:
            pytest.fail(
                "mlflow models serve did not start:\n"
                + (tmp_path / "serve.log").read_text()[-3000:]
            )
        rows = champion["rows"].head(5)
        body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
        response = httpx.post(f"{url}/invocations", json=body, timeout=120)
        assert response.status_code == 200, response.text[:2000]
        predictions = pd.DataFrame(response.json()["predictions"])
        expected = champion["expected"].head(5)
        assert _arms(predictions["recommended"]) == _arms(expected["recommended"])
        assert predictions["referral"].tolist() == expected["referral"].tolist()
    finally:
        _stop(server)
        tether.forget(owned)
        log.close()


def _arms(recommended) -> list:
    """Recommended arms, a crisis row's missing one (None from JSON, NaN in pandas) as None."""
    return [None if pd.isna(arm) else arm for arm in recommended]


def _stop(server: subprocess.Popen) -> None:
    # The server's own process group: the scoring workers it started go with it.
    for signal_number, wait in ((15, 30), (9, 10)):
        try:
            os.killpg(server.pid, signal_number)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
