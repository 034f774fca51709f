"""The core install works without the extras; pyproject has ranges, the locks exact hashed pins."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_core_modules_and_cli_work_without_the_serve_spark_and_postgres_extras(tmp_path):
    # The extras' packages made unimportable: importing them anywhere in the core would fail.
    code = (
        "import sys\n"
        "for name in ('bentoml', 'fastapi', 'psycopg', 'pyspark', 'econml', 'causalml'):\n"
        "    sys.modules[name] = None\n"
        "import recommender.cli, recommender.service, recommender.registry, recommender.card\n"
        "import pipelines.train, pipelines.score, pipelines.allocate\n"
        "from recommender.service import AuditLog\n"
        "AuditLog('sqlite://', salt='s').count()\n"
        "from recommender.cli import main\n"
        "sys.exit(main(['validate', '--help']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_pyproject_has_lower_bounds_and_the_locks_exact_hashed_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = project["dependencies"]
    names = {re.split(r"[<>=\[; ]", entry)[0] for entry in core}
    assert not names & {"bentoml", "fastapi", "psycopg", "pyspark", "uvicorn"}
    everything = core + [e for extra in project["optional-dependencies"].values() for e in extra]
    assert [e for e in everything if "==" in e] == []
    assert {"serve", "postgres", "spark", "bench"} <= set(project["optional-dependencies"])
    for lock in ("runtime", "test", "bench"):
        text = (ROOT / "requirements" / f"{lock}.lock").read_text()
        pins = re.findall(r"^[A-Za-z0-9_.\-\[\]]+==\S+", text, flags=re.M)
        hashed = re.findall(
            r"^[A-Za-z0-9_.\-\[\]]+==\S+ \\\n    --hash=sha256:[0-9a-f]{64}", text, flags=re.M
        )
        assert len(pins) > 50 and len(hashed) == len(pins), lock
    runtime = (ROOT / "requirements" / "runtime.lock").read_text()
    assert "\nbentoml==1.4.39 " in runtime and "\npsycopg==" in runtime


def test_the_service_lock_has_uvicorns_c_parser_and_event_loop():
    # uvicorn (BentoML's server) falls back silently to h11 and asyncio's loop without them,
    # and each answer then costs the worker about a sixth more CPU (docs/benchmarks.md).
    serve = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["serve"]
    assert {re.split(r"[<>=\[; ]", entry)[0] for entry in serve} >= {"httptools", "uvloop"}
    for lock in ("runtime", "test", "bench"):
        text = (ROOT / "requirements" / f"{lock}.lock").read_text()
        assert "\nhttptools==" in text and "\nuvloop==" in text, lock
