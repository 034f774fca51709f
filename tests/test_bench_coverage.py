"""The coverage battery runs end to end in its --quick mode (plumbing only, no figure checked)."""

import importlib.util
import os

import pytest

if importlib.util.find_spec("econml") is None or importlib.util.find_spec("causalml") is None:
    if os.environ.get("CI"):
        pytest.fail("the bench extra is not installed; CI must provide it", pytrace=False)
    pytest.skip("econml/causalml not installed (the bench extra)", allow_module_level=True)

from bench import coverage  # noqa: E402
from bench._data import ihdp_dir  # noqa: E402


def test_quick_battery_scores_ours_and_the_forest(capsys):
    if not (ihdp_dir() / "ihdp_npci_1.csv").exists():
        pytest.skip("IHDP data not found")
    assert coverage.main(["--quick", "--no-write"]) == 0
    out = capsys.readouterr().out
    for family in ("nw-a", "six-arm-smooth", "ihdp"):
        assert f"| {family} |" in out
    result = coverage.run(["nw-a"], quick=True, log=lambda _: None)
    row = result["families"][0]
    for method in ("ours", "forest"):
        assert 0.0 <= row[method]["coverage"] <= 1.0
        assert (
            0.0 <= row[method]["min_arm"] <= row[method]["coverage"] + 1e-12
            or len(row[method]["arm_coverage"]) == 1
        )
        assert row[method]["width"] > 0


def test_generators_give_the_truth_they_promise():
    # Nie & Wager B: a randomised trial with e = 1/2 and tau = x1 + log(1 + e^x2)
    cohort = coverage.nie_wager("B")(3000, 500, 0)
    assert set(cohort.propensity.round(6)) == {0.5}
    X = cohort.X_test
    import numpy as np

    np.testing.assert_allclose(
        cohort.oracle["treated"], X["x1"] + np.log1p(np.exp(X["x2"])), rtol=1e-12
    )
    # setup C has a constant effect of 1
    assert (coverage.nie_wager("C")(500, 100, 0).oracle["treated"] == 1).all()
    # the small arm of the four-arm design gets about 3 %
    small = coverage.multi_arm(arms=4, shape="step", confounded=True, small_arm=0.03)(20000, 10, 0)
    assert 0.015 < (small.treatment == "arm4").mean() < 0.05


def test_cli_rejects_an_unknown_family():
    with pytest.raises(SystemExit):
        coverage.main(["--families", "nope", "--no-write"])


def _row(cover, worst, inflation, width, forest_cover, forest_width):
    ours = {"coverage": cover, "min_arm": worst, "inflation": inflation, "width": width}
    forest = {"coverage": forest_cover, "width": forest_width}
    return {"family": "f", "ours": ours, "forest": forest}


def test_each_acceptance_criterion_is_judged_and_printed():
    holds = coverage.criteria(_row(0.90, 0.85, 1.1, 1.0, 0.90, 2.0))
    assert [name for name, _, _ in holds] == list(coverage.CRITERIA)
    assert all(ok for _, ok, _ in holds)
    # too wide, an arm too low, wider than a forest that covers: each named
    misses = coverage.acceptance(_row(0.95, 0.75, 1.3, 3.0, 0.90, 2.0))
    assert len(misses) == 4 and misses[0].startswith("coverage 86-94 %")
    # the forest comparison does not apply when the forest does not cover
    last = coverage.criteria(_row(0.90, 0.85, 1.1, 3.0, 0.50, 2.0))[-1]
    assert last[1] is None and "forest covers 50.0%" in last[2]
    report = coverage.acceptance_report(
        {"families": [_row(0.90, 0.85, 1.1, 1.0, 0.90, 2.0), _row(0.70, 0.6, 0.5, 1.0, 0.9, 2.0)]}
    )
    assert "FAILS: coverage 86-94 % (70.0%)" in report
    assert "Families meeting every criterion: 1 of 2" in report


def test_seeds_override_draws_other_cohorts():
    seen = []
    coverage.run(["nw-a"], quick=True, methods=("ours",), seeds=[7], log=seen.append)
    assert seen and all("seed 7" in line for line in seen)


def _realisation(covered_by_arm, width=1.0):
    import numpy as np

    out = {}
    for arm, covered in covered_by_arm.items():
        covered = np.asarray(covered, bool)
        # t = 0.5 inside, 2 outside: the needed factor is read off these
        out[arm] = {
            "covered": covered,
            "width": np.full(len(covered), width),
            "t": np.where(covered, 0.5, 2.0),
        }
    return out


def test_coverage_is_averaged_over_realisations_with_their_range():
    # two realisations of a two-arm family: 100 % and 60 % covered; arm b covers 80 % / 40 %
    first = _realisation({"a": [1] * 10, "b": [1] * 10})
    second = _realisation({"a": [1] * 8 + [0] * 2, "b": [1] * 4 + [0] * 6})
    figures = coverage.summarise([first, second], [1.0, 3.0])
    assert figures["coverage_by_cohort"] == [1.0, 0.6]
    assert figures["coverage"] == 0.8
    assert figures["arm_coverage"] == {"a": 0.9, "b": 0.7}
    assert figures["min_arm"] == 0.7
    assert figures["fit_s"] == 2.0
    # 32 of 40 pairs at t = 0.5, 8 at t = 2: the 90 % quantile of t lies between them
    assert 0.5 < figures["needed"] <= 2.0


def test_runs_made_apart_are_joined_by_family_and_refuse_other_seeds():
    ours = {"families": [{"family": "nw-b", "seeds": [1, 2], "ours": {"coverage": 0.9}}]}
    ours["methods"] = ["ours"]
    forest = {"families": [{"family": "nw-b", "seeds": [1, 2], "forest": {"coverage": 0.8}}]}
    forest["methods"] = ["forest"]
    joined = coverage.merge([ours, forest])
    assert joined["methods"] == ["ours", "forest"]
    (row,) = joined["families"]
    assert row["ours"]["coverage"] == 0.9 and row["forest"]["coverage"] == 0.8
    # the forest on the first of the same draws only: joined, its count kept
    forest["families"][0]["seeds"] = [1]
    (row,) = coverage.merge([ours, forest])["families"]
    assert row["seeds"] == [1, 2] and row["forest"]["realisations"] == 1
    forest["families"][0]["seeds"] = [3, 4]
    with pytest.raises(ValueError, match="different seeds"):
        coverage.merge([ours, forest])


def test_default_seeds_are_the_held_out_ones_and_tuning_seeds_differ():
    assert not set(coverage.TUNING_SEEDS) & set(coverage.HELD_OUT_SEEDS)
    seen = []
    coverage.run(["nw-a"], quick=True, methods=("ours",), log=seen.append)
    assert seen and all(f"seed {coverage.HELD_OUT_SEEDS[0]}" in line for line in seen)


def test_a_later_run_in_its_own_section_gets_a_lower_heading_named_after_it(tmp_path):
    from bench._report import write_section

    result = coverage.run(["nw-a"], quick=True, methods=("ours",), log=lambda _: None)
    first = coverage.to_markdown(result, "python -m bench.coverage --quick")
    later = coverage.to_markdown(result, "python -m bench.coverage --quick", "coverage-shipped")
    assert first.startswith("## Interval coverage on cohorts the simulator never made\n")
    assert later.startswith("### Interval coverage on cohorts the simulator never made: ")
    assert "`coverage-shipped`" in later.splitlines()[0]
    # the body is the same table
    assert first.split("\n", 1)[1] == later.split("\n", 1)[1]
    # both sections live side by side in one document
    path = tmp_path / "benchmarks.md"
    write_section("coverage", first, path)
    write_section("coverage-shipped", later, path)
    text = path.read_text()
    assert text.index("<!-- END coverage -->") < text.index("<!-- BEGIN coverage-shipped -->")
