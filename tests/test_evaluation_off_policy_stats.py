"""The statistics of the off-policy estimates and of the gate that uses them, on logs drawn
from a known bandit of this file's own (not ``recommender.simulate``): per context type a mean
outcome per arm, a logging distribution per type (epsilon-greedy or a near-deterministic
Thompson-like softmax), heavy-tailed noise, and a deterministic policy whose true value is
computed exactly from the tables.

Each check runs 400 fixed seeds at once (the draws are vectorised; the estimators are called
per log) and compares with what theory says: IPS and DR unbiased with the right probabilities
(DR with a wrong outcome model too), SNIPS consistent, 95 % intervals covering the true value
in 95 % of logs up to the binomial spread of 400 repeats (computed below), and the gate
promoting a truly worse challenger as often as its interval implies, not more.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, norm
from test_loop_carry import SETTINGS as LOOP_SETTINGS
from test_loop_carry import _log as _loop_log
from test_loop_carry import catalog, evidence  # noqa: F401 (fixtures)

from recommender.errors import InputError
from recommender.evaluation import off_policy_values, unservable
from recommender.registry import gate_decision, policy_value_scores

SEEDS = 400
ALPHA = 0.05


def _bandit(K, T, seed, *, logging, eps=0.2, temp=0.5, floor=0.0):
    """Type shares, mean outcomes (T, K), logging probabilities (T, K), a policy and its true
    value against usual care (arm 0) for all."""
    rng = np.random.default_rng(seed)
    share = rng.dirichlet(np.ones(T) * 3)
    mean = rng.normal(0, 3, size=(T, K))
    if logging == "epsilon-greedy":
        greedy = rng.integers(0, K, size=T)
        logged = np.full((T, K), eps / K)
        logged[np.arange(T), greedy] += 1 - eps
    else:  # Thompson-like: a near-deterministic softmax of a noisy belief, floored
        belief = mean + rng.normal(0, 1, size=(T, K))
        z = np.exp((belief - belief.max(1, keepdims=True)) / temp)
        logged = np.maximum(z / z.sum(1, keepdims=True), floor)
        logged /= logged.sum(1, keepdims=True)
    policy = rng.integers(0, K, size=T)
    policy[0] = 1  # at least one type where the policy is not usual care
    truth = float((share * (mean[np.arange(T), policy] - mean[:, 0])).sum())
    return dict(K=K, T=T, share=share, mean=mean, logged=logged, policy=policy, truth=truth)


def _draw(bandit, n, seed, *, noise):
    """SEEDS logs of n rows at once: type, arm index, its logged probability, outcome."""
    rng = np.random.default_rng(seed)
    kind = np.searchsorted(np.cumsum(bandit["share"]), rng.random((SEEDS, n)), side="right")
    kind = kind.clip(0, bandit["T"] - 1)
    cumulative = np.cumsum(bandit["logged"], axis=1)[kind]
    arm = (rng.random((SEEDS, n))[..., None] > cumulative).sum(-1).clip(0, bandit["K"] - 1)
    if noise == "t3":  # finite variance, heavy tails
        error = 2.0 * rng.standard_t(3, size=(SEEDS, n))
    else:  # skewed: a centred log-normal
        error = 2.0 * (rng.lognormal(0, 1, size=(SEEDS, n)) - np.exp(0.5))
    return kind, arm, bandit["logged"][kind, arm], bandit["mean"][kind, arm] + error


def _names(K):
    return np.array(["none"] + [f"arm{k}" for k in range(1, K)], dtype=object)


def _aipw(model, kind, arm, propensity, y):
    """AIPW scores per arm from a fixed outcome model (T, K): no fitting, so no leakage."""
    scores = model[kind].copy()
    rows = np.arange(len(y))
    scores[rows, arm] += (y - model[kind, arm]) / propensity
    return scores


def _band(level):
    """The range of coverage 400 repeats show 99.9 % of the time when the true rate is level."""
    return binom.ppf(0.0005, SEEDS, level) / SEEDS, binom.ppf(0.9995, SEEDS, level) / SEEDS


def _repeat(bandit, n, seed, *, noise, model):
    """Every estimator's estimate and interval on each of the SEEDS logs."""
    kind, arm, propensity, y = _draw(bandit, n, seed, noise=noise)
    names = _names(bandit["K"])
    out = {m: np.empty((SEEDS, 3)) for m in ("dr", "ips", "snips")}
    for s in range(SEEDS):
        scores = pd.DataFrame(
            _aipw(model, kind[s], arm[s], propensity[s], y[s]), columns=list(names)
        )
        values = off_policy_values(
            names[arm[s]],
            propensity[s],
            y[s],
            names[bandit["policy"][kind[s]]],
            dr_scores=scores,
            alpha=ALPHA,
        )
        for method, value in values.items():
            out[method][s] = value.estimate, value.lower, value.upper
    return out


SCENARIOS = {
    # arms, types, rows, logging, noise, outcome model, bandit options
    "3 arms, epsilon-greedy, t3 noise": (3, 5, 2000, "epsilon-greedy", "t3", "right", {}),
    "6 arms, epsilon 0.1, log-normal noise": (
        6,
        8,
        2000,
        "epsilon-greedy",
        "lognormal",
        "right",
        {"eps": 0.1},
    ),
    "4 arms, Thompson-like (p down to 0.01), wrong outcome model": (
        4,
        6,
        2000,
        "thompson",
        "t3",
        "wrong",
        {"temp": 0.3, "floor": 0.01},
    ),
    "2 arms, 500 rows, outcome model of zeros": (2, 4, 500, "epsilon-greedy", "t3", "zero", {}),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_estimates_are_unbiased_and_95_intervals_cover_95_percent(scenario):
    K, T, n, logging, noise, which, options = SCENARIOS[scenario]
    seed = list(SCENARIOS).index(scenario)
    bandit = _bandit(K, T, seed, logging=logging, **options)
    model = {
        "right": bandit["mean"],
        # off by up to several points per arm and type: DR must stay unbiased regardless
        "wrong": bandit["mean"] + np.random.default_rng(99).normal(0, 3, size=(T, K)),
        "zero": np.zeros((T, K)),
    }[which]
    values = _repeat(bandit, n, 10 + seed, noise=noise, model=model)
    low, high = _band(1 - ALPHA)
    for method, table in values.items():
        error = table[:, 0] - bandit["truth"]
        se = error.std(ddof=1) / np.sqrt(SEEDS)
        # IPS and DR are unbiased; SNIPS's bias is of order 1/n, far below the Monte Carlo error
        assert abs(error.mean()) < 4 * se, (method, error.mean(), se)
        covered = np.mean((table[:, 1] <= bandit["truth"]) & (bandit["truth"] <= table[:, 2]))
        assert low <= covered <= high, (method, covered, (low, high))


def test_the_coverage_check_is_decisive_an_interval_a_third_too_narrow_fails_it():
    K, T, n, logging, noise, _, options = SCENARIOS["3 arms, epsilon-greedy, t3 noise"]
    bandit = _bandit(K, T, 0, logging=logging, **options)
    table = _repeat(bandit, n, 10, noise=noise, model=bandit["mean"])["dr"]
    half = (table[:, 2] - table[:, 1]) / 2 * (2 / 3)
    covered = np.mean(np.abs(table[:, 0] - bandit["truth"]) <= half)
    assert covered < _band(1 - ALPHA)[0]


def test_hand_computed_values_of_a_six_row_log():
    # Open Bandit Pipeline's IPW, SNIPW and DR (policy minus usual care for all) agree with
    # these to 1e-15 on 20,000-row logs; here the same formulas by hand.
    arm = np.array(["none", "a", "b", "a", "none", "b"], dtype=object)
    p = np.array([0.5, 0.25, 0.25, 0.8, 0.1, 1e-4])
    y = np.array([1.0, -2.0, 3.0, 0.5, -1.0, 2.0])
    target = np.array(["a", "a", "a", "a", "b", "b"], dtype=object)
    mu = {"none": 0.5, "a": -1.0, "b": 2.5}  # an outcome model, one figure per arm
    # the AIPW scores as doubly_robust_scores builds them: mu + 1[served] (y - mu) / p
    scores = pd.DataFrame({k: m + (arm == k) * (y - m) / p for k, m in mu.items()})
    v = off_policy_values(arm, p, y, target, dr_scores=scores, alpha=0.1)
    follows = np.array([0, 4, 0, 1.25, 0, 1e4])  # 1/p where the log served the policy's arm
    usual = np.array([2, 0, 0, 0, 10, 0])  # a probability of 1e-4 is used as it is: no clipping
    assert v["ips"].estimate == pytest.approx(((follows - usual) * y).mean(), abs=1e-12)
    snips = (follows * y).sum() / follows.sum() - (usual * y).sum() / usual.sum()
    assert v["snips"].estimate == pytest.approx(snips, abs=1e-12)
    # its interval by the delta method: each weight over the weights' mean (not 1 here)
    v1 = (follows * y).sum() / follows.sum()
    v0 = (usual * y).sum() / usual.sum()
    terms = follows * (y - v1) / follows.mean() - usual * (y - v0) / usual.mean()
    half = norm.ppf(0.95) * terms.std(ddof=1) / np.sqrt(6)
    assert v["snips"].upper - v["snips"].estimate == pytest.approx(half, rel=1e-12)
    chosen = np.array([-1.0, -1.0, -1.0, -1.0, 2.5, 2.5])
    dr = chosen + follows * (y - chosen) - (0.5 + usual * (y - 0.5))
    assert v["dr"].estimate == pytest.approx(dr.mean(), abs=1e-9)
    half = norm.ppf(0.95) * dr.std(ddof=1) / np.sqrt(6)
    assert (v["dr"].lower, v["dr"].upper) == pytest.approx((dr.mean() - half, dr.mean() + half))
    assert all(e.unmeasured == 0 for e in v.values())


def test_an_arm_no_row_was_served_is_said_not_estimated_by_weights():
    rng = np.random.default_rng(3)
    n = 1000
    arm = rng.choice(np.array(["none", "a"], dtype=object), size=n)
    y = rng.normal(size=n) + 5.0
    target = np.where(np.arange(n) < 300, "b", "a").astype(object)  # b was never served
    scores = pd.DataFrame({"none": y, "a": y, "b": y - 1.0})
    values = off_policy_values(arm, np.full(n, 0.5), y, target, dr_scores=scores)
    # weights know nothing of b: IPS and SNIPS give no figure (before: IPS about -5 with an
    # interval a point wide, the mean outcome of usual care, as if it were the policy's value)
    for method in ("ips", "snips"):
        assert np.isnan([values[method].estimate, values[method].lower]).all()
    # DR gives the outcome model's figure there, and every estimate says on how many rows
    assert np.isfinite(values["dr"].estimate)
    assert {v.unmeasured for v in values.values()} == {300}
    # usual care never served: nothing measures the contrast
    treated = off_policy_values(np.full(n, "a", dtype=object), np.full(n, 0.5), y, arm)
    assert np.isnan(treated["ips"].estimate) and treated["ips"].unmeasured == (arm == "a").sum()


def test_rows_served_with_probability_one_are_counted_unmeasured():
    arm = np.array(["a", "a", "none", "none", "b", "b"], dtype=object)
    p = np.array([1.0, 0.5, 1.0, 0.5, 0.5, 0.5])
    target = np.array(["a", "a", "a", "a", "none", "b"], dtype=object)
    # row 0: a served for certain, so usual care could not be; row 2: usual care for certain,
    # so a could not be; row 4: the policy is usual care there, nothing to contrast
    assert unservable(arm, p, target).tolist() == [False, False, True, False, False, False]
    assert unservable(arm, p, np.full(6, "none", dtype=object))[[0, 2]].tolist() == [True, False]
    values = off_policy_values(arm, p, np.arange(6.0), target)
    assert values["ips"].unmeasured == 2 and np.isfinite(values["ips"].estimate)
    # a row's logged candidates (positive probabilities) count too
    candidates = [None, {"a"}, None, None, None, None]
    assert (
        off_policy_values(arm, p, np.arange(6.0), target, candidates=candidates)["ips"].unmeasured
        == 3
    )


def test_a_score_that_is_not_a_number_is_refused_naming_its_rows():
    arm = np.array(["none", "a"] * 10, dtype=object)
    scores = pd.DataFrame({"none": np.zeros(20), "a": np.zeros(20)})
    scores.loc[[3, 7], "a"] = np.nan
    with pytest.raises(InputError, match=r"2 of 20 rows .* at rows 3, 7"):
        off_policy_values(arm, np.full(20, 0.5), np.zeros(20), np.full(20, "a"), dr_scores=scores)


def test_tiny_probabilities_leave_few_effective_rows_which_the_estimate_says():
    # logged probabilities down to 0.001 on 2,000 rows: too few rows carry the weights for a
    # normal interval; every estimate says so (below the 100 effective rows of the notes)
    bandit = _bandit(4, 6, 7, logging="thompson", temp=0.2, floor=0.001)
    kind, arm, propensity, y = _draw(bandit, 2000, 17, noise="t3")
    names = _names(4)
    effective = [
        off_policy_values(names[arm[s]], propensity[s], y[s], names[bandit["policy"][kind[s]]])[
            "ips"
        ].effective_n
        for s in range(50)
    ]
    assert max(effective) < 100


def _gates(shift, seed):
    """SEEDS gates of a challenger against a champion on logs of 1,500 rows: the challenger
    serves arm2 instead of the champion's arm1 on two of four types, where arm2's mean EE
    change is ``shift`` points higher (worse). Returns (passed, estimated differences, true
    difference in points avoided per person)."""
    bandit = _bandit(3, 4, 21, logging="epsilon-greedy", eps=0.6)
    mean = bandit["mean"]
    mean[:, 2] = mean[:, 1]
    mean[:2, 2] += shift
    champion_arms = np.full(4, 1)
    challenger_arms = np.array([2, 2, 1, 1])
    truth = -shift * bandit["share"][:2].sum()
    kind, arm, propensity, y = _draw(bandit, 1500, seed, noise="t3")
    names = _names(3)
    model = mean + np.random.default_rng(5).normal(0, 1, size=mean.shape)  # a wrong model
    passed, estimate = np.empty(SEEDS, bool), np.empty(SEEDS)
    for s in range(SEEDS):
        scores = pd.DataFrame(
            _aipw(model, kind[s], arm[s], propensity[s], y[s]), columns=list(names)
        )
        challenger = policy_value_scores(scores, names[challenger_arms[kind[s]]])
        champion = policy_value_scores(scores, names[champion_arms[kind[s]]])
        decision = gate_decision(challenger, champion, alpha=0.1, champion_version="1")
        passed[s], estimate[s] = decision.passed, decision.difference.estimate
    return passed, estimate, truth


def test_the_gate_promotes_a_truly_worse_challenger_only_as_often_as_its_interval_implies():
    # An equal challenger fails only when its 90 % interval lies wholly below 0: 5 %.
    passed, estimate, truth = _gates(0.0, 31)
    assert truth == 0.0 and abs(estimate.mean()) < 4 * estimate.std() / np.sqrt(SEEDS)
    low, high = _band(0.95)
    assert low <= passed.mean() <= high
    # A truly worse one passes with the normal power curve's probability, by the estimates'
    # spread across logs (not the gate's own interval): a gate whose interval were too wide
    # would promote it more often.
    passed, estimate, truth = _gates(0.7, 32)
    assert truth < 0 and abs(estimate.mean() - truth) < 4 * estimate.std() / np.sqrt(SEEDS)
    expected = norm.cdf(norm.ppf(0.95) + truth / estimate.std())
    low, high = _band(expected)
    assert 0.1 < expected < 0.9 and low <= passed.mean() <= high, (passed.mean(), expected)


def test_the_notes_say_where_usual_care_could_not_have_been_served(catalog, evidence):
    # A log served greedily: a row served coaching for certain has no usual-care outcome, so
    # a policy serving coaching there is valued against usual care by the outcome model (DR)
    # or not at all (IPS, SNIPS); before, only the rows where it picks another arm were named.
    from pipelines._from_log import off_policy_notes, off_policy_table, policy_on_log
    from pipelines._train_config import config_from_mapping
    from pipelines.train import policy_scores_on_log

    joined = _loop_log({"none": 0.3, "coaching": 0.4, "mindfulness": 0.3}, n=2000, seed=9)
    joined["propensity"] = 1.0
    frame, scores, change, _ = policy_scores_on_log(
        joined, config_from_mapping(LOOP_SETTINGS), catalog
    )
    arms, _ = policy_on_log(evidence, frame, scores, control="none")
    served = frame["intervention"].astype(str).to_numpy()
    same = int(((arms == served) & (arms != "none")).sum())
    assert same > 100
    settings = dict(control="none", alpha=0.1, label="champion (version 1)")
    table = off_policy_table(evidence, frame, scores, change, **settings)
    notes = off_policy_notes(evidence, frame, scores, table, **settings)
    said = [n for n in notes if "could not have served usual care" in n]
    assert len(said) == 1 and f"on {same:,} more of 2,000 rows" in said[0], notes
