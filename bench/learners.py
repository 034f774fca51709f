"""Our multi-arm uplift learner against EconML, CausalML and a raw LightGBM T-learner.

Every method is fitted on the same simulated training cohort and scored on the same separate
test cohort (another seed), so the figures in one section compare like with like. Outcome: the
change in emotional exhaustion (``ee_followup - ee``); effects below 0 are improvements.

Metrics (test cohort, against the simulator's oracle ``true_effect_<arm>``):

- root PEHE per arm and its mean over arms (EE points);
- policy value as a share of the oracle's: the true mean effect of "give each person the arm
  with the lowest predicted effect, or none when no arm is predicted to help", divided by the
  same for the oracle's own choice;
- coverage of 90 % intervals (share of person-arm pairs whose true effect lies inside), where
  the method gives per-person intervals;
- fit time, time to score 1,000 rows, and the latency of one single-row recommendation
  (ours: effect plus the contributions explaining it; anchors: effect only, they do not explain).

Run ``python -m bench.learners --n 20000 --assignment rct --repeats 3``; ``--quick`` is the
smoke-test size and writes nothing unless asked.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

__all__ = ["METHODS", "QUICK_METHODS", "default_methods", "run", "to_markdown", "main"]

ALPHA = 0.1
# Library deprecation chatter is not a finding about the methods.
_QUIET = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def _methods():
    from bench import _anchors as a

    return {
        "ours-auto": lambda: a.Ours(learner="auto"),
        "ours-dr": lambda: a.Ours(learner="dr"),
        "ours-auto-noprop": lambda: a.Ours(
            learner="auto", use_propensity=False, name="ours (auto, propensity not given)"
        ),
        "t-raw": a.LightGBMTLearner,
        "econml-dr": lambda: a.EconMLDRLearner(propensity="design"),
        "econml-cf": lambda: a.EconMLCausalForest(propensity="design"),
        "causalml-x": lambda: a.CausalMLXLearner(propensity="design"),
        "causalml-dr": lambda: a.CausalMLDRLearner(propensity="design"),
        "econml-dr-lgbm": lambda: a.EconMLDRLearner(propensity="lightgbm"),
        "econml-cf-lgbm": lambda: a.EconMLCausalForest(propensity="lightgbm"),
        "causalml-x-lgbm": lambda: a.CausalMLXLearner(propensity="lightgbm"),
        "causalml-dr-lgbm": lambda: a.CausalMLDRLearner(propensity="lightgbm"),
    }


METHODS = (
    "ours-auto",
    "ours-dr",
    "ours-auto-noprop",
    "t-raw",
    "econml-dr",
    "econml-cf",
    "causalml-x",
    "causalml-dr",
    "econml-dr-lgbm",
    "econml-cf-lgbm",
    "causalml-x-lgbm",
    "causalml-dr-lgbm",
)


# The smoke size: one of each family, so the harness cannot rot without costing minutes.
QUICK_METHODS = ("ours-auto", "t-raw", "econml-dr", "econml-cf", "causalml-x", "causalml-dr")


def default_methods(assignment: str) -> list[str]:
    """Design propensities exist only for a trial; observational anchors must estimate them."""
    if assignment == "rct":
        return list(METHODS)
    return [
        "ours-auto",
        "ours-dr",
        "ours-auto-noprop",
        "t-raw",
        "econml-dr-lgbm",
        "econml-cf-lgbm",
        "causalml-x-lgbm",
        "causalml-dr-lgbm",
    ]


def _reference(assignment: str) -> str:
    # The acceptance compares with CausalForestDML as a user would run it on that cohort.
    return "econml-cf" if assignment == "rct" else "econml-cf-lgbm"


def _pehe(effect: pd.DataFrame, oracle: pd.DataFrame) -> pd.Series:
    return np.sqrt(((effect[oracle.columns] - oracle) ** 2).mean())


def _policy_value(effect: pd.DataFrame, oracle: pd.DataFrame) -> float:
    """Mean true effect of giving each person their predicted-best arm, ``none`` allowed."""
    predicted = effect[oracle.columns].to_numpy()
    best = predicted.argmin(axis=1)
    helps = predicted[np.arange(len(best)), best] < 0
    true = oracle.to_numpy()[np.arange(len(best)), best]
    return float(np.where(helps, true, 0.0).mean())


def _oracle_value(oracle: pd.DataFrame) -> float:
    return float(np.minimum(oracle.to_numpy().min(axis=1), 0.0).mean())


def _coverage(interval, oracle: pd.DataFrame) -> pd.Series | None:
    if interval is None:
        return None
    lower, upper = interval
    inside = (lower[oracle.columns] <= oracle) & (oracle <= upper[oracle.columns])
    return inside.mean()


def _timed(action, repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each call.

    CPU time (all threads of this process) is reported beside wall time because other agents
    load the machine unevenly: methods timed minutes apart see different contention, and CPU
    time is much less sensitive to it.
    """
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        action()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def _evaluate(key, split, rows_train, rows_test, *, fit_repeats, repeats, latency_calls):
    method = _methods()[key]()
    treatment = split.train["intervention"].astype(str).to_numpy()
    y = split.y(split.train)
    oracle = split.oracle(split.test)
    record = {"key": key, "method": method.name}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_times, fit_cpu = [], []
        for _ in range(fit_repeats):
            method = _methods()[key]()
            start, start_cpu = time.perf_counter(), time.process_time()
            method.fit(
                rows_train,
                treatment,
                y,
                design_shares=split.design_shares(),
                propensity=split.train["propensity"].to_numpy(float),
            )
            fit_times.append(time.perf_counter() - start)
            fit_cpu.append(time.process_time() - start_cpu)
        effect = method.effect(rows_test)
        interval = method.interval(rows_test, ALPHA)
        head = rows_test.head(1000)
        method.effect(head)  # warm-up: first calls pay for lazy imports and caches
        score_times, score_cpu = _timed(lambda: method.effect(head), repeats)
        one = rows_test.head(1)
        method.explain_one(one)
        row_times, row_cpu = _timed(lambda: method.explain_one(one), latency_calls)
    pehe = _pehe(effect, oracle)
    coverage = _coverage(interval, oracle)
    record.update(
        pehe_arm=pehe.to_dict(),
        pehe=float(pehe.mean()),
        policy_share=_policy_value(effect, oracle) / _oracle_value(oracle),
        coverage=None if coverage is None else float(coverage.mean()),
        coverage_arm=None if coverage is None else coverage.to_dict(),
        width=None if interval is None else float((interval[1] - interval[0]).to_numpy().mean()),
        fit_s=float(np.median(fit_times)),
        fit_cpu_s=float(np.median(fit_cpu)),
        fit_runs=len(fit_times),
        score_1k_ms=1000 * float(np.median(score_times)),
        score_1k_cpu_ms=1000 * float(np.median(score_cpu)),
        row_ms=1000 * float(np.median(row_times)),
        row_cpu_ms=1000 * float(np.median(row_cpu)),
        load_after=os.getloadavg()[0],
        explains=method.explains,
        warnings=sorted(
            {
                f"{w.category.__name__}: {str(w.message)[:160]}"
                for w in caught
                if not issubclass(w.category, _QUIET)
            }
        ),
    )
    if hasattr(method, "model_") and hasattr(method.model_, "learner_"):
        record["chosen"] = str(method.model_.learner_)
        record["propensity_source"] = str(getattr(method.model_, "propensity_source_", ""))
    return record


def _import_everything() -> None:
    """Pay the import costs up front so the first method's fit time does not carry them."""
    import importlib

    modules = ("lightgbm", "econml.dr", "econml.dml", "causalml.inference.meta")
    modules += ("recommender.uplift",)
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def run(
    n: int,
    assignment: str,
    *,
    methods: list[str] | None = None,
    repeats: int = 3,
    fit_repeats: int = 1,
    n_test: int = 10_000,
    seed: int = 0,
    latency_calls: int = 50,
    scenario: str = "default",
    log=print,
) -> dict:
    """Fit every method on one split and return the measured records and run facts."""
    from bench._data import Rows, feature_frame, simulated_split

    _import_everything()
    load_before = os.getloadavg()
    split = simulated_split(n, assignment=assignment, seed=seed, n_test=n_test, scenario=scenario)
    rows_train = Rows.of(feature_frame(split.train))
    rows_test = Rows.of(feature_frame(split.test))
    records = []
    for key in methods or default_methods(assignment):
        log(f"[{n} {assignment}] {key} ...")
        try:
            record = _evaluate(
                key,
                split,
                rows_train,
                rows_test,
                fit_repeats=fit_repeats,
                repeats=repeats,
                latency_calls=latency_calls,
            )
        except Exception as error:  # one broken method must not hide the others' figures
            record = {"key": key, "method": key, "error": f"{type(error).__name__}: {error}"}
        log(f"    {_one_line(record)}")
        records.append(record)
    return {
        "n": n,
        "n_test": n_test,
        "assignment": assignment,
        "scenario": scenario,
        "arms": list(split.arms),
        "seed": seed,
        "repeats": repeats,
        "fit_repeats": fit_repeats,
        "latency_calls": latency_calls,
        "oracle_value": _oracle_value(split.oracle(split.test)),
        "load": (load_before, os.getloadavg()),
        "records": records,
    }


def _one_line(record: dict) -> str:
    if "error" in record:
        return f"ERROR {record['error'][:300]}"
    cov = "-" if record["coverage"] is None else f"{record['coverage']:.3f}"
    return (
        f"PEHE {record['pehe']:.3f} policy {record['policy_share']:.3f} cov {cov} "
        f"fit {record['fit_s']:.2f}s (cpu {record['fit_cpu_s']:.2f}s) "
        f"score1k {record['score_1k_ms']:.1f}ms row {record['row_ms']:.2f}ms "
        f"(cpu {record['row_cpu_ms']:.2f}ms) load {record['load_after']:.1f} "
        f"{record.get('chosen', '')} {record.get('propensity_source', '')}"
    )


def _fmt(value, digits=2):
    if value is None:
        return "–"
    return f"{value:.{digits}f}"


def _acceptance(result: dict) -> list[str]:
    by_key = {r["key"]: r for r in result["records"] if "error" not in r}
    ours, reference = by_key.get("ours-auto"), by_key.get(_reference(result["assignment"]))
    if ours is None:
        return ["- ours (auto) did not run: no acceptance figures."]
    lines = []

    def check(label, holds, detail):
        lines.append(f"- {'holds' if holds else '**misses**'}: {label} ({detail})")

    if reference is not None:
        check(
            "mean PEHE ≤ CausalForestDML's",
            ours["pehe"] <= reference["pehe"],
            f"{ours['pehe']:.3f} vs {reference['pehe']:.3f}",
        )
        for clock, field in (("CPU", "fit_cpu_s"), ("wall", "fit_s")):
            check(
                f"fit time ≤ half of CausalForestDML's, {clock} time",
                ours[field] <= 0.5 * reference[field],
                f"{ours[field]:.1f} s vs {reference[field]:.1f} s, ratio "
                f"{ours[field] / reference[field]:.2f}",
            )
    floor = 0.97 if result["assignment"] == "rct" else 0.95
    check(
        f"policy value ≥ {floor:.0%} of the oracle's",
        ours["policy_share"] >= floor,
        f"{ours['policy_share']:.1%}",
    )
    if ours["coverage"] is not None:
        check(
            "90 % intervals cover 85–95 %",
            0.85 <= ours["coverage"] <= 0.95,
            f"{ours['coverage']:.1%}",
        )
    check(
        "single-row effect + explanation < 2 ms (wall)",
        ours["row_ms"] < 2,
        f"{ours['row_ms']:.2f} ms wall, {ours['row_cpu_ms']:.2f} ms CPU",
    )
    return lines


def to_markdown(result: dict, command: str) -> str:
    from bench._report import machine_line

    arms = result["arms"]
    short = {arm: arm.split("_")[0] for arm in arms}
    header = (
        ["method", "mean PEHE"]
        + [f"PEHE {short[a]}" for a in arms]
        + ["policy / oracle", "90 % cover", "fit s wall (CPU)", "score 1k ms wall (CPU)"]
        + ["1-row ms wall (CPU)", "load"]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for record in result["records"]:
        if "error" in record:
            lines.append(f"| {record['method']} | error: {record['error'][:150]} |")
            continue
        name = record["method"]
        if record.get("chosen"):
            name += f" → {record['chosen']}"
        row_ms = f"{_fmt(record['row_ms'])} ({_fmt(record['row_cpu_ms'])})"
        row_ms += "" if record["explains"] else " effect only"
        cells = (
            [name, _fmt(record["pehe"])]
            + [_fmt(record["pehe_arm"][a]) for a in arms]
            + [
                f"{record['policy_share']:.1%}",
                "–" if record["coverage"] is None else f"{record['coverage']:.1%}",
                f"{_fmt(record['fit_s'], 1)} ({_fmt(record['fit_cpu_s'], 1)})",
                f"{_fmt(record['score_1k_ms'], 1)} ({_fmt(record['score_1k_cpu_ms'], 1)})",
                row_ms,
                _fmt(record["load_after"], 1),
            ]
        )
        lines.append("| " + " | ".join(cells) + " |")
    (l1, l5, l15), (e1, e5, e15) = result["load"]
    fits = result["fit_repeats"]
    notes = [
        f"Command: `{command}`",
        "",
        f"Machine: {machine_line()}; load average (1/5/15 min) {l1:.1f}/{l5:.1f}/{l15:.1f} at "
        f"start, {e1:.1f}/{e5:.1f}/{e15:.1f} at end (shared with other agents).",
        "",
        f"`{result.get('scenario', 'default')}` scenario, {result['assignment']} assignment: "
        "training cohort n = "
        f"{result['n']:,} (seed {result['seed']}), separate test cohort n = "
        f"{result['n_test']:,} (another seed); outcome EE change from baseline. Oracle policy "
        f"value {result['oracle_value']:.2f} EE points per person. Root PEHE in EE points. "
        f"Fit time: median of {fits} fit{'s' if fits > 1 else ''} per method; scoring 1,000 "
        f"rows: median of {result['repeats']}; single-row latency: median of "
        f"{result['latency_calls']} calls after a warm-up (ours: `predict_effect` plus "
        "`contributions` for the best arm; anchors: effect only, they have no explanation). "
        "Wall time with CPU time of this process (all its threads) in brackets: other agents "
        "load the 2 cores unevenly, so methods timed minutes apart see different contention "
        "and CPU time compares them more fairly; `load` is the 1-minute load average just "
        "after the method finished.",
    ]
    settings = (
        "Settings: LightGBM defaults (100 trees, 31 leaves) for every nuisance and base model, "
        "one thread everywhere (`n_jobs=1`: on the shared cores two OpenMP threads spin-wait "
        "and time the load rather than the method). EconML at its defaults otherwise (`cv=2`; "
        "CausalForestDML 100 honest trees, `discrete_treatment=True`, all arms in one model; "
        "DRLearner with a LightGBM final model, so no per-person intervals). CausalML "
        "`BaseXRegressor`/`BaseDRRegressor` with `LGBMRegressor`, multi-arm through "
        "`control_name='none'`, propensities passed as data (pairwise arm-vs-none). "
        "'design propensity' = the trial's arm shares; 'lightgbm propensity' = a LightGBM "
        "classifier's estimate (out-of-fold for CausalML). Ours gets the logged "
        "`propensity` column. CausalML's intervals need a bootstrap refit and are not run."
    )
    acceptance = [
        f"Acceptance (issue 3), ours (auto) against `{_reference(result['assignment'])}`:",
        *_acceptance(result),
    ]
    warned = sorted({w for r in result["records"] for w in r.get("warnings", [])})
    body = "\n".join(notes) + "\n\n" + "\n".join(lines) + "\n\n" + settings + "\n\n"
    body += "\n".join(acceptance)
    if warned:
        body += "\n\n<details><summary>warnings raised during the run</summary>\n\n"
        body += "\n".join(f"- {w}" for w in warned[:30]) + "\n\n</details>"
    title = (
        f"## Learners: {result.get('scenario', 'default')} scenario, n = {result['n']:,}, "
        f"{result['assignment']}\n\n"
    )
    return title + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.learners", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--n", type=int, default=20_000, help="training cohort size")
    parser.add_argument("--assignment", choices=["rct", "observational"], default="rct")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of scoring timings")
    parser.add_argument("--fit-repeats", type=int, default=1, help="fits per method (median)")
    parser.add_argument("--latency-calls", type=int, default=50)
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--scenario",
        default="default",
        help="simulator scenario of both cohorts (configs/scenarios/<name>.yaml; e.g. conservative)",
    )
    parser.add_argument("--methods", help=f"comma-separated subset of {','.join(METHODS)}")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run; writes nothing")
    parser.add_argument(
        "--write", action="store_true", help="write docs/benchmarks.md even with --quick"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    methods = args.methods.split(",") if args.methods else None
    if args.quick:
        args.n, args.n_test, args.repeats, args.latency_calls = 1500, 300, 1, 3
        methods = methods or list(QUICK_METHODS)
    unknown = sorted(set(methods or ()) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    result = run(
        args.n,
        args.assignment,
        methods=methods,
        repeats=args.repeats,
        fit_repeats=args.fit_repeats,
        n_test=args.n_test,
        seed=args.seed,
        latency_calls=args.latency_calls,
        scenario=args.scenario,
        log=lambda message: print(message, file=sys.stderr, flush=True),
    )
    command = "python -m bench.learners " + " ".join(argv if argv is not None else sys.argv[1:])
    markdown = to_markdown(result, command.strip())
    print(markdown)
    if (not args.quick or args.write) and not args.no_write:
        from bench._report import write_section

        # The default scenario keeps its historical section names; others get their own.
        suffix = "" if args.scenario == "default" else f"-{args.scenario}"
        write_section(f"learners-{args.n}-{args.assignment}{suffix}", markdown)
    failed = [r["key"] for r in result["records"] if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
