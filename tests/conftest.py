"""Suite-wide isolation: no test touches the developer's models/ folder or MLflow server.

Every test session gets its own RECOMMENDER_HOME in a temporary folder; MLFLOW_TRACKING_URI
inherited from the shell is removed so the embedded store there is used, and BentoML neither
phones home nor writes outside that folder.
"""

from __future__ import annotations

import os

import pytest

# Under `pytest -n 2`, the modules with Spark tests go first, so that one worker runs them all and
# only one JVM starts (tests/spark_first.py).
pytest_plugins = ["spark_first"]


def pytest_sessionstart(session):
    """Stop and remove the PostgreSQL clusters and servers an earlier run of this user left
    running when it was killed (only those its records name, whose run has ended:
    tests/tether.py). Once, in the process that leads the run, not in each xdist worker."""
    if not hasattr(session.config, "workerinput"):
        import tether

        tether.sweep_ended_runs()


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("recommender-home")
    saved = {k: os.environ.get(k) for k in _VARIABLES}
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ["RECOMMENDER_HOME"] = str(home)
    os.environ["BENTOML_HOME"] = str(home / "bentoml")
    os.environ["BENTOML_DO_NOT_TRACK"] = "True"
    os.environ["MPLBACKEND"] = "Agg"
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


_VARIABLES = (
    "MLFLOW_TRACKING_URI",
    "RECOMMENDER_HOME",
    "BENTOML_HOME",
    "BENTOML_DO_NOT_TRACK",
    "MPLBACKEND",
)


@pytest.fixture(autouse=True, scope="session")
def _mlflow_template(tmp_path_factory):
    """New MLflow SQLite stores of this process start as a copy of one made once
    (tests/mlflow_template.py): MLflow's migrations cost seconds per store."""
    from mlflow_template import SITE, TEMPLATE_ENV, Template

    template = Template(tmp_path_factory.mktemp("mlflow-template"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        template.install(monkeypatch)
        # The session's subprocesses too (tests/site/sitecustomize.py).
        monkeypatch.setenv(TEMPLATE_ENV, str(template.path))
        paths = [str(SITE), *filter(None, [os.environ.get("PYTHONPATH")])]
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
        yield template


@pytest.fixture(autouse=True)
def _mlflow_migrations(request, _mlflow_template):
    """Tests marked ``mlflow_migrations`` see MLflow create each store from its migrations."""
    if request.node.get_closest_marker("mlflow_migrations") is None:
        yield
        return
    from mlflow_template import TEMPLATE_ENV

    _mlflow_template.enabled = False
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.delenv(TEMPLATE_ENV)  # and in its subprocesses
            yield
    finally:
        _mlflow_template.enabled = True


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """One real training run (simulate, fit auto learners, evaluate, register) with
    tests/test_pipeline_train.py's SMALL settings, in a store of its own: ``(result, home)``.

    Tests read that home or copy it and reuse its model; none writes there. Trained once per
    run (tests/fitted_fixtures.py's ``once_per_run``: under ``-n 2`` the second worker paid a
    second fit of the same model) into the run's folder, which no test sees: each worker gets
    its own copy, made to name its own files as the training would have left them (a copied
    home reads its own files: tests/test_home_moved.py, which copies this one in turn).
    """
    import dataclasses
    import shutil

    from fitted_fixtures import once_per_run, run_folder
    from test_pipeline_train import SMALL, use_home

    from recommender import registry

    trained_home = run_folder(tmp_path_factory) / "trained-SMALL-home"

    def train_once():
        import pipelines.train as train

        shutil.rmtree(trained_home, ignore_errors=True)  # a run killed half way left it
        with pytest.MonkeyPatch.context() as monkeypatch:
            use_home(monkeypatch, trained_home)
            return train.run_training(overrides=SMALL, reason="fixture run")

    result = once_per_run(tmp_path_factory, "trained-SMALL", train_once)
    home = tmp_path_factory.mktemp("trained-home")
    shutil.copytree(trained_home, home, dirs_exist_ok=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_home(monkeypatch, home)
        registry.client()  # a writer's: the copy's store names the copy's files from now on
    card_folder = home / result.card_folder.relative_to(trained_home)
    return dataclasses.replace(result, card_folder=card_folder), home


@pytest.fixture(scope="module")
def trained_copy(trained, tmp_path_factory):
    """A module's own copy of the trained fixture's home: version 1, champion and challenger,
    card and promotion log (a copied home reads its own files: tests/test_home_moved.py).

    For a module that needs a registered champion and writes beside it (scores, plans,
    downloads, more versions): a copy costs a fraction of a second, training it again a
    minute on a loaded two-core machine.
    """
    import shutil

    home = tmp_path_factory.mktemp("trained-copy")
    shutil.copytree(trained[1], home, dirs_exist_ok=True)
    return home


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster on loopback (tests/pg_cluster.py), for this session only.

    Skipped where PostgreSQL or psycopg is missing, except on CI (CI=true), where `make test`
    installs both: there it fails.
    """
    from pg_cluster import Cluster, server_binaries

    def missing(reason):
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must have it (`make test` installs it)", pytrace=False)
        pytest.skip(reason)

    binaries = server_binaries()
    if binaries is None:
        missing("PostgreSQL's server binaries (Debian package postgresql) are not installed")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("psycopg (the postgres extra) is not installed")
    cluster = Cluster(binaries)
    try:
        # A readiness probe waits CHECK_WAIT (1 s) for the check of a PostgreSQL store and
        # says not ready past it: on a busy CI machine a check of this cluster may take longer,
        # and a test asserting ready then fails (three did with the check slowed by 1.5 s). The
        # tests' stores are checked to the end instead, so that only what the check finds
        # decides (a store silent past the wait is not tested).
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("recommender.service._store_check.CHECK_WAIT", 60.0)
            yield cluster
    finally:
        cluster.stop()
