"""Shared pieces of the service tests: a stand-in model, profiles, keys, clients, a champion.

Imported by tests/test_service_*.py, tests/test_policy_*.py and tests/test_explain_*.py. The
stand-in model (:class:`LinearModel`) has the :class:`~recommender.model.RecommendationModel`
interface with effects that are exact linear functions of the profile, so every number a
response shows can be checked by hand. It exists only here: the service loads the real champion.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest
import tether

KEYS = {
    "program": "program-key-1234567",
    "scientist": "scientist-key-4567890",
    "auditor": "auditor-key-7890123",
}
ENV_KEYS = ",".join(f"{role}={key}" for role, key in KEYS.items())
SALT = "test-salt-not-secret"
# One audit record as the service appends it (AuditLog.append).
AUDIT_RECORD = {
    "request_id": "r-1",
    "model_version": "3",
    "caller_role": "program",
    "person_id": "p-1",
    "safety_level": "routine",
    "recommended": "coaching",
    "ranking_meaningful": True,
    "effects": {"coaching": [-4.0, -6.0, -2.0]},
}

PROFILE = {
    "person_id": "p-0001",
    "age": 44,
    "gender": "female",
    "role": "physician",
    "specialty": "internal_medicine",
    "setting": "academic",
    "years_in_practice": 12.0,
    "weekly_hours": 55.0,
    "ee": 30,
    "dp": 9,
    "pa": 36,
}


def profile(**changes) -> dict:
    """A valid /recommend body, with changes."""
    return {**PROFILE, **changes}


def outcome(person_id: str, **changes) -> dict:
    """A valid outcome row for ``person_id`` measured now, with changes."""
    from datetime import datetime, timezone

    return {
        "person_id": person_id,
        "measured_at": datetime.now(timezone.utc).isoformat(),
        "arm_taken": "coaching",
        "ee_followup": 20,
        "dp_followup": 7,
        "pa_followup": 38,
        **changes,
    }


def auth(role: str) -> dict:
    return {"Authorization": f"Bearer {KEYS[role]}"}


class LinearModel:
    """Stand-in for RecommendationModel: effect(arm) = base[arm] + sum_f weight[arm][f] * x_f.

    ``x`` is the numeric features plus ``role == physician`` as 0/1; contributions are exact.
    Intervals are effect -/+ ``half_width[arm]``. ``calls`` counts scored rows per call, so a
    test can tell one vectorized call from a loop.

    ``extras`` are extra features, as entries of a feature schema (``{"name": "night_shifts",
    "kind": "float"}`` or ``{"name": "unit", "kind": "category", "categories": [...]}``): a
    numeric one enters ``x`` as it is, a categorical one as 1 for its first category. Profiles
    are read as the real model reads them (:func:`recommender.model.frame_from_schema`), so a
    missing extra feature or an unknown category is refused the same way.
    """

    control = "none"
    weighted = ("age", "years_in_practice", "weekly_hours", "ee", "dp", "pa", "role")

    def __init__(self, base=None, weights=None, half_width=None, version_tag="lin", extras=()):
        self.base = (
            base
            if base is not None
            else {
                "coaching": -2.0,
                "mindfulness": -1.0,
                "peer_group": -0.5,
                "resilience_training": -0.8,
                "balint_group": 0.3,
            }
        )
        self.weights = (
            weights
            if weights is not None
            else {
                "coaching": {"ee": -0.1, "role": -1.5, "weekly_hours": 0.02},
                "mindfulness": {"ee": -0.05, "weekly_hours": 0.01},
                "peer_group": {"dp": -0.1},
                "resilience_training": {"ee": -0.02},
                "balint_group": {"dp": -0.05},
            }
        )
        self.half_width = half_width if half_width is not None else {arm: 1.0 for arm in self.base}
        self.treatment_arms = tuple(self.base)
        self.arms = (self.control, *self.treatment_arms)
        # The installed catalog's, as a model trained with it records (another is said on the
        # card and in the log: tests/test_registry_lifecycle2.py).
        from recommender.catalog import load_catalog

        self.catalog_version = load_catalog().version
        self.calls: list[int] = []
        self._encoded: tuple = (None, None)
        self.version_tag = version_tag
        self.extras = [dict(entry) for entry in extras]
        self.features = _contract_schema() + self.extras

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.features]

    @property
    def extra_features(self) -> list[str]:
        # As RecommendationModel.extra_features: what a profile table needs beyond the contract.
        return [f["name"] for f in self.extras]

    def _x(self, profiles: pd.DataFrame) -> pd.DataFrame:
        encoded, x = self._encoded
        if profiles is encoded:  # the engine's rows, read once by encode
            return x
        from recommender.model import frame_from_schema

        return self._x_of(frame_from_schema(profiles, self.features))

    def _x_of(self, frame: pd.DataFrame) -> pd.DataFrame:
        x = frame[[f for f in self.weighted if f != "role"]].astype(float)
        x["role"] = (frame["role"].astype(str) == "physician").astype(float)
        for entry in self.extras:
            column = frame[entry["name"]]
            x[entry["name"]] = (
                (column.astype(str) == entry["categories"][0]).astype(float)
                if entry["kind"] == "category"
                else column.astype(float)
            )
        return x

    def _effect(self, x: pd.DataFrame, arm: str) -> np.ndarray:
        if arm == self.control:
            return np.zeros(len(x))
        total = np.full(len(x), self.base[arm])
        for feature, weight in self.weights.get(arm, {}).items():
            total = total + weight * x[feature].to_numpy()
        return total

    def score(self, profiles, *, offered=None, alpha=0.1):
        self.calls.append(len(profiles))
        x = self._x(profiles)
        out = {"person_id": profiles["person_id"].astype(str).to_numpy()}
        effects = {arm: self._effect(x, arm) for arm in self.treatment_arms}
        table = np.column_stack([np.zeros(len(x))] + [effects[a] for a in self.treatment_arms])
        out["recommended"] = np.array(self.arms, dtype=object)[np.argmin(table, axis=1)]
        for arm in self.treatment_arms:
            out[f"effect_{arm}"] = effects[arm]
            out[f"lower_{arm}"] = effects[arm] - self.half_width[arm]
            out[f"upper_{arm}"] = effects[arm] + self.half_width[arm]
        for outcome, scale in (("dp", 1 / 3), ("pa", -1 / 4)):
            for arm in self.treatment_arms:
                effect, half = effects[arm] * scale, self.half_width[arm] * abs(scale)
                out[f"effect_{outcome}_{arm}"] = effect
                out[f"lower_{outcome}_{arm}"] = effect - half
                out[f"upper_{outcome}_{arm}"] = effect + half
        return pd.DataFrame(out, index=profiles.index)

    # The engine's interface: rows encoded once, predicted and explained from the encoding.
    def encode(self, rows):
        from recommender.model import frame_from_schema

        profiles = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        frame = frame_from_schema(profiles, self.features)  # refused as the real model refuses
        encoded = profiles.reset_index(drop=True)
        # Read once, as the real model's matrix: predict and explain of these very rows reuse it
        # (one pair, replaced whole, so a thread scoring other rows recomputes its own).
        self._encoded = (encoded, self._x_of(frame).reset_index(drop=True))
        return encoded

    def predict(self, encoded, *, alpha=0.1):
        from recommender.model import Prediction

        scores = self.score(encoded, alpha=alpha)
        arms = self.treatment_arms

        def table(kind):
            return np.column_stack([scores[f"{kind}_{a}"].to_numpy(dtype=float) for a in arms])

        return Prediction(
            arms=arms,
            effect=table("effect"),
            lower=table("lower"),
            upper=table("upper"),
            secondary={"dp": table("effect_dp"), "pa": table("effect_pa")},
            secondary_lower={"dp": table("lower_dp"), "pa": table("lower_pa")},
            secondary_upper={"dp": table("upper_dp"), "pa": table("upper_pa")},
        )

    def explain(self, encoded, needs):
        names = [f["name"] for f in self.features]
        out = {}
        x = self._x(encoded)
        for arm, positions in needs.items():
            part = self._contributions_of(x.iloc[list(positions)], arm, self.control)
            out[arm] = np.column_stack(
                [part[name].to_numpy() if name in part else np.zeros(len(part)) for name in names]
                + [part["base"].to_numpy()]
            )
        return out

    def contributions(self, profiles, arm, versus=None):
        return self._contributions_of(self._x(profiles), arm, versus or self.control)

    def _contributions_of(self, x: pd.DataFrame, arm: str, versus: str) -> pd.DataFrame:
        parts = {}
        for feature in x.columns:
            w_arm = self.weights.get(arm, {}).get(feature, 0.0) if arm != self.control else 0.0
            w_vs = self.weights.get(versus, {}).get(feature, 0.0) if versus != self.control else 0.0
            parts[feature] = (w_arm - w_vs) * x[feature].to_numpy()
        base_arm = self.base.get(arm, 0.0) if arm != self.control else 0.0
        base_vs = self.base.get(versus, 0.0) if versus != self.control else 0.0
        parts["base"] = np.full(len(x), base_arm - base_vs)
        return pd.DataFrame(parts, index=x.index)


def with_training_support(model):
    """``model`` as if trained on 600 rows aged 25 to 64, working 30 to 80 hours a week, 0 to 40
    years in practice, only 3 of them advanced practice providers (role ``app``), every other
    level and score often, within each role too: the support a trained model records
    (:func:`recommender.model.training_support`, 11 rows a level)."""
    from recommender.cohort import feature_frame
    from recommender.model import training_support

    from recommender.cohort import CATEGORIES

    roles = ("physician", "resident", "nurse")

    def level(column, i):  # every level of the other categories, often
        return CATEGORIES[column][i % len(CATEGORIES[column])]

    rows = pd.DataFrame(
        [
            profile(
                person_id=f"t{i}",
                age=25 + i % 40,
                weekly_hours=30.0 + i % 51,
                years_in_practice=float(i % 41),
                # in blocks of 36 rows, so that each role has every gender, specialty and
                # setting often (cycling with i % 3 would cross roles with only a third of
                # the specialties)
                role="app" if i < 3 else roles[(i // 36) % 3],
                gender=level("gender", i),
                specialty=level("specialty", i),
                setting=level("setting", i),
                ee=i % 55,
                dp=i % 31,
                pa=i % 49,
            )
            for i in range(600)
        ]
    )
    model.metadata = {"training_support": training_support(feature_frame(rows), min_rows=11)}
    return model


def _contract_schema() -> list[dict]:
    from recommender.cohort import feature_frame
    from recommender.model import feature_schema

    return feature_schema(feature_frame(pd.DataFrame([PROFILE])))


@pytest.fixture
def service_home(tmp_path, monkeypatch):
    """A fresh models folder, keys and salt for one test."""
    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path))
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    monkeypatch.setenv("BENTOML_DO_NOT_TRACK", "True")
    monkeypatch.setenv("RECOMMENDER_API_KEYS", ENV_KEYS)
    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", SALT)
    monkeypatch.delenv("RECOMMENDER_SERVE_CONFIG", raising=False)
    return tmp_path


@pytest.fixture
def linear_model():
    return LinearModel()


@pytest.fixture
def asgi_client(service_home, linear_model, monkeypatch):
    """The service's own ASGI app in process (BentoML's ``to_asgi``) over the stand-in model."""
    from starlette.testclient import TestClient

    from recommender.service import service as service_module

    monkeypatch.setattr(service_module, "load_champion_model", lambda: (linear_model, "7"))
    # Each test starts the app's lifespan afresh (a new service instance reading this test's
    # environment), but the app is built once: BentoML registers Prometheus metrics per app.
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        yield client


_APPS: dict = {}


def _app(service_module):
    if "app" not in _APPS:
        _APPS["app"] = service_module.Recommender.to_asgi()
    return _APPS["app"]


# -- real champion and server ------------------------------------------------------------------

# A small but real training run: the server tests need a registered champion and its card, not
# a good model. Two cross-fitting folds and a T-learner keep it to about half a minute.
SMALL_TRAINING = {
    "data": {"n": 3000},
    "learner": {"learner": "t", "n_folds": 2},
    "evaluation": {"n_folds": 2},
}

# Session-wide state shared by every module that imports these fixtures (pytest makes one
# fixture definition per importing module, so the cache, not the scope, keeps it to one).
_SESSION: dict = {}


@contextlib.contextmanager
def recommender_home(home: Path):
    """Point this process at ``home``'s embedded MLflow store for a while."""
    saved = {k: os.environ.get(k) for k in ("RECOMMENDER_HOME", "MLFLOW_TRACKING_URI")}
    os.environ["RECOMMENDER_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        yield home
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def train_version(home: Path, **overrides) -> str:
    """Train and register one small version in ``home``; returns its version."""
    from pipelines.train import run_training

    settings = {**SMALL_TRAINING, **overrides}
    with recommender_home(home):
        return str(run_training(overrides=settings, reason="service tests").version)


@pytest.fixture(scope="session")
def champion_home(tmp_path_factory):
    """A models folder with a registered champion (version 1) and its card: this worker's own.

    Trained once per run (tests/fitted_fixtures.py's ``once_per_run``: under ``-n 2`` each
    worker trained the same model) into the run's folder, which no test writes: it stays as
    trained for :func:`copy_champion`. Each worker gets a copy, made to name its own files as
    the training would have left them (a copied home reads its own files:
    tests/test_home_moved.py), where its session's servers write their audit and logs.
    """
    if "home" not in _SESSION:
        from fitted_fixtures import once_per_run, run_folder

        from recommender import registry

        as_trained = run_folder(tmp_path_factory) / "service-champion-home"

        def train_once() -> str:
            shutil.rmtree(as_trained, ignore_errors=True)  # a run killed half way left it
            return train_version(as_trained)

        once_per_run(tmp_path_factory, "service-champion", train_once)
        home = tmp_path_factory.mktemp("service-champion")
        shutil.copytree(as_trained, home, dirs_exist_ok=True)
        with recommender_home(home):
            registry.client()  # a writer's: the copy's store names the copy's files from now on
        _SESSION["as_trained"] = as_trained
        _SESSION["home"] = home
    return _SESSION["home"]


@pytest.fixture
def copy_champion(champion_home):
    """``copy_champion(folder)`` makes ``folder`` what ``train_version(folder)`` leaves (version
    1, champion, its card), copied from the run's champion as trained (:func:`champion_home`; a
    copied home reads its own files: tests/test_home_moved.py), without training again; returns
    ``folder``."""

    def copy(folder: Path) -> Path:
        shutil.copytree(_SESSION["as_trained"], folder)
        return folder

    return copy


@pytest.fixture(scope="session")
def server_url(champion_home, request):
    """``recommender serve`` over the champion, on a free loopback port, for the session."""
    if "url" not in _SESSION:
        stack = contextlib.ExitStack()
        _SESSION["url"] = stack.enter_context(running_server(champion_home))
        request.addfinalizer(stack.close)
    return _SESSION["url"]


@pytest.fixture(scope="session")
def two_worker_server(champion_home, tmp_path_factory, request):
    """``recommender serve`` with two workers of four threads over the champion, with an audit
    store and a log of its own, for the session: ``(url, process, store URL, log path)``.

    One start for tests/test_service_operator.py and tests/test_service_longrun_dec06.py, which
    each started the same server for their module. Its users leave it as they found it: two
    workers serving the champion (the test that kills a worker waits for the server to replace
    it and asserts so); counts and log lines are read as what a test added, never as totals.
    """
    if "two_workers" not in _SESSION:
        folder = tmp_path_factory.mktemp("two-workers")
        store = f"sqlite:///{folder / 'audit.db'}"
        env = {
            "RECOMMENDER_SERVE_WORKERS": "2",
            "RECOMMENDER_SERVE_THREADS": "4",
            "RECOMMENDER_AUDIT_URL": store,
        }
        log_path = folder / "serve.log"
        stack = contextlib.ExitStack()
        url, process = stack.enter_context(
            running_server_process(champion_home, env=env, log_path=log_path)
        )
        request.addfinalizer(stack.close)
        _SESSION["two_workers"] = (url, process, store, log_path)
    return _SESSION["two_workers"]


def load_with_16_connections(url: str, seconds: float, *, tag: str = "load"):
    """16 keep-alive connections posting varied profiles to /recommend for ``seconds``.

    The client is wrk (Debian's C load generator, as in bench/service.py): Python threads spent
    about 1.5 ms of the two shared cores per request, taken from the server under test and from
    the suite's other worker. Each connection stops on the answer that reaches its deadline, so
    no request is in flight at the end and every answer is counted.

    Returns ``(answered, failures)``: the number of 200 answers and the other outcomes (answers
    other than 2xx, socket errors and timeouts, as counted).
    """
    from bench._wrk import post_load

    bodies = [
        profile(
            person_id=f"{tag}-{k}-{i}",
            ee=(k * 7 + i) % 55,
            dp=i % 31,
            role=("physician", "resident", "nurse", "app")[i % 4],
        )
        for i in range(500)
        for k in range(16)
    ]
    load = post_load(
        url,
        "/recommend",
        bodies,
        connections=16,
        seconds=seconds,
        authorization=f"Bearer {KEYS['program']}",
    )
    failures = []
    if load.errors:
        failures.append(
            f"{load.errors} of {load.answered} requests were answered other than 2xx or failed "
            "(wrk: socket errors and timeouts counted too)"
        )
    return load.succeeded, failures


# A machine that gives the tests a range of ports of their own (``3150-3159``) names it here;
# else the system picks any free one.
TEST_PORTS_ENV = "RECOMMENDER_TEST_PORTS"


def free_port() -> int:
    """A loopback port free now (within ``RECOMMENDER_TEST_PORTS`` when set). It is released
    before the server binds it, so another process may take it meanwhile: start servers with
    :func:`serving`, which then tries another."""
    first, _, last = os.environ.get(TEST_PORTS_ENV, "0").partition("-")
    candidates = range(int(first), int(last or first) + 1)
    for port in candidates:
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:  # taken: the next one
                continue
            return sock.getsockname()[1]
    raise RuntimeError(f"no port of {TEST_PORTS_ENV}={os.environ[TEST_PORTS_ENV]} is free")


def wait_ready(
    url: str, process: subprocess.Popen, timeout: float = 180.0, path: str = "/readyz"
) -> None:
    """Wait until ``path`` answers 200 (``/livez`` for a service started without a model) from
    ``process``'s own server (:func:`listens`)."""
    import httpx

    port = urlsplit(url).port
    deadline = time.monotonic() + timeout
    # One client for every try, and a short pause: a new client per try cost ~33 ms of CPU
    # (one reused, ~1 ms), and the half-second pause made each start wait 0.25 s on average.
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with code {process.returncode}")
            try:
                answered = client.get(f"{url}{path}").status_code == 200
            except httpx.HTTPError:
                answered = False
            # A 200 from a server that took the port after free_port chose it (another xdist
            # worker's, which scans the same RECOMMENDER_TEST_PORTS in the same order) is not
            # this one's readiness: this one ends saying its port is in use, and is started
            # again on another; its tests would have talked to a server that stops with theirs.
            if answered and listens(process, port):
                return
            time.sleep(0.1)
    raise RuntimeError(f"the server at {url} did not answer {path} within {timeout:.0f} s")


def listens(process: subprocess.Popen, port: int) -> bool:
    """Whether the socket listening on ``port`` is held by ``process`` or one of its descendants
    (BentoML's worker holds the service's, in a session of its own).

    True where the system does not say who holds a socket (psutil's AccessDenied: macOS, not
    root): no worse than trusting the answer, as before this check."""
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
        ours = {process.pid} | {child.pid for child in psutil.Process(process.pid).children(True)}
    except psutil.AccessDenied:
        return True
    except psutil.NoSuchProcess:  # it ended: whoever listens is another
        return False
    return any(
        connection.status == psutil.CONN_LISTEN
        and connection.laddr.port == port
        and connection.pid in ours
        for connection in connections
    )


# What a server that could not bind its port says: `recommender serve`'s own check of the port
# ("port N on 127.0.0.1 is already in use"), and BentoML's bind ("[Errno 98] Address already in
# use").
_PORT_TAKEN = ("is already in use", "Address already in use")
# Servers started on a port another process took first, before the test gives up.
_PORT_TRIES = 5


@contextlib.contextmanager
def serving(
    command,
    *,
    env: dict,
    log_path: Path,
    out_path: Path | None = None,
    cwd: Path | None = None,
    ready_path: str = "/readyz",
    ready=None,
):
    """The server ``command(port)`` starts on a free loopback port, in a session of its own;
    yields ``(url, process)`` once ``ready_path`` answers 200 and stops it afterwards. It is
    also stopped when this process ends without doing so (killed: tests/tether.py).

    ``ready(url, process)``, when given, waits instead for what says a server that does not
    speak plain HTTP is ready, and raises RuntimeError if it is not (as :func:`wait_ready`).

    Its output goes to ``log_path`` (its standard output to ``out_path`` when given). A server
    that ends saying its port is in use (taken by another process after :func:`free_port` chose
    it) is started again on another port; any other failure to start is raised with its log.
    """
    for _ in range(_PORT_TRIES):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with contextlib.ExitStack() as stack:
            log = stack.enter_context(open(log_path, "wb"))
            out = log if out_path is None else stack.enter_context(open(out_path, "wb"))
            process = subprocess.Popen(
                command(port),
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=log if out_path is not None else subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=tether.tethered(),  # it ends with this process, even by kill -9
            )
            stack.callback(_stop, process)
            stack.callback(tether.forget, tether.record(process=process))
            try:
                if ready is None:
                    wait_ready(url, process, path=ready_path)
                else:
                    ready(url, process)
            except RuntimeError as error:
                said = "".join(p.read_text(errors="replace") for p in (log_path, out_path) if p)
                if process.poll() is not None and any(words in said for words in _PORT_TAKEN):
                    continue
                raise RuntimeError(f"{error}; server log:\n{said[-4000:]}") from None
            yield url, process
            return
    raise RuntimeError(f"{_PORT_TRIES} free ports in a row were taken before the server bound them")


@contextlib.contextmanager
def running_server(
    home: Path,
    *,
    env: dict | None = None,
    log_path: Path | None = None,
    ready_path: str = "/readyz",
):
    """``recommender serve`` on a free loopback port; yields the base URL once ``ready_path``
    answers 200."""
    with running_server_process(home, env=env, log_path=log_path, ready_path=ready_path) as (
        url,
        _,
    ):
        yield url


@contextlib.contextmanager
def running_server_process(
    home: Path,
    *,
    env: dict | None = None,
    log_path: Path | None = None,
    ready_path: str = "/readyz",
):
    """:func:`running_server`, yielding ``(url, process)``: the process of ``recommender
    serve``, whose descendants are BentoML's server and its workers."""
    import tempfile

    environment = {
        **os.environ,
        "RECOMMENDER_HOME": str(home),
        "BENTOML_HOME": str(home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "RECOMMENDER_API_KEYS": ENV_KEYS,
        "RECOMMENDER_AUDIT_SALT": SALT,
        **(env or {}),
    }
    if log_path is None:
        handle, name = tempfile.mkstemp(prefix="serve-", suffix=".log", dir=home)
        os.close(handle)
        log_path = Path(name)

    def command(port: int) -> list[str]:
        return [
            *(sys.executable, "-m", "recommender", "serve"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ]

    with serving(command, env=environment, log_path=log_path, ready_path=ready_path) as served:
        yield served


def _stop(process: subprocess.Popen) -> None:
    import signal

    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
