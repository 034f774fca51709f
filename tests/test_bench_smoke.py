"""The benchmark harnesses run end to end at a tiny size, so they cannot rot unnoticed.

Only the plumbing is checked (every method fits and scores, the report renders, the metrics
are within their logical bounds); no figure here is a benchmark result.
"""

import importlib.util
import math
import os

import pytest


def _skip_or_fail(reason: str, **kwargs) -> None:
    """Skip where the bench extra or the data may be absent; on CI (CI=true) they must be there."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must provide it", pytrace=False)
    pytest.skip(reason, **kwargs)


for _anchor in ("econml", "causalml"):
    if importlib.util.find_spec(_anchor) is None:
        _skip_or_fail(f"{_anchor} is not installed (the bench extra)", allow_module_level=True)

from bench import ihdp, learners  # noqa: E402
from bench._data import ihdp_dir  # noqa: E402


# One method per family keeps this under a minute on a quiet machine.
SMOKE_METHODS = ["ours-auto", "t-raw", "econml-cf", "causalml-x"]


def test_learners_harness_fits_and_scores_every_family():
    result = learners.run(
        1000,
        "rct",
        methods=SMOKE_METHODS,
        repeats=1,
        n_test=200,
        latency_calls=2,
        log=lambda message: None,
    )
    records = {record["key"]: record for record in result["records"]}
    failed = {key: r["error"] for key, r in records.items() if "error" in r}
    assert not failed
    assert set(records) == set(SMOKE_METHODS)
    for record in records.values():
        assert set(record["pehe_arm"]) == set(result["arms"])
        assert math.isfinite(record["pehe"]) and record["pehe"] >= 0
        # No policy can beat the oracle's own choice on the oracle's effects.
        assert record["policy_share"] <= 1 + 1e-12
    assert 0 <= records["econml-cf"]["coverage"] <= 1
    assert 0 <= records["ours-auto"]["coverage"] <= 1
    assert records["t-raw"]["coverage"] is None
    markdown = learners.to_markdown(result, "python -m bench.learners --quick")
    assert "Acceptance (issue 3)" in markdown
    assert "| ours (auto)" in markdown


def test_learners_cli_rejects_an_unknown_method():
    with pytest.raises(SystemExit) as exit_info:
        learners.main(["--quick", "--methods", "ours-auto,no-such-learner"])
    assert exit_info.value.code == 2


def test_ihdp_harness_scores_one_realization():
    if not (ihdp_dir() / "ihdp_npci_1.csv").exists():
        _skip_or_fail(f"IHDP data not found in {ihdp_dir()} (set IHDP_DIR)")
    result = ihdp.run([1], methods=["t-raw", "econml-dr"], log=lambda message: None)
    assert not result["errors"]
    # Realization 1's effects have SD 0.9 around 4: a working T-learner is within a few points.
    assert 0 < result["pehe"]["t-raw"][1] < 3
    # EconML's DRLearner with an estimated propensity can be far off here; it only has to run.
    assert math.isfinite(result["pehe"]["econml-dr"][1])
    assert "| **mean** |" in ihdp.to_markdown(result, "python -m bench.ihdp")
