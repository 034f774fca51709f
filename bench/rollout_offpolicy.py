"""Whether ``bench.rollout``'s program can trust its off-policy estimates: the product's DR /
IPS / SNIPS of the served model's best-arm policy on one cycle's log against that policy's
true value, and Open Bandit Pipeline's IPS and SNIPS on the same rows and probabilities when
it is installed (the rows the product keeps: arms served too rarely to score are left out, and
their probability taken out of the kept rows', so both value the same data).
"""

from __future__ import annotations

import numpy as np

from bench.rollout_cycle import _settings, _true_effects

__all__ = ["obp_inputs", "off_policy_on_cycle"]


def off_policy_on_cycle(log_cycle, cohort, best, catalog, seed, alpha=0.1, *, model=None):
    """DR / IPS / SNIPS of ``best`` (the served ``model``'s best arms) on one cycle's log.

    The estimates are the product's (:func:`pipelines.train.policy_scores_on_log`, as the gate
    and ``recommender evaluate-policy`` build them: arms served too rarely to score left out,
    doubly robust scores cross-fitted with the logged probabilities, and an arm the policy
    picks that the log cannot score valued by ``model``'s estimate); the truth is the
    policy's true value on the whole cohort. ``None`` when the log cannot value the policy.

    Returns ``(values, truth, kept share, direct share, obp)``: the direct share is the share
    of kept rows whose best arm the log could not score, valued by the model's estimate
    instead; ``obp`` is Open Bandit Pipeline's IPS and SNIPS on the very rows and probabilities
    the product valued (empty without obp, or when the log cannot value the policy).
    """
    from pipelines.train import policy_scores_on_log, scores_with_estimates
    from recommender.errors import InputError
    from recommender.evaluation import off_policy_values

    settings = _settings(seed)
    kept = np.ones(len(log_cycle), dtype=bool)
    direct = float("nan")
    try:
        frame, dr, change, kept = policy_scores_on_log(log_cycle, settings, catalog)
        direct = float(np.mean(~np.isin(best[kept], list(dr.columns))))
        if model is not None:
            effects = model.predict_effect(frame)[list(model.treatment_arms)]
            dr = scores_with_estimates(dr, effects, control=catalog.control)
        values = off_policy_values(
            frame["intervention"].astype(str).to_numpy(),
            frame["propensity"].to_numpy(dtype=float),
            change,
            best[kept],
            control=catalog.control,
            dr_scores=dr,
            alpha=alpha,
        )
    except InputError:  # e.g. a best arm the log served too rarely to have scores
        return None, float("nan"), float(np.mean(kept)), direct, {}
    truth = float(_true_effects(cohort, best, catalog.control).mean())
    compared = _obp(obp_inputs(frame, change, best[kept], catalog))
    return values, truth, float(np.mean(kept)), direct, compared


def obp_inputs(frame, change, best, catalog) -> dict:
    """Open Bandit Pipeline's inputs for the rows the product valued: ``frame`` (the kept rows,
    with their propensities as the product uses them), their outcome ``change`` and ``best``
    arms; ``action_dist`` is the policy's, ``care_dist`` usual care for all."""
    arms = list(catalog.arm_ids)
    index = {a: i for i, a in enumerate(arms)}
    n = len(frame)
    dist = np.zeros((n, len(arms), 1))
    dist[np.arange(n), [index[a] for a in best], 0] = 1.0
    care = np.zeros((n, len(arms), 1))
    care[:, index[catalog.control], 0] = 1.0
    return {
        "action": np.array([index[a] for a in frame["intervention"].astype(str)]),
        "reward": np.asarray(change, dtype=float),
        "pscore": frame["propensity"].to_numpy(dtype=float),
        "action_dist": dist,
        "care_dist": care,
    }


def _obp(inputs: dict) -> dict:
    """Open Bandit Pipeline's IPS and SNIPS of the policy against usual care, when installed."""
    try:
        from obp.ope import InverseProbabilityWeighting, SelfNormalizedInverseProbabilityWeighting
    except ImportError:
        return {}
    logged = {k: inputs[k] for k in ("action", "reward", "pscore")}
    out = {}
    for name, estimator in (
        ("ips", InverseProbabilityWeighting()),
        ("snips", SelfNormalizedInverseProbabilityWeighting()),
    ):
        policy = estimator.estimate_policy_value(**logged, action_dist=inputs["action_dist"])
        care = estimator.estimate_policy_value(**logged, action_dist=inputs["care_dist"])
        out[f"obp_{name}"] = float(policy - care)
    return out
