"""A simulated program running the learning loop: does it get better, what does exploring cost,
and can the program trust its off-policy estimates?

Per scenario and repeat, a program surveys ``--staff`` people per cycle for ``--cycles``
cycles (fresh profiles each cycle, the same cohorts for every strategy). The true effects stay
inside the simulator: strategies see profiles and the follow-up scores of the arm they served
(:mod:`bench._program`). Strategies:

``loop``
    Cycle 0 serves the evidence-only model; every later cycle retrains on everything logged so
    far through the product's from-log path (training table, split, fit, evaluate and the
    promotion gate against the model being served; see :func:`retrain`) and serves with the
    shipped exploration policy (``exploration:`` in configs/serve.yaml, or ``--exploration``).
``greedy``
    The same, without exploration (probability 1 everywhere, no usual-care share). A
    retraining the product would refuse (too few usual-care rows) or a challenger failing the
    gate keeps the model being served, as a program would.
``evidence``
    The evidence-only model, greedily, forever.
``random_first``
    Cycle 0 assigns every eligible arm and usual care with equal probability (a trial), then
    retrains and serves greedily.

Per cycle: each strategy's true value (mean true EE effect of the arms served, EE points
against usual care) as a share of the oracle's (each person's truly best eligible arm); the
loop's exploration cost (true value of its model's best arms minus what it served, as a share
of the oracle); and, on the loop's log of each cycle, the DR / IPS / SNIPS estimate of the
served model's best-arm policy against that policy's true value (bias and 90 % coverage).

Run ``python -m bench.rollout`` (``--repeats``, ``--staff``, ``--cycles``, ``--scenarios``);
``--out`` writes the Markdown section.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time

import numpy as np
import pandas as pd

from bench._program import followup_under, staff_cohort

__all__ = ["run", "to_markdown", "main"]

STRATEGIES = ("loop", "greedy", "evidence", "random_first")
_LEARNER = {"learner": "t", "n_folds": 2}


def _settings(seed: int) -> dict:
    from pipelines.train import config_from_mapping  # noqa: F401 - validated config below
    from pipelines._train_config import config_from_mapping as build

    return build(
        {
            "seed": seed,
            "outcomes": ["ee"],
            "primary": "ee",
            "learner": _LEARNER,
            "split": {"holdout_share": 0.3},
        }
    )


def _profiles(cohort: pd.DataFrame) -> list[dict]:
    from recommender.cohort import PROFILE_COLUMNS

    records = cohort[list(PROFILE_COLUMNS)].astype(object).to_dict(orient="records")
    return [
        {
            k: (str(v) if k in ("gender", "role", "specialty", "setting", "person_id") else v)
            for k, v in r.items()
        }
        for r in records
    ]


def _hash(person_id: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}|{person_id}".encode()).hexdigest()


def serve_cycle(model, cohort, catalog, serve, *, policy: str, cycle: int, salt: str):
    """Serve one cycle: (served arm, its probability, the model's best arm, every candidate's
    probability as the audit store keeps it) per person."""
    import dataclasses

    from recommender.policy import assign, offered_arms, rank_arms, triage

    rule = dataclasses.replace(
        serve.exploration, policy=policy if policy != "uniform" else "greedy", cycle=cycle
    )
    profiles = _profiles(cohort)
    modelled = set(model.treatment_arms)
    scores = model.score(cohort, alpha=serve.alpha)
    served, probability, best, candidates = [], [], [], []
    for k, row in enumerate(profiles):
        arms, _ = offered_arms(catalog, row, modelled=modelled)
        if policy == "uniform":
            eligible, _ = offered_arms(catalog, row)
            choices = [catalog.control, *eligible]
            u = (
                int(
                    hashlib.sha256(f"{_hash(row['person_id'], salt)}|{cycle}".encode()).hexdigest()[
                        :15
                    ],
                    16,
                )
                / 16**15
            )
            served.append(choices[int(u * len(choices))])
            probability.append(1.0 / len(choices))
            best.append(served[-1])
            candidates.append(json.dumps(dict.fromkeys(choices, 1.0 / len(choices))))
            continue
        effects = {}
        for arm in arms:
            values = [scores[f"{kind}_{arm}"].iloc[k] for kind in ("effect", "lower", "upper")]
            if np.isfinite(values).all():
                effects[arm] = (*values, 0.0, 0.0)
        ranking = rank_arms(effects, control=catalog.control, coverage=serve.coverage)
        routine = triage(row, serve.safety).level == "routine"
        given = assign(
            ranking, _hash(row["person_id"], salt), rule, explore=routine, control=catalog.control
        )
        served.append(given.arm)
        probability.append(given.probability)
        candidates.append(json.dumps(given.probabilities))
        best.append(ranking.recommended)
    return (
        np.array(served, dtype=object),
        np.array(probability),
        np.array(best, dtype=object),
        candidates,
    )


def _true_effects(cohort, served, control):
    effect = np.zeros(len(cohort))
    for arm in set(served) - {control}:
        rows = served == arm
        effect[rows] = cohort[f"true_effect_{arm}"].to_numpy(dtype=float)[rows]
    return effect


def oracle_arms(cohort, catalog) -> np.ndarray:
    """Each person's truly best eligible arm (usual care when no arm truly helps)."""
    from recommender.policy import offered_arms

    best = []
    for k, row in enumerate(_profiles(cohort)):
        arms, _ = offered_arms(catalog, row)
        options = [(0.0, catalog.control)]
        options += [(float(cohort[f"true_effect_{a}"].iloc[k]), a) for a in arms]
        best.append(min(options, key=lambda o: o[0])[1])
    return np.array(best, dtype=object)


def oracle_value(cohort, catalog) -> float:
    """Mean true effect of each person's truly best eligible arm (usual care counts as 0)."""
    return float(_true_effects(cohort, oracle_arms(cohort, catalog), catalog.control).mean())


def _log_rows(cohort, served, probability, cycle, control, *, salt, policy, candidates):
    """One cycle's log as :func:`recommender.service.logged_cohort` returns it (everyone
    takes the arm recommended, and answers the follow-up survey)."""
    from recommender.cohort import PROFILE_COLUMNS

    follow = followup_under(cohort, served, control=control)
    frame = cohort[list(PROFILE_COLUMNS)].copy().reset_index(drop=True)
    frame["person_id"] = [_hash(str(p), salt) for p in frame["person_id"]]
    frame["intervention"] = served
    frame["propensity"] = probability
    for column in follow.columns:
        frame[column] = follow[column].to_numpy()
    frame["probabilities"] = candidates
    frame["arm_taken"] = served
    frame["cycle"] = cycle
    frame["policy"] = policy
    frame["request_id"] = [f"c{cycle}-{k}" for k in range(len(frame))]
    return frame


def retrain(log: pd.DataFrame, catalog, seed: int, champion):
    """Retrain on the whole log through the product's from-log path and gate the result.

    ``log`` holds what the service's audit store would return joined with outcomes
    (:func:`recommender.service.logged_cohort`). The training table (arms without overlap left
    out, no run without usual-care rows) comes from :func:`pipelines.train.log_training_frame`,
    then the pipeline's own split, fit, carry (arms too rarely served to learn keep
    ``champion``'s estimates) and evaluate stages run, and the challenger replaces
    ``champion`` only if it passes the promotion gate on the held-out part of the log (the
    product's :func:`recommender.registry.gate_decision` on the same doubly robust scores; all
    held-out rows, as the product does when it cannot tell which rows the champion saw). This
    is ``recommender train --from-log`` without MLflow, the card and the registry.

    Returns ``(model, status)``: the model to serve next and ``"promoted"``, ``"gate"`` (the
    challenger failed the gate, or the champion could not be valued on the log: fails closed) or ``"refused"`` (the product would refuse to train: too few
    usual-care rows or an arm too small for its fit or its held-out evaluation).
    """
    from pipelines.train import Cohort, carry_stage, evaluate_stage, fit_min_arm_rows, fit_stage
    from pipelines.train import log_training_frame, policy_on_log, split_stage
    from recommender.cohort import typed_cohort
    from recommender.errors import InputError
    from recommender.registry import gate_decision, policy_value_scores

    settings = _settings(seed)
    try:
        frame, summary = log_training_frame(log, catalog, min_arm_rows=fit_min_arm_rows(settings))
        frame = typed_cohort(frame, arms=catalog.arm_ids, control=catalog.control)
        cohort = Cohort(
            frame=frame,
            catalog=catalog,
            source="service log",
            description="bench log",
            sha256="-",
            design="observational (the service's logged probabilities of the recommended arm)",
            loop=summary,
        )
        split = split_stage(cohort, settings)
        model = fit_stage(split, cohort, settings)
        model = carry_stage(model, cohort, settings, previous=champion)
        evaluation = evaluate_stage(model, split, cohort, settings)
    except InputError:
        return champion, "refused"
    control = catalog.control
    challenger = policy_value_scores(evaluation.dr_scores, evaluation.recommended, control=control)
    try:
        arms, scores = policy_on_log(champion, split.holdout, evaluation.dr_scores, control=control)
        held = policy_value_scores(scores, arms, control=control)
    except InputError:
        # The champion recommends an arm this log cannot score (left out for too few rows):
        # the product's gate fails closed then, and the champion stays (pipelines' gate_stage).
        return champion, "gate"
    decision = gate_decision(challenger, held, alpha=settings["gate"]["alpha"])
    return (model, "promoted") if decision.passed else (champion, "gate")


def off_policy_on_cycle(log_cycle, cohort, best, catalog, seed, alpha=0.1, *, model=None):
    """DR / IPS / SNIPS of ``best`` (the served ``model``'s best arms) on one cycle's log.

    The estimates are the product's (:func:`pipelines.train.policy_scores_on_log`, as the gate
    and ``recommender evaluate-policy`` build them: arms served too rarely to score left out,
    doubly robust scores cross-fitted with the logged probabilities, and an arm the policy
    picks that the log cannot score valued by ``model``'s estimate); the truth is the
    policy's true value on the whole cohort. ``None`` when the log cannot value the policy.

    Returns ``(values, truth, kept share, direct share)``: the last is the share of kept rows
    whose best arm the log could not score, valued by the model's estimate instead.
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
        return None, float("nan"), float(np.mean(kept)), direct
    truth = float(_true_effects(cohort, best, catalog.control).mean())
    return values, truth, float(np.mean(kept)), direct


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
                values, truth, kept, direct = off_policy_on_cycle(
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
                row.update(_obp(log_cycle, best, catalog))
            rows.append(row)
            if strategy != "evidence" and cycle + 1 < cycles:
                models[strategy], status = retrain(
                    pd.concat(logs[strategy], ignore_index=True),
                    catalog,
                    seed=repeat,
                    champion=model,
                )
                retrained[strategy].append(status)
    return rows


def _obp(log_cycle, best, catalog) -> dict:
    """Open Bandit Pipeline's IPS and SNIPS on the same log, when it is installed."""
    try:
        from obp.ope import InverseProbabilityWeighting, SelfNormalizedInverseProbabilityWeighting
    except ImportError:
        return {}
    arms = list(catalog.arm_ids)
    index = {a: i for i, a in enumerate(arms)}
    n = len(log_cycle)
    action = np.array([index[a] for a in log_cycle["intervention"]])
    reward = (log_cycle["ee_followup"] - log_cycle["ee"]).to_numpy(dtype=float)
    pscore = log_cycle["propensity"].to_numpy(dtype=float)
    dist = np.zeros((n, len(arms), 1))
    dist[np.arange(n), [index[a] for a in best], 0] = 1.0
    control = np.zeros((n, len(arms), 1))
    control[:, index[catalog.control], 0] = 1.0
    out = {}
    for name, estimator in (
        ("ips", InverseProbabilityWeighting()),
        ("snips", SelfNormalizedInverseProbabilityWeighting()),
    ):
        policy = estimator.estimate_policy_value(
            reward=reward, action=action, pscore=pscore, action_dist=dist
        )
        care = estimator.estimate_policy_value(
            reward=reward, action=action, pscore=pscore, action_dist=control
        )
        out[f"obp_{name}"] = float(policy - care)
    return out


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


def to_markdown(table: pd.DataFrame, notes, *, command: str) -> str:
    lines = [
        "## The learning loop on a simulated program (`bench/rollout.py`)",
        "",
        f"Command: `{command}`",
        "",
    ]
    for note in notes:
        lines.append(f"- {note}")
    if notes:
        lines.append("")
    for scenario, part in table.groupby("scenario", sort=False):
        repeats = part["repeat"].nunique()
        lines += [
            f"### Scenario `{scenario}` ({repeats} repeats, {int(part['cycle'].max()) + 1} cycles)",
            "",
            "Share of the oracle's value (mean over repeats; min-max in brackets):",
            "",
            "| cycle | " + " | ".join(STRATEGIES) + " | loop's model, best arms | "
            "loop exploration cost | loop explored share |",
            "|---|" + "---|" * (len(STRATEGIES) + 3),
        ]
        for cycle, at in part.groupby("cycle"):
            cells = []
            for strategy in STRATEGIES:
                s = at[at["strategy"] == strategy]["share"]
                cells.append(f"{s.mean():.1%} ({s.min():.0%}-{s.max():.0%})")
            loop = at[at["strategy"] == "loop"]
            if "best_share" in loop:
                cells.append(f"{loop['best_share'].mean():.1%}")
            else:
                cells.append("—")
            cells.append(
                f"{loop['exploration_cost'].mean():.1%} (max {loop['exploration_cost'].max():.1%})"
            )
            cells.append(f"{loop['explored_share'].mean():.0%}")
            # explored share: people served with a probability below one (usual care's
            # share alone makes every routine profile count).
            lines.append(f"| {cycle} | " + " | ".join(cells) + " |")
        if "best_is_oracle" in part:
            lines += _strategy_table(
                part,
                "People whose model's best arm is their truly best arm (mean over repeats):",
                lambda rows: f"{rows['best_is_oracle'].mean():.1%}",
            )
        if "model_learnt" in part and part["model_learnt"].notna().all():
            lines += _strategy_table(
                part,
                "Arms a retrained model learnt from the log (it ranks every arm: the rest are "
                "carried over, too few logged rows; share of repeats; (evidence): the "
                "evidence-only model is served):",
                lambda rows: "; ".join(
                    f"{arms} ({share:.0%})"
                    for arms, share in rows["model_learnt"]
                    .where(rows["retrained"].astype(str) == "True", "(evidence)")
                    .value_counts(normalize=True)
                    .items()
                ),
            )
        ope = (
            part[(part["strategy"] == "loop") & part["ope_truth"].notna()]
            if "ope_truth" in part
            else part.iloc[:0]
        )
        if len(ope):
            lines += [
                "",
                "Off-policy value of the served model's best-arm policy on each "
                "cycle's log, against its true value (EE points vs usual care; "
                f"{len(ope)} cycle-repeats; the log's rows of arms served too rarely to "
                "score are left out, as the product does: "
                f"{ope['ope_kept_share'].mean() if 'ope_kept_share' in ope else 1:.1%} "
                "of rows kept on average; best arms the log cannot score, valued by the "
                "model's estimate (DR only): "
                f"{ope['ope_direct_share'].mean() if 'ope_direct_share' in ope else 0:.1%} "
                "of rows):",
                "",
                "| estimator | mean bias | RMSE | mean interval width | 90 % interval coverage |",
                "|---|---|---|---|---|",
            ]
            for method in ("dr", "ips", "snips"):
                column = f"ope_{method}"
                if column not in ope or ope[column].isna().all():
                    continue
                valid = ope[ope[column].notna()]
                error = valid[column] - valid["ope_truth"]
                cover = valid[f"{column}_covers"].astype(float).mean()
                width = valid[f"{column}_width"].mean() if f"{column}_width" in valid else np.nan
                lines.append(
                    f"| {method.upper()} | {error.mean():+.3f} | "
                    f"{np.sqrt((error**2).mean()):.3f} | {width:.2f} | {cover:.0%} "
                    f"(n = {len(valid)}) |"
                )
            for method in ("ips", "snips"):
                column = f"obp_{method}"
                if column in ope and ope[column].notna().any():
                    diff = (ope[column] - ope[f"ope_{method}"]).abs().max()
                    lines.append(
                        f"| Open Bandit Pipeline {method.upper()} | "
                        f"{(ope[column] - ope['ope_truth']).mean():+.3f} | "
                        f"{np.sqrt(((ope[column] - ope['ope_truth']) ** 2).mean()):.3f}"
                        f" | — | — (max difference from ours {diff:.2g}) |"
                    )
        lines.append("")
    return "\n".join(lines)


def _strategy_table(part: pd.DataFrame, title: str, cell) -> list[str]:
    """A Markdown table of ``cell(rows)`` per cycle (rows) and strategy (columns)."""
    lines = ["", title, "", "| cycle | " + " | ".join(STRATEGIES) + " |"]
    lines.append("|---|" + "---|" * len(STRATEGIES))
    for cycle, at in part.groupby("cycle"):
        cells = [cell(at[at["strategy"] == strategy]) for strategy in STRATEGIES]
        lines.append(f"| {cycle} | " + " | ".join(cells) + " |")
    return lines


def _setting(text: str) -> tuple[str, object]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"--exploration {text!r}: give KEY=VALUE, e.g. max_cost=0.06")
    return key.strip(), yaml.safe_load(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=["default", "conservative"])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--staff", type=int, default=2000)
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument(
        "--exploration",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override serve.yaml's exploration settings (e.g. max_cost=0.06)",
    )
    parser.add_argument("--out", default=None, help="write the Markdown section here")
    parser.add_argument("--csv", default=None, help="append every repeat's rows here")
    parser.add_argument(
        "--summarise",
        nargs="+",
        default=None,
        metavar="CSV",
        help="only summarise rows written by earlier runs' --csv",
    )
    args = parser.parse_args(argv)
    if args.summarise:
        table = pd.concat([pd.read_csv(p) for p in args.summarise], ignore_index=True)
        notes = []
    else:
        table, notes = run(
            scenarios=args.scenarios,
            repeats=args.repeats,
            staff=args.staff,
            cycles=args.cycles,
            csv=args.csv,
            exploration=dict(_setting(text) for text in args.exploration),
        )
    command = "python -m bench.rollout " + " ".join(argv if argv is not None else sys.argv[1:])
    text = to_markdown(table, notes, command=command.strip())
    if args.csv:
        table.to_csv(args.csv, index=False)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
