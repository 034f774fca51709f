"""The interval capture/replay harness (bench/interval_capture.py, bench/interval_replay.py).

The replay is only worth its figures if the shipped rule replayed is the shipped rule: one
small cohort is fitted twice (plainly, and under the capture) and the replayed intervals must
equal ``predict_interval``'s bit for bit. The rest is checked on hand-made captures.
"""

import numpy as np
import pytest

from bench import coverage, interval_replay
from bench.interval_errors import gap_weighted_disagreement
from bench.interval_capture import (
    CohortCapture,
    capture_cohort,
    load,
    load_dir,
    rivals,
    save,
    world_errors,
    world_miss,
)
from recommender.uplift import UpliftModel
from recommender.uplift._intervals import (
    held_out_bias,
    held_out_bias_terms,
    plausible_disagreement,
)


# ------------------------------------------------------------------ one real, small cohort
@pytest.fixture(scope="module")
def fitted():
    # Nie & Wager B (randomised, two arms), small: seed 1 is a tuning seed of earlier passes
    cohort = coverage.nie_wager("B")(1200, 400, 1)
    captured = capture_cohort(cohort, family="nw-b", seed=1)
    plain = UpliftModel(learner="auto").fit(
        cohort.X, cohort.treatment, cohort.y, propensity=cohort.propensity
    )
    return cohort, captured, plain


def test_replayed_shipped_rule_is_predict_interval_bit_for_bit(fitted):
    cohort, captured, plain = fitted
    lower, upper = plain.predict_interval(cohort.X_test, alpha=coverage.ALPHA)
    scored = interval_replay.replay_scores(captured, interval_replay.shipped)
    expected = coverage._scores(lower["treated"], upper["treated"], cohort.oracle["treated"])
    for key in ("covered", "width", "t"):
        np.testing.assert_array_equal(scored["treated"][key], expected[key])
    # the capture did not change the fit: same effects as the plain model
    np.testing.assert_array_equal(captured.effect, plain.predict_effect(cohort.X_test).to_numpy())


def test_replayed_error_floor_is_predict_interval_bit_for_bit_where_it_binds():
    # Nie & Wager D, n = 3,000 (seed 31, seen): the chosen effect is no better than the
    # plug-in, the worlds agree, and the tenth pass's error floor binds
    cohort = coverage.nie_wager("D")(3000, 1000, 31)
    captured = capture_cohort(cohort, family="nw-d", seed=31, with_rival=False)
    plain = UpliftModel(learner="auto").fit(
        cohort.X, cohort.treatment, cohort.y, propensity=cohort.propensity
    )
    assert plain.error_floor_.min() > 0
    lower, upper = plain.predict_interval(cohort.X_test, alpha=coverage.ALPHA)
    arm = plain.arms_[0]
    scored = interval_replay.replay_scores(captured, interval_replay.shipped)[arm]
    expected = coverage._scores(lower[arm], upper[arm], cohort.oracle[arm])
    for key in ("covered", "width", "t"):
        np.testing.assert_array_equal(scored[key], expected[key])
    before = interval_replay.replay_scores(captured, interval_replay.fifth_pass)[arm]
    assert before["width"].min() < scored["width"].min()  # the floor widened someone


def test_captured_pieces_rebuild_the_fitted_attributes(fitted):
    _, c, plain = fitted
    np.testing.assert_array_equal(c.interval_scale, plain.interval_scale_)
    # the raw bootstrap ratio, floored at 1, is the shipped scale
    np.testing.assert_allclose(np.maximum(c.raw_scale, 1.0), c.interval_scale, rtol=1e-12)
    np.testing.assert_allclose(
        held_out_bias(c.pseudo, c.oof, c.ranking_oof), c.bias_variance, rtol=1e-12
    )
    # the chosen effect out of fold is the mean of the chosen candidates'
    for j in range(len(c.arms)):
        chosen = c.candidate_oof[c.candidate_chosen[:, j], :, j]
        np.testing.assert_allclose(chosen.mean(axis=0), c.oof[:, j], rtol=1e-12)
        # the disagreement from the candidates not clearly worse (2 standard errors) than
        # the best personalized one, rebuilt from the captured gaps
        personalized = ~c.candidate_constant & np.isfinite(c.candidate_loss[:, j])
        plausible = personalized & (c.candidate_gap[:, j] <= 2.0 * c.candidate_gap_se[:, j])
        assert plausible.sum() >= 1
        np.testing.assert_allclose(
            plausible_disagreement(c.candidate_oof[plausible, :, j], c.oof[:, j]),
            c.disagreement_variance[j],
            rtol=1e-12,
        )
    assert c.candidate_test.shape == (len(c.candidate_names), *c.effect.shape)
    assert c.candidate_constant.sum() == 1


def test_capture_survives_a_round_trip(tmp_path, fitted):
    _, c, _ = fitted
    save(c, tmp_path / "nw-b__1.npz")
    back = load(tmp_path / "nw-b__1.npz")
    for name, value in vars(c).items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(back, name), value)
        else:
            assert getattr(back, name) == value
    assert list(load_dir(tmp_path)) == ["nw-b"]


# --------------------------------------------------------------------- hand-made captures
def toy(seed, *, error_sd=1.0, n=2000, constant=False, **overrides):
    """One arm; jackknife 0 and typical variance 1, so with scale 2 the variance is 1 and the
    90 % half-width is 1.645: errors N(0, error_sd²) cover 90 % at error_sd = 1."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(n, 1))
    effect = truth + error_sd * rng.normal(size=(n, 1))
    m = 500
    fields = dict(
        family="toy",
        seed=seed,
        arms=["a"],
        fit_s=1.0,
        truth=truth,
        effect=effect,
        fold_effects=np.repeat(effect[None], 3, axis=0),
        jackknife=np.zeros((n, 1)),
        typical_variance=np.ones(1),
        interval_scale=np.array([2.0]),
        variance_floor=np.zeros(1),
        undetected_variance=np.array([0.3 if constant else 0.0]),
        bias_variance=np.zeros(1),
        disagreement_variance=np.array([0.2]),
        bootstrap_mse=np.array([2.0]),
        bootstrap_jackknife_variance=np.array([1.0]),
        pooled_ratio=2.0,
        replicates=1,
        pseudo=np.zeros((m, 1)),  # residuals 0: no held-out bias
        oof=np.zeros((m, 1)),
        ranking_oof=rng.normal(size=(m, 1)),
        candidate_names=["dr", "dr"],
        candidate_labels=["gbm", "constant"],
        candidate_constant=np.array([False, True]),
        candidate_oof=np.zeros((2, m, 1)),
        candidate_test=np.zeros((2, n, 1)),
        candidate_loss=np.ones((2, 1)),
        candidate_gap=np.zeros((2, 1)),
        candidate_gap_se=np.ones((2, 1)),
        candidate_chosen=np.array([[not constant], [constant]]),
    )
    fields.update(overrides)
    return CohortCapture(**fields)


def test_shipped_rule_takes_the_largest_term_only_for_a_one_effect_arm():
    rng = np.random.default_rng(1)
    noisy = {"pseudo": 0.2 + rng.normal(size=(500, 1)), "ranking_oof": rng.normal(size=(500, 1))}
    constant = toy(1, constant=True, **noisy)
    average, slope = held_out_bias_terms(constant.pseudo, constant.oof, constant.ranking_oof)
    assert average[0] > 0 and slope[0] > 0
    scale, extra = interval_replay.shipped(constant)
    largest = max(0.3 * 2.0, 0.5 * 0.2, slope[0])
    assert extra[0] == pytest.approx(largest + average[0])
    personalized = toy(1, **noisy)
    _, extra = interval_replay.shipped(personalized)
    assert extra[0] == pytest.approx(0.5 * 0.2 + average[0] + slope[0])
    assert scale.tolist() == [2.0]
    # the rule before: the larger of the undetected spread and half the disagreement, plus
    # the whole bias of the residuals as they are
    _, before = interval_replay.third_pass(constant)
    whole = held_out_bias(constant.pseudo, constant.oof, constant.ranking_oof, winsorize=None)
    assert before[0] == pytest.approx(max(0.3 * 2.0, 0.5 * 0.2) + whole[0])


def test_lead_b_lets_the_scale_fall_below_one():
    low = toy(1, bootstrap_mse=np.array([0.4]), interval_scale=np.array([1.0]))
    scale, extra = interval_replay.lead_b(low)
    assert scale.tolist() == pytest.approx([0.4])
    shipped_scale, _ = interval_replay.shipped(low)
    assert shipped_scale.tolist() == [1.0]
    # a ratio that is not finite takes the pooled one; an uncalibrated fit keeps 1
    broken = toy(1, bootstrap_mse=np.array([np.nan]), pooled_ratio=0.7)
    assert interval_replay.lead_b(broken)[0].tolist() == pytest.approx([0.7])
    assert toy(1, replicates=0).raw_scale.tolist() == [1.0]


def test_replayed_coverage_is_what_the_variance_promises():
    # variance 1 + extra 0.1 (half the disagreement); errors of sd 1 cover P(|Z| < 1.645 x
    # sqrt(1.1)) = 92.6 %, within sampling error of 4,000 pairs
    scored = interval_replay.replay_scores(toy(5, n=4000), interval_replay.shipped)
    assert scored["a"]["covered"].mean() == pytest.approx(0.926, abs=0.015)
    np.testing.assert_allclose(scored["a"]["width"], 2 * 1.6448536 * np.sqrt(1.1), rtol=1e-6)


def _family(name, sds):
    return [toy(i, error_sd=sd, family=name) for i, sd in enumerate(sds)]


def test_resampling_counts_and_comparison():
    captures = {
        "good": _family("good", [1.0, 1.0, 1.05, 0.95, 1.0, 1.0]),  # about 92 %: meets
        "wide": _family("wide", [0.7] * 6),  # 98.6 %: fails
    }
    identical = {"shipped": interval_replay.shipped, "same": interval_replay.shipped}
    assert interval_replay.replay_scores(captures["good"][0], interval_replay.third_pass)["a"][
        "width"
    ] == pytest.approx(
        interval_replay.replay_scores(captures["good"][0], interval_replay.shipped)["a"]["width"]
    )
    counts = interval_replay.resampled_counts(captures, identical, resamplings=20)
    assert counts["shipped"].tolist() == [1] * 20
    summary = interval_replay.compare(counts)
    assert summary["same"] == {"expected": 1.0, "better": 0.0, "worse": 0.0}

    def narrower(c):  # half the variance: "wide" comes in to about 90 %, "good" drops to 75 %
        scale, extra = interval_replay.shipped(c)
        return scale / 2, extra / 2

    rules = {"shipped": interval_replay.shipped, "narrower": narrower}
    rows = interval_replay.family_rows(captures, narrower)
    assert [interval_replay.meets(r) for r in rows] == [False, True]
    counts = interval_replay.resampled_counts(captures, rules, resamplings=20, seed=4)
    again = interval_replay.resampled_counts(captures, rules, resamplings=20, seed=4)
    assert counts["narrower"].tolist() == again["narrower"].tolist()
    assert interval_replay.compare(counts)["narrower"]["expected"] == pytest.approx(1.0)


def test_bar_needs_more_families_and_clearly_more_often_better():
    assert interval_replay.passes_bar(10, 9, 0.5, 0.2)
    assert not interval_replay.passes_bar(9, 9, 0.5, 0.1)  # no more families
    assert not interval_replay.passes_bar(10, 9, 0.4, 0.25)  # not twice as often
    assert not interval_replay.passes_bar(10, 9, 0.15, 0.0)  # not by 0.2
    # the sixth pass's bar adds E[count] at least 0.2 above the baseline's
    assert interval_replay.passes_bar(10, 9, 0.5, 0.2, expected_gain=0.2)
    assert not interval_replay.passes_bar(10, 9, 0.5, 0.2, expected_gain=0.15)


def test_held_out_gap_lead_replaces_the_candidates_spread_on_a_one_effect_arm_only():
    rng = np.random.default_rng(3)
    noisy = {"pseudo": 0.2 + rng.normal(size=(500, 1)), "ranking_oof": rng.normal(size=(500, 1))}
    gaps = np.array([[0.0], [0.9]])  # the personalized candidate, then the one-effect one
    constant = toy(1, constant=True, candidate_gap=gaps, **noisy)
    average, slope = held_out_bias_terms(constant.pseudo, constant.oof, constant.ranking_oof)
    assert 0 < slope[0] < 0.9
    scale, extra = interval_replay.held_out_gap(constant)
    # max(slope, gap 0.9) + average; the undetected 0.3 x 2 and ½ x 0.2 no longer enter
    assert extra[0] == pytest.approx(0.9 + average[0], rel=1e-12)
    assert scale.tolist() == [2.0]
    # a negative or non-finite gap counts as 0: the slope term is left
    for gap in (-0.5, np.nan):
        low = toy(1, constant=True, candidate_gap=np.array([[0.0], [gap]]), **noisy)
        assert interval_replay.held_out_gap(low)[1][0] == pytest.approx(slope[0] + average[0])
    # a personalized arm keeps the shipped rule
    personalized = toy(1, candidate_gap=gaps, **noisy)
    np.testing.assert_array_equal(
        interval_replay.held_out_gap(personalized)[1], interval_replay.shipped(personalized)[1]
    )


def test_gap_upper_lead_takes_the_gaps_upper_bound_against_half_the_disagreement():
    rng = np.random.default_rng(3)
    noisy = {"pseudo": 0.2 + rng.normal(size=(500, 1)), "ranking_oof": rng.normal(size=(500, 1))}
    average, slope = held_out_bias_terms(noisy["pseudo"], np.zeros((500, 1)), noisy["ranking_oof"])
    assert 0.005 < slope[0] < 0.1 and average[0] > 0
    rule = interval_replay.gap_upper_rule(1.5)

    def one_effect(gap, se, disagreement=0.2):
        c = toy(
            1,
            constant=True,
            candidate_gap=np.array([[0.0], [gap]]),
            candidate_gap_se=np.array([[0.0], [se]]),
            disagreement_variance=np.array([disagreement]),
            **noisy,
        )
        return rule(c)

    # g + z se = 0.3 + 1.5 x 0.4 = 0.9: the largest; the undetected 0.3 x 2 no longer enters
    scale, extra = one_effect(0.3, 0.4)
    assert extra[0] == pytest.approx(0.9 + average[0], rel=1e-12)
    assert scale.tolist() == [2.0]
    # a bound below ½ disagreement (0.1) leaves it; below the slope term too, the slope term;
    # a negative, or non-finite, g or se counts as 0
    assert one_effect(0.02, 0.02)[1][0] == pytest.approx(0.1 + average[0], rel=1e-12)
    assert one_effect(0.001, 0.001, 0.01)[1][0] == pytest.approx(slope[0] + average[0])
    for gap, se in ((-0.5, 0.1), (np.nan, 0.1), (0.5, np.nan), (np.inf, 0.1)):
        assert one_effect(gap, se)[1][0] == pytest.approx(0.1 + average[0], rel=1e-12)
        assert one_effect(gap, se, 0.01)[1][0] == pytest.approx(slope[0] + average[0])
    # a personalized arm keeps the shipped rule
    personalized = toy(1, candidate_gap=np.array([[0.0], [0.3]]), **noisy)
    np.testing.assert_array_equal(rule(personalized)[1], interval_replay.shipped(personalized)[1])


# ------------------------------------------------------- the eighth pass: the DR error floor
def _with_noise_fields(c, *, m, arms, codes, y, mu, received, oof):
    """``c`` with per-row noise fields, its pseudo-outcomes ψ built from them as the library
    builds them (Γ_a = μ_a + 1{T=a}(y − μ_a)/e, ψ_a = Γ_a − Γ_0) and the given out-of-fold
    effects."""
    rows = np.arange(m)
    gamma = mu.copy()
    gamma[rows, codes] += (y - mu[rows, codes]) / received
    c.codes, c.y, c.mu, c.received = codes, y, mu, received
    c.pseudo = gamma[:, 1:] - gamma[:, :1]
    c.oof = oof
    c.ranking_oof = np.random.default_rng(0).normal(size=oof.shape)
    return c


def test_dr_error_cancels_the_noise_row_by_row_and_misses_the_plug_ins_own_error():
    rng = np.random.default_rng(8)
    m = 200_000
    codes = rng.integers(0, 3, m)  # control and two arms
    x = rng.normal(size=m)
    truth = np.stack([np.zeros(m), 1 + x, 2 - x], axis=1)  # E[y | x, arm]
    received = np.full(m, 1 / 3)
    y = truth[np.arange(m), codes] + 2.0 * rng.normal(size=m)
    tau = truth[:, 1:] - truth[:, :1]
    oof = tau + np.array([0.3, 0.0])  # arm 1 off by 0.3 (MSE 0.09), arm 2 exact
    exact = _with_noise_fields(
        toy(1), m=m, arms=2, codes=codes, y=y, mu=truth, received=received, oof=oof
    )
    exact.arms = ["a", "b"]
    mse, se = interval_replay.dr_error(exact)
    # the same by the other route: d² + 2 d r, d = plug-in − τ̂, r the signed residual term
    residual = (y - truth[np.arange(m), codes]) / received
    for j in range(2):
        d = truth[:, j + 1] - truth[:, 0] - oof[:, j]
        r = np.where(codes == j + 1, residual, 0.0) - np.where(codes == 0, residual, 0.0)
        per_row = d**2 + 2 * d * r
        assert mse[j] == pytest.approx(per_row.mean(), rel=1e-9, abs=1e-12)
        assert se[j] == pytest.approx(per_row.std(ddof=1) / np.sqrt(m), rel=1e-9, abs=1e-12)
    # right nuisances: the squared error itself, and no noise at all where the effect is exact
    assert mse[0] == pytest.approx(0.09, abs=4 * se[0])
    assert se[0] < 0.01
    assert mse[1] == pytest.approx(0.0, abs=1e-12) and se[1] == pytest.approx(0.0, abs=1e-12)
    # the plug-in's own error δ is not seen: outcomes off by 0.5 for arm 1, τ̂ exact, read as
    # MSE(τ̂) − E[δ²] = −0.25 (why the estimate is negative on the battery's cohorts)
    off = truth.copy()
    off[:, 1] += 0.5
    biased = _with_noise_fields(
        toy(1), m=m, arms=2, codes=codes, y=y, mu=off, received=received, oof=tau
    )
    biased.arms = ["a", "b"]
    mse, se = interval_replay.dr_error(biased)
    assert mse[0] == pytest.approx(-0.25, abs=4 * se[0])
    assert mse[1] == pytest.approx(0.0, abs=1e-12)


def test_dr_error_needs_the_noise_fields():
    with pytest.raises(ValueError, match="toy seed 1: the capture has no per-row noise fields"):
        interval_replay.dr_error(toy(1))


def _floored_toy(shift, n_rows=4000):
    """One arm: τ̂_oof = plug-in ± shift (random signs: no held-out bias to speak of), so the
    DR estimate is shift² up to the residual term; noise fields exact."""
    rng = np.random.default_rng(2)
    codes = np.tile([0, 1], n_rows // 2)
    mu = np.stack([np.zeros(n_rows), np.ones(n_rows)], axis=1)
    y = mu[np.arange(n_rows), codes] + rng.normal(size=n_rows)
    signs = rng.choice([-1.0, 1.0], n_rows)
    oof = (mu[:, 1] - mu[:, 0] - shift * signs)[:, None]
    c = toy(3)
    return _with_noise_fields(
        c, m=n_rows, arms=1, codes=codes, y=y, mu=mu, received=np.full(n_rows, 0.5), oof=oof
    )


def test_dr_floor_rule_floors_every_person_or_tops_up_the_arm():
    c = _floored_toy(2.0)  # DR estimate about 4: above the shipped variance (1.1)
    mse, se = interval_replay.dr_error(c)
    assert 3.5 < mse[0] < 4.5
    scale, extra = interval_replay.shipped(c)
    bound = mse[0] - 1.0 * se[0]
    # person: the floor combine needs so that max(V, F) results
    s, e, floor = interval_replay.dr_floor_rule(1.0, "person")(c)
    np.testing.assert_array_equal(s, scale)
    np.testing.assert_array_equal(e, extra)
    assert floor[0] == pytest.approx(bound - extra[0], rel=1e-12)
    half = interval_replay.replay_scores(c, interval_replay.dr_floor_rule(1.0, "person"))["a"]
    np.testing.assert_allclose(half["width"], 2 * 1.6448536 * np.sqrt(bound), rtol=1e-6)
    # arm: the typical variance (1 x scale 2 = 2, plus extra) topped up to F
    s, e = interval_replay.dr_floor_rule(1.0, "arm")(c)
    assert e[0] == pytest.approx(extra[0] + bound - (2.0 + extra[0]), rel=1e-12)
    # an estimate under the shipped variance (or negative) changes nothing
    low = _floored_toy(0.1)
    for how in ("person", "arm"):
        for a, b in zip(
            interval_replay.replay_scores(low, interval_replay.dr_floor_rule(0.0, how))[
                "a"
            ].values(),
            interval_replay.replay_scores(low, interval_replay.shipped)["a"].values(),
        ):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="how must be"):
        interval_replay.dr_floor_rule(0.0, "row")


def test_registered_dr_floor_lead_floors_every_person_at_the_estimate_itself():
    # the eighth pass's lead as fixed before its fresh draws: z = 0, every person's variance
    c = _floored_toy(2.0)
    mse, _ = interval_replay.dr_error(c)
    _, extra, floor = interval_replay.RULES["dr-floor"](c)
    assert floor[0] == pytest.approx(mse[0] - extra[0], rel=1e-12)
    assert "dr-floor" in interval_replay.RULES


def test_captures_made_before_the_noise_fields_still_load(tmp_path):
    old = toy(4)  # no per-row noise fields, as every capture before the eighth pass
    save(old, tmp_path / "toy__4.npz")
    with np.load(tmp_path / "toy__4.npz") as stored:
        assert "codes" not in stored.files
    back = load(tmp_path / "toy__4.npz")
    assert back.codes is None and back.mu is None
    np.testing.assert_array_equal(back.effect, old.effect)
    # every rule but the DR floor replays it
    assert set(interval_replay.replay_scores(back, interval_replay.shipped)) == {"a"}
    with pytest.raises(ValueError, match="no per-row noise fields"):
        interval_replay.replay_scores(back, interval_replay.RULES["dr-floor"])


# ------------------------------------------------ ninth pass: the bootstrap's known truth
class _World:
    """What ``world_errors`` reads of a re-simulated world's nuisance."""

    def __init__(self, codes, y, mu, received):
        self.codes, self.y, self.mu = codes, y, mu
        self.propensity = type("P", (), {"received": received})()
        rows = np.arange(len(codes))
        self.scores = mu.copy()
        self.scores[rows, codes] += (y - mu[rows, codes]) / received

    def pseudo_effects(self):
        return self.scores[:, 1:] - self.scores[:, :1]


def _planted_world(seed, m):
    """A two-arm world, planted effect 1 + x, whose plug-in is off by 0.5 (E[δ*²] = 0.25)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2, m)
    x = rng.normal(size=m)
    planted = (1 + x)[:, None]
    truth = np.stack([x, 2 * x + 1], axis=1)  # μ_0, μ_1: μ_1 − μ_0 = planted
    y = truth[np.arange(m), codes] + rng.normal(size=m)
    mu = truth + np.array([0.0, 0.5])
    return _World(codes, y, mu, np.full(m, 0.5)), planted, rng


def test_world_errors_measure_the_plug_in_and_the_effect_against_the_planted_truth():
    world, planted, _ = _planted_world(11, 200_000)
    oof = planted + 0.3  # the refitted effect off by 0.3: MSE 0.09
    plugin, effect, dr = world_errors(world, planted, oof)
    assert plugin[0] == pytest.approx(0.25, rel=1e-9)
    assert effect[0] == pytest.approx(0.09, rel=1e-9)
    # the world's DR estimate misses the plug-in's error, as on the real rows: 0.09 − 0.25
    assert dr[0] == pytest.approx(0.09 - 0.25, abs=0.02)


def test_rivals_pick_the_farthest_plausible_candidate():
    rng = np.random.default_rng(12)
    m = 400  # few rows: a distance of 0.09 is not clearly worse (its se is about 0.09)
    pseudo = rng.normal(size=(m, 1)) * 3

    def candidate(offset):
        return type("C", (), {"oof": (pseudo * 0.0 + offset)})()

    far, near, chosen, constant, bad = (
        candidate(0.3 * rng.choice([-1, 1], (m, 1))),
        candidate(0.1 * rng.choice([-1, 1], (m, 1))),
        candidate(np.zeros((m, 1))),
        candidate(np.full((m, 1), 0.9)),
        candidate(pseudo * 0.0 + 5.0),  # clearly worse
    )
    candidates = [chosen, near, far, constant, bad]
    picked, distance = rivals(
        candidates,
        pseudo,
        chosen.oof,
        [[id(chosen)]],
        [False, False, False, True, False],
    )
    assert picked == [2]  # not the constant (farther), nor the clearly worse one
    assert distance[0] == pytest.approx(0.09, rel=1e-9)
    # a member of the arm's ensemble counts: chosen = the mean of (chosen, chosen, far)
    mean = (2 * chosen.oof + far.oof) / 3
    picked, distance = rivals(
        candidates, pseudo, mean, [[id(chosen), id(far)]], [False] * 3 + [True, False]
    )
    assert picked == [2]
    assert distance[0] == pytest.approx(0.04, rel=1e-9)


def test_rival_scale_rule_reads_the_scale_in_the_rival_world_for_arms_with_a_rival():
    c = toy(5, rival=np.array([0]), rival_mse=np.array([6.0]))
    c.rival_jackknife_variance = np.array([1.0])
    c.rival_distance = np.array([0.1])
    scale, extra = interval_replay.rival_scale_rule("max")(c)
    np.testing.assert_array_equal(scale, [6.0])  # max(shipped 2, rival ratio 6)
    np.testing.assert_array_equal(extra, interval_replay.shipped(c)[1])
    assert interval_replay.rival_scale_rule("mean")(c)[0][0] == pytest.approx(4.0)
    # a rival ratio under the shipped scale changes nothing under "max"
    c.rival_mse = np.array([1.5])
    np.testing.assert_array_equal(interval_replay.rival_scale_rule("max")(c)[0], [2.0])
    # no rival: the shipped scale
    c.rival = np.array([-1])
    c.rival_mse = np.array([6.0])
    np.testing.assert_array_equal(interval_replay.rival_scale_rule("max")(c)[0], [2.0])
    # "rougher": a rival whose out-of-fold effect spreads no more than the chosen is ignored
    c.rival = np.array([0])
    np.testing.assert_array_equal(interval_replay.rival_scale_rule("max", True)(c)[0], [2.0])
    c.candidate_oof = c.candidate_oof + np.random.default_rng(0).normal(size=c.candidate_oof.shape)
    np.testing.assert_array_equal(interval_replay.rival_scale_rule("max", True)(c)[0], [6.0])
    with pytest.raises(ValueError, match="no rival-world fields"):
        interval_replay.rival_ratio(toy(6))


def test_world_floor_rule_adds_the_worlds_plug_in_error_to_the_dr_estimate():
    c = _floored_toy(0.1)  # DR estimate about 0.01: under the shipped variance alone
    c.world_plugin_mse, c.world_oof_mse, c.world_dr = (
        np.array([3.0]),
        np.array([0.5]),
        np.array([-1.5]),
    )
    mse, se = interval_replay.dr_error(c)
    _, extra, floor = interval_replay.world_floor_rule(0.0, "plugin")(c)
    assert floor[0] == pytest.approx(mse[0] + 3.0 - extra[0], rel=1e-12)
    _, extra, floor = interval_replay.world_floor_rule(1.0, "gap")(c)
    assert floor[0] == pytest.approx(mse[0] + 2.0 - se[0] - extra[0], rel=1e-12)
    with pytest.raises(ValueError, match="no bootstrap-world fields"):
        interval_replay.world_correction(toy(7))


def test_registered_world_floor_lead_adds_the_worlds_whole_miss_at_z_zero():
    # the ninth pass's lead as fixed before its fresh draws: κ* = world oof error − world DR
    c = _floored_toy(0.1)
    c.world_plugin_mse, c.world_oof_mse, c.world_dr = (
        np.array([3.0]),
        np.array([0.5]),
        np.array([-1.5]),
    )
    mse, _ = interval_replay.dr_error(c)
    _, extra, floor = interval_replay.RULES["world-floor"](c)
    assert floor[0] == pytest.approx(mse[0] + 2.0 - extra[0], rel=1e-12)
    assert "world-floor" in interval_replay.RULES


# ---------------------------------------------- tenth pass: how stable the world's reading is
def test_world_miss_is_the_effects_error_less_the_dr_estimate_with_its_row_level_error():
    m = 5000
    world, planted, rng = _planted_world(13, m)
    oof = planted + 0.3 * rng.choice([-1.0, 1.0], (m, 1))
    _, effect, dr = world_errors(world, planted, oof)
    miss, se = world_miss(world, planted, oof)
    assert miss[0] == pytest.approx(effect[0] - dr[0], rel=1e-12)
    # by hand: per row (τ̂ − τ)² − ((ψ − τ̂)² − r²), its sd over √m
    residual = (world.y - world.mu[np.arange(m), world.codes]) / 0.5
    psi = world.pseudo_effects()[:, 0]
    per_row = (oof[:, 0] - planted[:, 0]) ** 2 - ((psi - oof[:, 0]) ** 2 - residual**2)
    assert se[0] == pytest.approx(per_row.std(ddof=1) / np.sqrt(m), rel=1e-12)


def test_world_miss_spread_between_replicates_and_over_rows():
    c = toy(8)
    c.replicate_oof_mse = np.array([[0.5], [0.7], [0.9]])
    c.replicate_dr = np.array([[-0.1], [0.1], [-0.1]])  # κ* = 0.6, 0.6, 1.0
    c.replicate_miss_se = np.array([[0.1], [0.2], [0.2]])
    kappa, between, rows = interval_replay.world_miss_spread(c)
    assert kappa[0] == pytest.approx(2.2 / 3, rel=1e-12)
    assert between[0] == pytest.approx(np.std([0.6, 0.6, 1.0], ddof=1) / np.sqrt(3), rel=1e-12)
    assert rows[0] == pytest.approx(np.sqrt((0.01 + 0.04 + 0.04) / 3 / 3), rel=1e-12)
    c.replicate_oof_mse, c.replicate_dr, c.replicate_miss_se = (
        c.replicate_oof_mse[:1],
        c.replicate_dr[:1],
        c.replicate_miss_se[:1],
    )
    assert np.isnan(interval_replay.world_miss_spread(c)[1][0])  # one world: no spread known
    with pytest.raises(ValueError, match="no per-replicate world fields"):
        interval_replay.world_miss_spread(toy(9))


def test_stable_floor_rule_applies_the_world_floor_only_where_its_reading_is_steady():
    c = _floored_toy(0.1)
    mse, se = interval_replay.dr_error(c)
    c.replicate_oof_mse = np.array([[2.0], [2.0]])
    c.replicate_dr = np.array([[0.0], [0.0]]) + 0.5 * se[0] * np.array([[1.0], [-1.0]])
    c.replicate_miss_se = np.full((2, 1), se[0])
    c.world_oof_mse, c.world_dr = c.replicate_oof_mse.mean(0), c.replicate_dr.mean(0)
    c.world_plugin_mse = np.zeros(1)
    _, extra, floor = interval_replay.stable_floor_rule("between", 0.0, 1.0)(c)
    # steady (between-replicate se 0.5 se(D)): the ninth pass's floor itself
    np.testing.assert_array_equal(floor, interval_replay.world_floor(c)[2])
    assert floor[0] == pytest.approx(mse[0] + 2.0 - extra[0], rel=1e-12)
    # shrunk by z se(F), se(F)² = se(D)² + se(κ̄)²
    _, _, shrunk = interval_replay.stable_floor_rule("between", 1.0, None)(c)
    se_f = np.sqrt(se[0] ** 2 + (0.5 * se[0]) ** 2)
    assert shrunk[0] == pytest.approx(mse[0] + 2.0 - se_f - extra[0], rel=1e-12)
    # unsteady between the replicates: no floor (the average-effect floor stays)
    c.replicate_dr = np.array([[0.0], [0.0]]) + 3 * se[0] * np.array([[1.0], [-1.0]])
    _, _, floor = interval_replay.stable_floor_rule("between", 0.0, 1.0)(c)
    np.testing.assert_array_equal(floor, c.variance_floor)
    # one replicate: its spread is not known, so no floor under a "between" gate
    c.replicate_oof_mse, c.replicate_dr = c.replicate_oof_mse[:1], c.replicate_dr[:1] * 0
    c.replicate_miss_se = c.replicate_miss_se[:1] * 0.5
    np.testing.assert_array_equal(
        interval_replay.stable_floor_rule("between", 0.0, 1.0)(c)[2], c.variance_floor
    )
    # ... and the rows' spread decides under a "rows" gate
    assert interval_replay.stable_floor_rule("rows", 0.0, 1.0)(c)[2][0] > 1.0


def test_registered_stable_floor_lead_gates_on_the_replicates_spread_and_on_zero():
    # the tenth pass's lead as fixed before its fresh draws: g = 1 on the replicates, t = 2
    c = _floored_toy(0.1)
    mse, se = interval_replay.dr_error(c)
    c.replicate_oof_mse = np.array([[2.0], [2.0]])
    c.replicate_dr = 0.5 * se[0] * np.array([[1.0], [-1.0]])
    c.replicate_miss_se = np.full((2, 1), 0.1 * se[0])
    _, extra, floor = interval_replay.RULES["stable-floor"](c)
    assert floor[0] == pytest.approx(mse[0] + 2.0 - extra[0], rel=1e-12)
    # a floor within 2 se(F) of 0 is not read
    c.replicate_oof_mse = np.full((2, 1), 1.5 * se[0] - mse[0])
    np.testing.assert_array_equal(interval_replay.RULES["stable-floor"](c)[2], c.variance_floor)


def test_registered_larger_extra_lead_takes_the_larger_term_for_a_personalized_arm():
    # the eleventh pass's lead as fixed before its fresh draws: a personalized arm adds
    # max(½ disagreement, slope term) + average term; an arm given one effect for everyone and
    # the error floor as shipped (every person's whole variance at least F)
    assert interval_replay.ELIGIBLE == ("larger-extra",)
    lead = interval_replay.RULES["larger-extra"]
    c = _floored_toy(0.1)
    rng = np.random.default_rng(3)
    c.ranking_oof = c.oof + 0.3 * rng.normal(size=c.oof.shape)
    mse, se = interval_replay.dr_error(c)
    c.replicate_oof_mse = np.array([[2.0], [2.0]])
    c.replicate_dr = 0.5 * se[0] * np.array([[1.0], [-1.0]])
    c.replicate_miss_se = np.full((2, 1), 0.1 * se[0])
    average, slope = held_out_bias_terms(c.pseudo, c.oof, c.ranking_oof)
    for disagreement in (0.0, 2 * slope[0] + 0.5):  # the slope term larger, then ½ disagreement
        c.disagreement_variance = np.array([disagreement])
        scale, extra, floor = lead(c)
        assert extra[0] == pytest.approx(max(0.5 * disagreement, slope[0]) + average[0])
        assert extra[0] < interval_replay.RULES["stable-floor"](c)[1][0] or disagreement == 0
        np.testing.assert_array_equal(scale, c.interval_scale)
        assert floor[0] == pytest.approx(max(mse[0] + 2.0 - extra[0], 0.0), rel=1e-12)
    # an arm given one effect for everyone: the shipped extra
    c.undetected_variance = np.array([0.3])
    np.testing.assert_array_equal(lead(c)[1], interval_replay.RULES["stable-floor"](c)[1])


def test_capture_records_the_worlds_own_held_out_bias_terms(fitted):
    _, c, _ = fitted
    # one (average, slope) pair per replicate and arm, as the library reads them
    assert c.replicate_bias_slope.shape == c.replicate_bias_average.shape
    assert c.replicate_bias_slope.shape == (c.replicates, len(c.arms))
    assert np.isfinite(c.replicate_bias_slope).all() and (c.replicate_bias_slope >= 0).all()
    assert (c.replicate_bias_average >= 0).all()


def test_world_net_rule_takes_the_worlds_reading_off_a_personalized_arms_slope_term():
    rng = np.random.default_rng(4)
    c = _floored_toy(0.1)
    c.ranking_oof = c.oof + 0.3 * rng.normal(size=c.oof.shape)
    average, slope = held_out_bias_terms(c.pseudo, c.oof, c.ranking_oof)
    assert slope[0] > 0
    c.replicate_oof_mse, c.replicate_dr = np.zeros((3, 1)), np.zeros((3, 1))
    c.replicate_miss_se = np.ones((3, 1))
    c.replicate_bias_average = np.zeros((3, 1))
    shared = 0.5 * c.disagreement_variance[0]
    for world in (0.0, 0.4 * slope[0], 2 * slope[0]):  # none, part, more than the data's
        c.replicate_bias_slope = world + np.array([[-0.01], [0.0], [0.01]])
        _, extra, _ = interval_replay.RULES["world-net-slope"](c)
        assert extra[0] == pytest.approx(shared + max(slope[0] - world, 0.0) + average[0])
    # z = 1: net of the worlds' mean less one standard error between the replicates
    c.replicate_bias_slope = 0.4 * slope[0] + np.array([[-0.01], [0.0], [0.01]])
    se = 0.01 / np.sqrt(3)
    _, extra, _ = interval_replay.RULES["world-net-slope-z1"](c)
    assert extra[0] == pytest.approx(shared + 0.6 * slope[0] + se + average[0])
    # one replicate: its spread is not known, nothing is taken off under z
    for name in ("replicate_oof_mse", "replicate_dr", "replicate_miss_se", "replicate_bias_slope"):
        setattr(c, name, getattr(c, name)[:1])
    c.replicate_bias_average = c.replicate_bias_average[:1]
    _, extra, _ = interval_replay.RULES["world-net-slope-z1"](c)
    assert extra[0] == pytest.approx(shared + slope[0] + average[0])
    # an arm given one effect for everyone keeps the shipped extra
    c.undetected_variance = np.array([0.3])
    np.testing.assert_array_equal(
        interval_replay.RULES["world-net-slope"](c)[1], interval_replay.fifth_pass(c)[1]
    )


def test_gap_weighted_disagreement_weighs_each_candidate_by_its_held_out_gap():
    m = 4000
    rng = np.random.default_rng(5)
    candidate = np.where(np.arange(m) % 2 == 0, 0.5, -0.5)  # d = 0.25 from the chosen 0
    noise = rng.normal(size=m)
    noise -= candidate * np.mean(noise * candidate) / 0.25  # orthogonal to the candidate

    def capture(pseudo):
        return toy(
            1,
            pseudo=pseudo[:, None],
            oof=np.zeros((m, 1)),
            candidate_oof=np.stack([candidate, np.zeros(m)])[:, :, None],
            candidate_loss=np.array([[1.0], [1.1]]),
        )

    # halfway between the two effects: the gap is 0, the weight is the shipped ½
    tie = capture(candidate / 2 + noise)
    assert gap_weighted_disagreement(tie)[0] == pytest.approx(0.125, rel=1e-9)
    # the chosen effect is the truth: the gap reads +d, many standard errors clear of 0
    chosen = capture(noise)
    gap = (noise - candidate) ** 2 - noise**2
    g, s = gap.mean(), gap.std(ddof=1) / np.sqrt(m)
    weight = 1 / (1 + np.exp(2 * g * 0.25 / s**2))
    assert weight < 1e-6
    assert gap_weighted_disagreement(chosen)[0] == pytest.approx(0.25 * weight)
    # the rule puts it where the shipped rule puts ½ disagreement (no slope: the ranking is
    # the chosen effect, 0)
    tie.ranking_oof = np.zeros((m, 1))
    tie.disagreement_variance = np.array([0.25])
    tie.codes, tie.y = np.tile([0, 1], m // 2), np.zeros(m)
    tie.mu, tie.received = np.zeros((m, 2)), np.full(m, 0.5)
    tie.replicate_oof_mse = tie.replicate_dr = np.zeros((1, 1))
    tie.replicate_miss_se = np.ones((1, 1))
    np.testing.assert_allclose(
        interval_replay.RULES["gap-weighted"](tie)[1], interval_replay.shipped(tie)[1]
    )
