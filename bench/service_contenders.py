"""What ``bench.service`` measures: the demo model, the request bodies, the engines answering
them in process, and the minimal FastAPI app that does the same work as an anchor.
"""

from __future__ import annotations

import gc
import os
import shutil
from pathlib import Path

KEY = "bench-program-key-0123"
BATCH_ROWS = 1000
SALT = "bench-salt-not-secret"
CONNECTIONS = 16
# Bodies each wrk connection sends in turn (about 300 requests per connection per round).
WRK_BODIES = 1000


def _profile(i: int) -> dict:
    roles = ("physician", "resident", "nurse", "app")
    return {
        "person_id": f"bench-{i}",
        "age": 25 + i % 40,
        "gender": "female",
        "role": roles[i % 4],
        "specialty": "internal_medicine",
        "setting": "academic",
        # at most age - 16: a quarter of the bodies would otherwise be refused 422 (no one
        # practises before 16, recommender.cohort.PRACTICE_START_AGE) and time no answer
        "years_in_practice": float(min(i % 30, 25 + i % 40 - 16)),
        "weekly_hours": 40.0 + i % 40,
        "ee": i % 55,
        "dp": i % 31,
        "pa": i % 49,
    }


# -- the FastAPI anchor --------------------------------------------------------------------------


def create_anchor_app():
    """A minimal FastAPI app doing exactly the service's work (uvicorn --factory target)."""
    from fastapi import Body, FastAPI
    from fastapi.responses import JSONResponse

    engine = _engine(Path(os.environ["BENCH_AUDIT_DIR"]) / "anchor-audit.db")
    app = FastAPI()

    @app.post("/recommend")
    def recommend(payload: dict = Body(...)):
        row = engine.check_row(payload)
        return JSONResponse(engine.recommend([row], caller_role="program")[0])

    return app


def as_served() -> None:
    """What the service does once its model is loaded (``recommender.service._serving``):
    the hundreds of thousands of long-lived objects loaded (libraries, model) kept out of the
    cyclic collector, so that a batch's answers do not make full collections walk them. An
    engine measured without it pays a full collection nearly every other 1,000-row batch of
    the demo model (about 195 ms of CPU each, 4 ms once frozen) that the service never pays."""
    gc.collect()
    gc.freeze()


def _engine(audit_path: Path | None, durability: str = "process_crash", champion=None):
    from recommender.catalog import load_catalog
    from recommender.registry import load_champion
    from recommender.service import AuditLog, RecommendationEngine, load_serve_config

    model, version = champion or load_champion()
    return RecommendationEngine(
        model,
        version,
        catalog=load_catalog(),
        config=load_serve_config(),
        audit=AuditLog(
            f"sqlite:///{audit_path}" if audit_path else "sqlite://",
            salt=SALT,
            durability=durability,
        ),
    )


ROOT = Path(__file__).resolve().parents[1]
DEMO_NOTE = (
    "the demo model: champion trained by `configs/train.yaml` (learner auto, simulated cohort "
    "n = 20,000, seed 7, default scenario)"
)


def demo_model_home(*, retrain: bool = False) -> Path:
    """A models folder holding the demo model's champion, trained once and then reused.

    Keyed by a hash of what makes the model (the configs, the simulator and the learners'
    code), so a change to any of them trains a new one rather than measuring a stale one.
    """
    import hashlib

    digest = hashlib.sha256()
    sources = [
        ROOT / "configs" / "train.yaml",
        ROOT / "configs" / "interventions.yaml",
        *sorted((ROOT / "configs" / "scenarios").glob("*.yaml")),
        *sorted((ROOT / "recommender" / "uplift").glob("*.py")),
        *sorted((ROOT / "recommender" / "simulate").glob("*.py")),
        *sorted((ROOT / "recommender" / "model").glob("*.py")),
        *sorted((ROOT / "pipelines").glob("*.py")),
    ]
    for path in sources:
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    home = ROOT / "bench" / "out" / "demo-model" / digest.hexdigest()[:16]
    marker = home / "trained"
    if retrain and home.exists():
        shutil.rmtree(home)
    if not marker.exists():
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        previous = os.environ.get("RECOMMENDER_HOME")
        os.environ["RECOMMENDER_HOME"] = str(home)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        from pipelines.train import run_training

        # configs/train.yaml as `make demo` uses it: what ships is what is measured.
        run_training(reason="service benchmark")
        if previous is None:
            os.environ.pop("RECOMMENDER_HOME")
        else:
            os.environ["RECOMMENDER_HOME"] = previous
        marker.write_text("configs/train.yaml\n")
    return home
