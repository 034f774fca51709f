"""The evaluation values the policy the service serves: one best-arm rule.

The card's headline policy value (``policy_value.learned``) and the primary outcome's row of
"points improved" (``outcome_improved.ee``) value the same policy on the same scores; they
differed (5.181 against 5.178 on a demo card) because the evaluation chose each person's arm by
the raw effects while the model and the service choose by the figures an answer shows
(``recommender.policy.ranked_figures``), on which near-equal effects tie and the tie goes to
usual care, then to the catalog's order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.evaluation import evaluate_effects, learned_policy
from recommender.policy import best_arm, ranked_figures


def _near_ties(seed: int = 11, n: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = rng.normal(-1.0, 1.0, size=(n, 1))
    # Every arm within 4e-4 of the others: many round to the same figure at 3 decimals.
    spread = rng.uniform(-4e-4, 4e-4, size=(n, 4))
    effects = pd.DataFrame(base + spread, columns=["coaching", "mindfulness", "peer_group", "x"])
    effects.iloc[:50] = rng.uniform(-4e-4, 4e-4, size=(50, 4))  # ties with usual care too
    return effects


def test_the_learned_policy_is_the_services_rule_on_near_ties():
    effects = _near_ties()
    served = best_arm(ranked_figures(effects.to_numpy()), list(effects.columns))
    raw = np.where(
        effects.min(axis=1).to_numpy() < 0, effects.columns[effects.to_numpy().argmin(1)], "none"
    )
    assert (served != raw).sum() > 1000  # decisive: the raw argmin picks otherwise often
    assert learned_policy(effects).tolist() == served.tolist()


def test_eligibility_still_applies_and_is_checked():
    effects = _near_ties(n=200)
    eligible = pd.DataFrame(True, index=effects.index, columns=effects.columns)
    eligible["coaching"] = False
    chosen = learned_policy(effects, eligible=eligible)
    assert "coaching" not in set(chosen)
    allowed = eligible.to_numpy()
    expected = best_arm(ranked_figures(effects.to_numpy()), list(effects.columns), allowed=allowed)
    assert chosen.tolist() == expected.tolist()
    try:
        learned_policy(effects, eligible=eligible.drop(columns="x"))
    except Exception as error:  # noqa: BLE001 - the message is what is checked
        assert "lacks ['x']" in str(error)
    else:
        raise AssertionError("an eligibility table without an arm's column was accepted")


def test_the_oracle_reads_the_true_effects_unrounded():
    effects = _near_ties(n=500)
    rng = np.random.default_rng(3)
    scores = pd.DataFrame(rng.normal(0, 5, size=(500, 5)), columns=["none", *effects.columns])
    report = evaluate_effects(effects, scores, oracle=effects, random_state=1)
    truly_best = np.minimum(effects.to_numpy().min(axis=1), 0.0)  # usual care at 0
    oracle = report.policy_values.loc["oracle", "true_value"]
    assert np.isclose(oracle, -truly_best.mean(), rtol=0, atol=1e-12)
    # The learned policy, choosing by rounded figures, gives up a little of it here.
    assert report.policy_values.loc["learned", "true_value"] < oracle - 1e-6


def test_the_report_values_the_policy_the_model_serves():
    effects = _near_ties(n=3000)
    rng = np.random.default_rng(5)
    scores = pd.DataFrame(
        rng.normal(0, 5, size=(3000, 5)), columns=["none", *effects.columns.tolist()]
    )
    report = evaluate_effects(effects, scores, random_state=1)
    served = best_arm(ranked_figures(effects.to_numpy()), list(effects.columns))
    terms = (
        scores["none"].to_numpy()
        - scores.to_numpy()[np.arange(3000), scores.columns.get_indexer(served)]
    )
    assert np.isclose(report.policy_values.loc["learned", "estimate"], terms.mean(), atol=1e-12)


def test_a_trained_runs_headline_value_is_its_primary_outcome_row(trained, monkeypatch):
    from test_pipeline_train import use_home

    from recommender import registry

    result, home = trained
    use_home(monkeypatch, home)
    metrics = registry.client().get_run(result.run_id).data.metrics
    for suffix in ("", ".lower", ".upper"):
        assert np.isclose(
            metrics[f"policy_value.learned{suffix}"],
            metrics[f"outcome_improved.ee{suffix}"],
            rtol=0,
            atol=1e-9,
        ), suffix
