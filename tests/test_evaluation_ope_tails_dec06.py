"""Off-policy intervals when the logging probabilities are small: a few rows served with
probability 0.001 weigh 1,000 each, the estimate rests on the handful of them the log happened
to serve (often none), and a normal interval on its mean covers the truth far less often than
it says, whatever Kish's effective rows (which cannot see rows that were not served). With
every row's logged probabilities (the service's log keeps them), ``off_policy_values`` knows
how many rows its weights amount to (``tail_rows``) and gives no figure below
``MIN_TAIL_ROWS``; where enough rows carry them, the intervals it gives cover as they say.

The logs come from a bandit of this file's own: four context types (shares 0.4, 0.3, 0.2,
0.1), outcome means drawn once per type and arm, t(3) noise, per type a favoured arm, usual
care at 0.1 (or favoured), the other arms at the smallest probability; the policy serves the
favoured arm on every type ("close" to the log) or the least likely arm ("far"). The true value
against usual care for all is computed from the tables. 400 fixed seeds per check; the binomial
band of 400 repeats separates 84 % from 95 %.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom
from test_loop_carry import SETTINGS as LOOP_SETTINGS
from test_loop_carry import _log as _loop_log
from test_loop_carry import catalog, evidence  # noqa: F401 (fixtures)

from recommender.evaluation import MIN_TAIL_ROWS, off_policy_values

SEEDS = 400
ALPHA = 0.05
SHARE = np.array([0.4, 0.3, 0.2, 0.1])


def _bandit(K, smallest, policy):
    """Outcome means (4, K), logging probabilities (4, K), the policy's arm per type and its
    true value against usual care (arm 0) for all."""
    mean = np.random.default_rng(100 + K).normal(0, 3, size=(4, K))
    favoured = np.array([1, K - 1, 0, 1])
    logged = np.zeros((4, K))
    for t, g in enumerate(favoured):
        others = [a for a in range(K) if a != g]
        logged[t, others] = smallest
        if t in (0, 1):
            logged[t, 0] = 0.1
        if K > 2:
            logged[t, [a for a in others if a != 0][0]] = max(0.05, smallest)
        logged[t, g] = 1 - logged[t].sum()
    if policy == "close":
        arms = favoured
    else:
        arms = np.array([min(range(1, K), key=lambda a: (logged[t, a], a)) for t in range(4)])
    truth = float((SHARE * (mean[np.arange(4), arms] - mean[:, 0])).sum())
    return mean, logged, arms, truth


def _values(K, smallest, policy, n, seed, *, probabilities):
    """Each estimator's (estimate, lower, upper, tail rows) on SEEDS logs of n rows."""
    mean, logged, arms, truth = _bandit(K, smallest, policy)
    rng = np.random.default_rng(seed)
    kind = np.searchsorted(np.cumsum(SHARE), rng.random((SEEDS, n)), side="right").clip(0, 3)
    served = (rng.random((SEEDS, n))[..., None] > np.cumsum(logged, axis=1)[kind]).sum(-1)
    served = served.clip(0, K - 1)
    y = mean[kind, served] + 2.0 * rng.standard_t(3, size=(SEEDS, n))
    model = mean + np.random.default_rng(7).normal(0, 1, size=mean.shape)  # a wrong model
    names = np.array(["none"] + [f"arm{k}" for k in range(1, K)], dtype=object)
    per_type = [{names[a]: float(p) for a, p in enumerate(row) if p > 0} for row in logged]
    out = {m: np.empty((SEEDS, 4)) for m in ("dr", "ips", "snips")}
    rows = np.arange(n)
    for s in range(SEEDS):
        p = logged[kind[s], served[s]]
        scores = model[kind[s]].copy()
        scores[rows, served[s]] += (y[s] - model[kind[s], served[s]]) / p
        values = off_policy_values(
            names[served[s]],
            p,
            y[s],
            names[arms[kind[s]]],
            dr_scores=pd.DataFrame(scores, columns=list(names)),
            alpha=ALPHA,
            candidates=[per_type[t] for t in kind[s]] if probabilities else None,
        )
        for method, v in values.items():
            out[method][s] = v.estimate, v.lower, v.upper, v.tail_rows
    return out, truth


def _band(level=1 - ALPHA):
    """The coverage 400 repeats show 99.9 % of the time when the true rate is ``level``."""
    return binom.ppf(0.0005, SEEDS, level) / SEEDS, binom.ppf(0.9995, SEEDS, level) / SEEDS


def _coverage(table, truth):
    return float(np.mean((table[:, 1] <= truth) & (truth <= table[:, 2])))


def test_probabilities_down_to_0001_are_not_measurable_rather_than_too_narrow():
    # 2,000 rows, six arms, usual care logged with probability 0.001 on a tenth of them: about
    # 0.2 such rows are served, each weighing 1,000. Without the probabilities (the estimator's
    # old behaviour) the normal 95 % intervals cover about 83 % (IPS) and 41 % (SNIPS)
    values, truth = _values(6, 0.001, "close", 2000, 11, probabilities=False)
    low, _ = _band()
    assert _coverage(values["ips"], truth) < low and _coverage(values["snips"], truth) < low
    assert np.isnan(values["ips"][:, 3]).all()  # no probabilities: no tail rows either
    # with them, no figure is given: the weights amount to well under one row
    values, _ = _values(6, 0.001, "close", 2000, 11, probabilities=True)
    for method, table in values.items():
        assert np.isnan(table[:, :3]).all(), method
        assert (table[:, 3] < min(MIN_TAIL_ROWS.values())).all()


@pytest.mark.parametrize(
    "K, policy, n, given",
    [
        # about 13 rows: IPS and DR given (and cover), SNIPS not (its interval covered about
        # 91 % at 15-21 rows in the measurements)
        (2, "far", 2500, ("dr", "ips")),
        # about 37 rows: all three given
        (6, "close", 2200, ("dr", "ips", "snips")),
    ],
)
def test_where_enough_rows_carry_the_weights_the_intervals_given_cover_95_percent(
    K, policy, n, given
):
    values, truth = _values(K, 0.02, policy, n, 12 + K, probabilities=True)
    low, high = _band()
    for method, table in values.items():
        tail = table[:, 3]
        if method in given:
            assert (tail >= MIN_TAIL_ROWS[method]).all() and np.isfinite(table[:, :3]).all()
            assert low <= _coverage(table, truth) <= high, (method, _coverage(table, truth))
        else:
            assert (tail < MIN_TAIL_ROWS[method]).all() and np.isnan(table[:, :3]).all()


def test_on_a_usual_log_every_figure_stays_as_it_was():
    # probabilities of 0.05 or more on 2,000 rows, the policy's arm at 0.05 on a quarter of
    # them: the figures with the logged probabilities are those without, to the last digit
    rng = np.random.default_rng(4)
    n = 2000
    chance = np.where(np.arange(n) < n // 4, 0.05, 0.6)
    candidates = [{"a": float(c), "none": 0.3, "b": round(0.7 - c, 2)} for c in chance]
    draw = rng.random(n)
    arm = np.where(draw < chance, "a", np.where(draw < chance + 0.3, "none", "b")).astype(object)
    p = np.array([c[a] for a, c in zip(arm, candidates)])
    y = rng.normal(size=n) - (arm == "a")
    scores = pd.DataFrame({k: np.where(arm == k, y / p, 0.0) for k in ("none", "a", "b")})
    target = np.full(n, "a", dtype=object)
    plain = off_policy_values(arm, p, y, target, dr_scores=scores)
    known = off_policy_values(arm, p, y, target, dr_scores=scores, candidates=candidates)
    for method in plain:
        assert known[method].tail_rows >= max(MIN_TAIL_ROWS.values())
        figures = [(v.estimate, v.lower, v.upper) for v in (plain[method], known[method])]
        assert figures[0] == figures[1] and np.isfinite(figures[0]).all()


def test_the_logs_probabilities_reach_the_estimates_and_the_note_says_why():
    from pipelines._from_log import _why_not_given, logged_candidates

    frame = pd.DataFrame(
        {"probabilities": ['{"none": 0.001, "a": 0.999}', None, '{"none": 0.5, "a": 0.5}']}
    )
    assert logged_candidates(frame) == [{"none": 0.001, "a": 0.999}, None, {"none": 0.5, "a": 0.5}]
    # a row that does not say leaves the tail rows unknown (and every figure given)
    arm = np.array(["a", "none", "a"], dtype=object)
    unknown = off_policy_values(
        arm,
        [0.999, 0.5, 0.5],
        [1.0, 0.0, 2.0],
        np.full(3, "a"),
        candidates=logged_candidates(frame),
    )
    assert np.isnan(unknown["ips"].tail_rows) and np.isfinite(unknown["ips"].estimate)
    said = _why_not_given(np.full(3, "a", dtype=object), arm, "none")
    assert "too few of them are expected to be served" in said
    assert "10 for DR, 10 for IPS, 30 for SNIPS" in said


def test_evaluate_policy_on_a_log_with_tiny_probabilities_says_not_measurable_and_why(
    catalog, evidence
):
    # the service's log as evaluate-policy and the card read it: 3,000 answers explored at 0.2
    # or more, 1,200 where coaching (the arm the policy picks most) had probability 0.002
    from pipelines._from_log import off_policy_notes, off_policy_table
    from pipelines._train_config import config_from_mapping
    from pipelines.train import policy_scores_on_log

    usual = _loop_log({"none": 0.3, "coaching": 0.3, "mindfulness": 0.2, "peer_group": 0.2})
    rare = _loop_log(
        {"none": 0.3, "coaching": 0.002, "mindfulness": 0.349, "peer_group": 0.349},
        n=1200,
        seed=10,
    )
    rare["request_id"] = [f"s{k}" for k in range(len(rare))]
    settings = dict(control="none", alpha=0.1, label="champion (version 1)")
    said = {}
    for name, joined in (("usual", usual), ("rare", pd.concat([usual, rare], ignore_index=True))):
        frame, scores, change, _ = policy_scores_on_log(
            joined, config_from_mapping(LOOP_SETTINGS), catalog
        )
        table = off_policy_table(evidence, frame, scores, change, **settings)
        said[name] = (table, off_policy_notes(evidence, frame, scores, table, **settings))
    table, notes = said["usual"]
    assert all(np.isfinite(row[2:5]).all() for row in table)
    assert not any("not measurable" in n for n in notes)
    table, notes = said["rare"]
    assert all(np.isnan(row[2:5]).all() for row in table)
    assert any(
        "DR and IPS and SNIPS not measurable: its weights rest on rows logged with so small a "
        "probability" in n
        for n in notes
    ), notes
    # no interval is left to call too narrow
    assert not any("may be too narrow" in n for n in notes)


def test_the_tails_benchmark_withholds_with_the_probabilities_and_gives_every_figure_without():
    # bench.ope_tails reproduces README's coverage figures; its plumbing at a tiny size: the
    # cell that README says is "not measurable" with the log's probabilities is; without them
    # DR gives every log a figure (IPS and SNIPS none where the log never served the policy's
    # arm), and coverage is a share of those given.
    from bench.ope_tails import cell

    checked = cell(2000, 0.001, 6, "far", seeds=5, seed=1)
    unchecked = cell(2000, 0.001, 6, "far", seeds=5, seed=1, with_probabilities=False)
    assert all(given == 0 for _, given in checked.values())
    assert unchecked["dr"][1] == 5 and all(given >= 1 for _, given in unchecked.values())
    assert all(0 <= covered <= 1 for covered, _ in unchecked.values())
