"""Found on 6 December: ``recommender serve --check`` said "ready to serve" over a champion that
``recommender serve`` then warned about (trained under another catalog than the installed one,
its training run deleted) and over a registry it could not read; and two per-feature LightGBM
lists of different lengths were refused in LightGBM's "Check failed ... size()" words.

The registry homes are test_registry_lifecycle2's (version 1 the champion, of the installed
catalog; version 3 of the catalog before it), one copy per test.
"""

from __future__ import annotations

import socket

import numpy as np
import pandas as pd
import pytest
from service_fixtures import service_home  # noqa: F401 - a fixture
from test_registry_lifecycle import home  # noqa: F401 - a fixture
from test_registry_lifecycle2 import OLD, three_versions  # noqa: F401 - a fixture
from test_service_cli import _Started

from recommender import registry
from recommender.catalog import load_catalog
from recommender.cli import main
from recommender.errors import InputError
from recommender.uplift import GBMSpec, UpliftModel

# This helper's ports (loopback); --check only binds one for a moment.
PORTS = range(3180, 3190)


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


@pytest.fixture
def serving_env(service_home, home):  # noqa: F811
    """This module's registry home (``home``) with the service's keys and salt; both fixtures
    use the test's own folder."""
    assert service_home == home
    return home


def _serve(capsys, *options) -> tuple[int, str, list[str]]:
    """``recommender serve *options``: (exit code, stdout, stderr's lines)."""
    code = main(["serve", *options, "--host", "127.0.0.1", "--port", str(_free_port())])
    said = capsys.readouterr()
    return code, said.out, said.err.splitlines()


def _champions_warnings(capsys) -> list[str]:
    assert main(["champions"]) == 0
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]


def test_check_says_an_old_catalogs_champion_as_champions_and_serve_do(
    serving_env, monkeypatch, capsys
):
    installed = load_catalog().version
    registry.promote("3", reason="interim", force=True)
    expected = _champions_warnings(capsys)
    assert len(expected) == 1
    assert (
        f"trained under intervention catalog {OLD}, not the installed {installed}" in (expected[0])
    )

    code, out, err = _serve(capsys, "--check")
    assert code == 0  # the service serves it: a warning, not a failed check
    assert [line for line in err if line.startswith("warning:")] == expected
    assert "champion version 3 (1 warning above)" in out and out.startswith("ready to serve")

    # serve itself says the same lines, in the same words
    started = []
    monkeypatch.setattr(
        "subprocess.Popen", lambda *a, **k: started.append(_Started(*a, **k)) or started[-1]
    )
    code, _, err = _serve(capsys)
    assert code == 0 and len(started) == 1
    assert [line for line in err if line.startswith("warning:")] == expected


def test_check_says_a_champion_whose_training_run_was_deleted(serving_env, capsys):
    client = registry.client()
    run_id = client.get_model_version(registry.MODEL_NAME, "1").run_id
    code, out, err = _serve(capsys, "--check")
    assert code == 0 and not [line for line in err if line.startswith("warning:")]
    assert "champion version 1\n" in out  # nothing to warn about: no count

    client.delete_run(run_id)
    expected = _champions_warnings(capsys)
    code, out, err = _serve(capsys, "--check")
    assert code == 0 and "champion version 1 (1 warning above)" in out
    assert [line for line in err if line.startswith("warning:")] == expected
    assert expected[0].startswith(f"warning: version 1's training run {run_id} was deleted")


def test_check_passes_without_a_champion_yet_and_says_so(service_home, capsys):  # noqa: F811
    # make demo checks before it trains: a fresh home has no registry yet.
    code, out, err = _serve(capsys, "--check")
    assert code == 0
    assert "port free, no champion yet" in out
    assert err[-1].startswith("warning: no model holds the 'champion' alias in the MLflow store")
    assert "until `recommender train` registers one" in err[-1]


def test_check_fails_naming_a_registry_it_cannot_read(service_home, monkeypatch, capsys):  # noqa: F811
    # As an audit store it cannot reach: the service would give crisis answers only.
    down = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", down)
    code, out, err = _serve(capsys, "--check")
    assert code == 1 and "ready to serve" not in out
    assert err[-1].startswith(f"error: the MLflow store at {down} could not be read")
    assert "starts for crisis answers only (/readyz not ready)" in err[-1]
    assert "Traceback" not in "\n".join(err)


# -- two per-feature lists of different lengths ------------------------------------------------

MISMATCHED = {"monotone_constraints": [1, 0, -1], "feature_contri": [1.0, 0.5]}
SAID = (
    "monotone_constraints+feature_contri (monotone_constraints has 3 values and feature_contri "
    "has 2 values; accepted: lists of one length, each one value per feature in X's column "
    "order, as many values as X has features)"
)


def test_per_feature_lists_of_different_lengths_are_refused_in_our_words():
    assert GBMSpec(extra=MISMATCHED).extra_problems() == [SAID]
    # an alias is named as written
    said = GBMSpec(extra={"monotone_constraint": [1], "feature_contri": [1.0, 1.0]})
    assert said.extra_problems()[0].startswith(
        "monotone_constraint+feature_contri (monotone_constraint has 1 value and "
    )
    # lists of one length are left to the fit's check against X
    assert GBMSpec(extra={**MISMATCHED, "feature_contri": [1.0, 0.5, 1.0]}).extra_problems() == []


def test_a_fit_refuses_them_before_lightgbm_sees_them(capfd):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({c: rng.normal(size=120) for c in ("x", "z", "w")})
    model = UpliftModel(learner="t", n_folds=2, outcome_candidates=[GBMSpec(extra=MISMATCHED)])
    with pytest.raises(InputError) as caught:
        model.fit(X, np.repeat(["none", "a"], 60), rng.normal(size=120))
    assert f"outcome_candidates[0].extra.{SAID}" in str(caught.value)
    assert "Check failed" not in str(caught.value)
    assert "[LightGBM]" not in capfd.readouterr().err
