"""``bench.rollout``'s simulated program: every strategy on every scenario and repeat, cycle
after cycle, a row per strategy and cycle (``run``).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from bench._program import staff_cohort
from bench.rollout_cycle import _log_rows, _true_effects, oracle_arms, retrain, serve_cycle
from bench.rollout_offpolicy import off_policy_on_cycle

__all__ = ["STRATEGIES", "run_one", "run"]

STRATEGIES = ("loop", "greedy", "evidence", "random_first")


def run_one(
    scenario: str, repeat: int, *, staff: int, cycles: int, catalog, serve, evidence
) -> list[dict]:
    """One repeat of every strategy on one scenario; a row per strategy and cycle."""
    from recommender.model import learnt_arms

    control = catalog.control
    models = {s: evidence for s in STRATEGIES}
    logs: dict[str, list] = {s: [] for s in STRATEGIES}
    retrained: dict[str, list] = {s: [] for s in STRATEGIES}
    rows = []
    for cycle in range(cycles):
        cohort = staff_cohort(scenario, staff, seed=10_000 * (repeat + 1) + cycle)
        ideal = oracle_arms(cohort, catalog)
        oracle = float(_true_effects(cohort, ideal, control).mean())
        for strategy in STRATEGIES:
            model = models[strategy]
            if strategy == "random_first" and cycle == 0:
                policy = "uniform"
            elif strategy == "loop":
                policy = serve.exploration.policy
            else:
                policy = "greedy"
            served, probability, best, candidates = serve_cycle(
                model, cohort, catalog, serve, policy=policy, cycle=cycle, salt=f"bench-{repeat}"
            )
            value = float(_true_effects(cohort, served, control).mean())
            best_value = float(_true_effects(cohort, best, control).mean())
            row = {
                "scenario": scenario,
                "repeat": repeat,
                "cycle": cycle,
                "strategy": strategy,
                "value": value,
                "oracle": oracle,
                # Values are true EE effects against usual care (usual care = 0), so this is
                # (V - V_usual_care) / (V_oracle - V_usual_care).
                "share": value / oracle if oracle < 0 else float("nan"),
                "best_share": best_value / oracle if oracle < 0 else float("nan"),
                # people whose model's best arm is their truly best arm
                "best_is_oracle": float(np.mean(best == ideal)),
                # EE: lower is better, so serving worse than the model's best arms makes
                # value - best_value positive: the share of the oracle's value given up.
                "exploration_cost": (value - best_value) / abs(oracle)
                if oracle < 0
                else float("nan"),
                "explored_share": float(np.mean(probability < 1)),
                "retrained": model is not evidence,
                # the arms the served model ranks: a retraining leaves out arms the log served
                # too rarely, and the retrained model then never serves them again
                "model_arms": " ".join(model.treatment_arms),
                # of those, the arms it learnt from the log (the others carried over)
                "model_learnt": " ".join(learnt_arms(model)),
                # what became of the retraining before this cycle (none before cycle 0)
                "retraining": retrained[strategy][-1] if retrained[strategy] else "",
            }
            log_cycle = _log_rows(
                cohort,
                served,
                probability,
                cycle,
                control,
                salt=f"bench-{repeat}",
                policy=policy,
                candidates=candidates,
            )
            logs[strategy].append(log_cycle)
            if strategy == "loop" and policy != "greedy":
                values, truth, kept, direct, obp = off_policy_on_cycle(
                    log_cycle, cohort, best, catalog, seed=repeat, model=model
                )
                row["ope_kept_share"] = kept
                row["ope_direct_share"] = direct
                if values is not None:
                    row["ope_truth"] = truth
                    for method, estimate in values.items():
                        row[f"ope_{method}"] = estimate.estimate
                        row[f"ope_{method}_covers"] = estimate.covers(truth)
                        row[f"ope_{method}_width"] = estimate.upper - estimate.lower
                row.update(obp)
            rows.append(row)
            if strategy != "evidence" and cycle + 1 < cycles:
                models[strategy], status = retrain(
                    pd.concat(logs[strategy], ignore_index=True),
                    catalog,
                    seed=repeat,
                    champion=model,
                    # a greedy log cannot measure a challenger: the program promotes it by hand
                    forced=strategy != "loop",
                )
                retrained[strategy].append(status)
    return rows


def run(
    *,
    scenarios=("default", "conservative"),
    repeats: int = 10,
    staff: int = 2000,
    cycles: int = 4,
    csv=None,
    exploration: dict | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Every strategy on every scenario and repeat; with ``csv``, rows are appended to that
    file as each repeat finishes (a long run can be summarised before it ends).
    ``exploration`` overrides keys of serve.yaml's ``exploration:`` (checked as the service
    checks them)."""
    from recommender.catalog import load_catalog
    from recommender.model import evidence_model
    from recommender.service import load_serve_config
    from recommender.simulate import scenario_names

    catalog = load_catalog()
    serve = load_serve_config()
    if exploration:
        import dataclasses

        from recommender.policy import ExplorationRule

        current = serve.exploration
        merged = {
            "policy": current.policy,
            "epsilon": current.epsilon,
            "cycle": current.cycle,
            "usual_care_share": current.usual_care_share,
            "max_cost": current.max_cost,
            **exploration,
        }
        rule = ExplorationRule.from_config(merged, coverage=current.coverage)
        serve = dataclasses.replace(serve, exploration=rule)
    notes = [f"exploration: {serve.exploration.describe()}"]
    evidence = evidence_model(catalog)
    known = set(scenario_names())
    rows = []
    for scenario in scenarios:
        if scenario not in known:
            notes.append(
                f"scenario {scenario!r} is not in configs/scenarios (have: "
                f"{', '.join(sorted(known))}); skipped"
            )
            continue
        for repeat in range(repeats):
            start = time.perf_counter()
            done = run_one(
                scenario,
                repeat,
                staff=staff,
                cycles=cycles,
                catalog=catalog,
                serve=serve,
                evidence=evidence,
            )
            rows += done
            if csv:
                import os

                pd.DataFrame(done).to_csv(
                    csv, mode="a", index=False, header=not os.path.exists(csv)
                )
            print(
                f"{scenario} repeat {repeat}: {time.perf_counter() - start:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    return pd.DataFrame(rows), notes
