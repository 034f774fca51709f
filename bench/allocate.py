"""Planning benchmark: the README's cohort plan and a 10,000-profile /allocate, against the
plain MILP.

The demo cohort (20,000 simulated people, six arms with usual care) is scored once by the
champion; then the same allocation (the README's budget, the catalog's capacities, group sizes
and eligibility) is solved by :func:`recommender.policy.plan_allocation` (what ``recommender
allocate`` and ``/allocate`` call) ``--repeats`` times; once as the same program with every
(person, arm) pair a whole number too; and once as the plain MILP ``recommender allocate``
solved before (a whole number per pair, no count variables), over every pair and over the
pairs an optimal plan can use. All are compared with the LP relaxation's bound. Then
``recommender allocate`` end to end (load, validate, score, plan, write) and a 10,000-profile
``/allocate`` through the service's ASGI app in process (gate, validation, scoring, plan, audit
rows, the response model) are timed ``--repeats`` times. Times of repeated runs are medians;
the load average is read before, between and after.

Run: ``.venv/bin/python -m bench.allocate --home models`` (after ``make demo``); without
``--home`` the demo model is trained in a temporary folder. The models folder is only read:
the /allocate audit rows go to a temporary database.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench._report import machine_line, markdown_table, median, write_section

BUDGET = 50_000.0
SERVICE_ROWS = 10_000
KEY = "bench-allocate-key-0123"
TARGET_SECONDS, TARGET_GAP = 20.0, 1e-3


def _timed(work):
    start = time.perf_counter()
    out = work()
    return time.perf_counter() - start, out


def run(data: Path, *, budget: float, plain_limit: float, kept_limit: float, repeats: int) -> dict:
    import pandas as pd

    from pipelines.allocate import plan_cohort
    from recommender.catalog import load_catalog
    from recommender.policy import _program, _solver, plan_allocation
    from recommender.registry import load_champion

    load = [os.getloadavg()[0]]
    model, version = load_champion()
    catalog = load_catalog()
    frame = pd.read_parquet(data).reset_index(drop=True)
    scoring, prediction = _timed(lambda: model.predict(model.encode(frame), alpha=0.1))

    def plan():
        return plan_allocation(
            catalog,
            frame,
            prediction.effect,
            prediction.lower,
            prediction.upper,
            arms=prediction.arms,
            budget=budget,
            time_limit=60,
        )

    fast = [_timed(plan) for _ in range(repeats)]
    cohort = fast[-1][1]
    allocation = cohort.allocation

    # The references see every pair the plan may use: eligible, offered, expected to help.
    arms = list(cohort.arms)
    columns = [list(prediction.arms).index(a) for a in arms]
    effects = pd.DataFrame(prediction.effect[:, columns], columns=arms)
    eligible = pd.DataFrame(cohort.allowed, columns=arms)
    benefit, allowed, _ = _program.checked_inputs(
        effects, cohort.limits, budget, eligible, None, False
    )
    program = _program.build_program(benefit, allowed, arms, cohort.limits, budget)
    lp_time, bound = _timed(lambda: _solver.lp_bound(program, plain_limit))
    kept = allowed & _program.candidate_pairs(benefit, allowed, arms, cohort.limits, budget)
    pruned = _program.build_program(benefit, kept, arms, cohort.limits, budget)
    references = [
        _reference(
            f"the same program with every pair a whole number too, over the {int(kept.sum()):,} "
            f"pairs an optimal plan can use (limit {kept_limit:g} s)",
            lambda: _solver.plain_milp(pruned, kept_limit),
        ),
        _reference(
            "plain MILP as before (a whole number per pair, no count variables), every pair "
            f"(limit {plain_limit:g} s)",
            lambda: _before(benefit, allowed, arms, cohort.limits, budget, plain_limit),
        ),
        _reference(
            f"plain MILP as before, over the {int(kept.sum()):,} pairs an optimal plan can use "
            f"(limit {kept_limit:g} s)",
            lambda: _before(benefit, kept, arms, cohort.limits, budget, kept_limit),
        ),
    ]
    load.append(os.getloadavg()[0])

    with tempfile.TemporaryDirectory() as folder:
        command = [
            _timed(
                lambda: plan_cohort(
                    "champion", data, Path(folder) / "plan.csv", budget=budget, time_limit=60
                )
            )[0]
            for _ in range(repeats)
        ]
    load.append(os.getloadavg()[0])
    service = _service_allocate(frame.head(SERVICE_ROWS), budget=budget, repeats=repeats)
    load.append(os.getloadavg()[0])
    return {
        "version": version,
        "people": len(frame),
        "pairs": int(allowed.sum()),
        "scoring": scoring,
        "fast": median(t for t, _ in fast),
        "fast_all": [t for t, _ in fast],
        "fast_value": allocation.expected_points_avoided,
        "fast_bound": allocation.bound,
        "fast_gap": allocation.gap,
        "fast_status": allocation.status,
        "people_per_arm": allocation.summary["people"].to_dict(),
        "lp": lp_time,
        "bound": bound,
        "references": references,
        "command": median(command),
        "command_all": command,
        "service": service,
        "load": load,
    }


def _reference(what: str, solve) -> dict:
    seconds, result = _timed(solve)
    found = result.x is not None
    return {
        "what": what,
        "seconds": seconds,
        "value": -float(result.fun) if found else float("nan"),
        "gap": getattr(result, "mip_gap", None) if found else None,
        "status": result.message,
    }


def _before(benefit, allowed, arms, limits, budget, time_limit):
    """The plain MILP ``recommender allocate`` solved before: a whole number per (person, arm)
    pair and per group, capacity and budget written over the pairs, no count variables."""
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix, csr_matrix, vstack

    n, k = benefit.shape
    people, arm_of = np.nonzero(allowed)
    m = people.size
    grouped = [j for j, a in enumerate(arms) if limits[a].group_min > 1 or limits[a].group_max > 1]
    n_vars = m + len(grouped)
    cost = np.array([float(limits[a].cost_per_person) for a in arms])
    capacity = np.array(
        [np.inf if limits[a].capacity is None else float(min(limits[a].capacity, n)) for a in arms]
    )
    count = coo_matrix((np.ones(m), (arm_of, np.arange(m))), shape=(k, n_vars)).tocsr()
    rows = [coo_matrix((np.ones(m), (people, np.arange(m))), shape=(n, n_vars)), count]
    lower, upper = [np.zeros(n), np.zeros(k)], [np.ones(n), capacity]
    for g, j in enumerate(grouped):
        groups = csr_matrix(([1.0], ([0], [m + g])), shape=(1, n_vars))
        rows += [count[j] - limits[arms[j]].group_min * groups]
        rows += [count[j] - limits[arms[j]].group_max * groups]
        lower += [np.zeros(1), np.array([-np.inf])]
        upper += [np.array([np.inf]), np.zeros(1)]
    if budget is not None:
        spend = np.zeros(n_vars)
        spend[:m] = cost[arm_of]
        rows.append(csr_matrix(spend[None, :]))
        lower.append(np.array([-np.inf]))
        upper.append(np.array([float(budget)]))
    objective = np.zeros(n_vars)
    objective[:m] = -benefit[people, arm_of]
    var_upper = np.ones(n_vars)
    for g, j in enumerate(grouped):
        var_upper[m + g] = np.floor(min(capacity[j], n) / limits[arms[j]].group_min)
    result = milp(
        objective,
        constraints=LinearConstraint(
            vstack(rows).tocsr(), np.concatenate(lower), np.concatenate(upper)
        ),
        integrality=np.ones(n_vars),
        bounds=Bounds(np.zeros(n_vars), var_upper),
        options={"time_limit": time_limit, "mip_rel_gap": 1e-6, "disp": False},
    )
    if result.x is not None:
        dual = getattr(result, "mip_dual_bound", None)
        best = -float(dual) if dual is not None and np.isfinite(dual) else -float(result.fun)
        result.mip_gap = max(best + float(result.fun), 0.0) / max(abs(best), 1e-12)
    return result


def _service_allocate(frame, *, budget: float, repeats: int) -> dict:
    """``/allocate`` with ``len(frame)`` profiles through the service's ASGI app, in process."""
    from starlette.testclient import TestClient

    from recommender.cohort import PROFILE_COLUMNS
    from recommender.service import service as service_module

    profiles = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in frame[[c for c in PROFILE_COLUMNS if c in frame.columns]].to_dict("records")
    ]
    body = {"profiles": profiles, "budget": budget}
    times, answer = [], None
    with tempfile.TemporaryDirectory() as folder:
        names = ("RECOMMENDER_API_KEYS", "RECOMMENDER_AUDIT_URL", "BENTOML_HOME")
        saved = {k: os.environ.get(k) for k in names}
        os.environ["RECOMMENDER_API_KEYS"] = f"program={KEY}"
        os.environ["RECOMMENDER_AUDIT_URL"] = f"sqlite:///{Path(folder) / 'audit.db'}"
        os.environ["BENTOML_HOME"] = str(Path(folder) / "bentoml")
        try:
            app = service_module.Recommender.to_asgi()
            with TestClient(app) as client:
                for _ in range(repeats):
                    seconds, response = _timed(
                        lambda: client.post(
                            "/allocate",
                            json=body,
                            headers={"Authorization": f"Bearer {KEY}"},
                            timeout=600,
                        )
                    )
                    if response.status_code != 200:
                        raise RuntimeError(
                            f"/allocate answered {response.status_code}: {response.text[:500]}"
                        )
                    times.append(seconds)
                    answer = response.json()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return {
        "rows": len(profiles),
        "seconds": median(times),
        "all": times,
        "status": answer["status"],
        "gap": answer.get("gap"),
        "points": answer["expected_points_avoided"],
        "cost": answer["total_cost"],
    }


def report(r: dict, command: str, budget: float) -> str:
    def gap(value):
        if r["bound"] is None or value != value:
            return "-"
        return f"{max(r['bound'] - value, 0.0) / abs(r['bound']):.4%}"

    s = r["service"]
    met = r["fast"] <= TARGET_SECONDS and (
        r["fast_gap"] <= TARGET_GAP or r["fast_status"] == "optimal"
    )

    def solved(what, seconds, value, proven, status):
        known = proven is not None and proven == proven
        return {
            "what": what,
            "seconds": seconds,
            "EE points avoided": f"{value:.4f}",
            "proven gap to optimum": f"{proven:.4%}" if known else "-",
            "gap to LP bound": gap(value),
            "status": status,
        }

    rows = [
        solved(
            f"`plan_allocation`, median of {len(r['fast_all'])} (whole counts and groups, "
            "continuous pairs; the plan of `recommender allocate` and `/allocate`)",
            r["fast"],
            r["fast_value"],
            r["fast_gap"],
            r["fast_status"],
        ),
        *(
            solved(ref["what"], ref["seconds"], ref["value"], ref["gap"], ref["status"])
            for ref in r["references"]
        ),
        {
            "what": "LP relaxation (the bound)",
            "seconds": r["lp"],
            "EE points avoided": "-" if r["bound"] is None else f"{r['bound']:.4f}",
            "proven gap to optimum": "",
            "gap to LP bound": "",
            "status": "",
        },
        {
            "what": f"`recommender allocate` end to end, median of {len(r['command_all'])} "
            "(load, validate, score, plan, write)",
            "seconds": r["command"],
            "EE points avoided": "",
            "proven gap to optimum": "",
            "gap to LP bound": "",
            "status": "",
        },
        {
            "what": f"`/allocate` with {s['rows']:,} profiles, in process, median of "
            f"{len(s['all'])} (gate, checks, scoring, plan, audit, response model)",
            "seconds": s["seconds"],
            "EE points avoided": f"{s['points']:.3f}",
            "proven gap to optimum": "" if s["gap"] is None else f"{s['gap']:.4%}",
            "gap to LP bound": "",
            "status": s["status"],
        },
    ]
    runs = ", ".join(f"{t:.2f}" for t in r["fast_all"])
    service_runs = ", ".join(f"{t:.1f}" for t in s["all"])
    command_runs = ", ".join(f"{t:.1f}" for t in r["command_all"])
    load = ", ".join(f"{x:.1f}" for x in r["load"])
    return "\n".join(
        [
            "## Cohort planning: 20,000 people under the README's budget",
            "",
            f"`{command}`",
            "",
            machine_line() + f"; load average (1 min) {load} at the start, after the solvers, "
            "after the command runs and after the /allocate runs.",
            "",
            f"The demo cohort ({r['people']:,} people, {r['pairs']:,} eligible (person, arm) "
            f"pairs expected to help) scored by champion version {r['version']} (scoring took "
            f"{r['scoring']:.1f} s), budget ${budget:,.0f}, the catalog's capacities, group sizes "
            "and eligibility. Target (issue 12): at most 20 s with a gap of at most 0.1 % (or the "
            f"exact answer): **{'met' if met else 'not met'}**. The plan: "
            + ", ".join(f"{arm} {people}" for arm, people in r["people_per_arm"].items())
            + ".",
            "",
            markdown_table(
                rows,
                [
                    "what",
                    "seconds",
                    "EE points avoided",
                    "proven gap to optimum",
                    "gap to LP bound",
                    "status",
                ],
            ),
            "",
            f"Each run: `plan_allocation` {runs} s; `recommender allocate` {command_runs} s; "
            f"`/allocate` {service_runs} s (solver limit there: half the request timeout).",
            "",
            "Why it is exact and fast: at most K people can get any arm (the arms' places "
            "together, and what the budget buys at the cheapest arm), and a plan giving an arm to "
            "someone outside that arm's K best-benefiting eligible people can give it to one of "
            "them instead, at the same cost and counts; so only those pairs enter the program. "
            "In it only the arms' counts and group counts are whole-number variables: once they "
            "are fixed, the pairs' constraints (one arm per person, each arm its count, each "
            "role its floor) are totally unimodular, so the best assignment for them is whole "
            "(a plan whose pairs the solver left fractional is solved again as whole numbers at "
            "the same counts). HiGHS branches on about ten variables instead of thousands and "
            "proves the plan optimal against its own bound (the 'proven gap to optimum'), so its "
            "work does not grow with the cohort, and a loaded machine slows it by a factor, not "
            "into its time limit (HiGHS runs without its presolve, which does not heed the time "
            "limit). With the count variables HiGHS solves even the program with "
            "every pair whole about as fast over the kept pairs; the plain MILP without them "
            "needs minutes over the kept pairs and finds no plan over every pair. The gap to the "
            "LP relaxation is the integrality gap of the problem itself (whole people within the "
            "budget and places): the plain MILP's plan over the kept pairs, the same plan, has the "
            "same gap, so no plan "
            "can close it, and the target is met by its other branch, the exact answer.",
        ]
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.allocate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--home", default=None, help="models folder with the demo champion")
    parser.add_argument(
        "--data", default=None, help="the demo cohort (Parquet; default <home>/demo/cohort.parquet)"
    )
    parser.add_argument("--budget", type=float, default=BUDGET)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--plain-limit",
        type=float,
        default=60.0,
        help="seconds the plain MILP over every pair may take (HiGHS checks it only after "
        "its presolve, so it may run longer)",
    )
    parser.add_argument(
        "--kept-limit",
        type=float,
        default=400.0,
        help="seconds the plain MILP over the pairs an optimal plan can use may take",
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not write the report")
    args = parser.parse_args(argv)
    command = "python -m bench.allocate " + " ".join(argv if argv is not None else sys.argv[1:])
    temporary = None
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    if args.home:
        os.environ["RECOMMENDER_HOME"] = str(Path(args.home).resolve())
    else:
        temporary = tempfile.mkdtemp(prefix="bench-allocate-")
        os.environ["RECOMMENDER_HOME"] = temporary
    os.environ.setdefault("RECOMMENDER_AUDIT_SALT", "bench-salt-not-secret")
    try:
        data = Path(args.data) if args.data else None
        if data is None and args.home:
            data = Path(args.home) / "demo" / "cohort.parquet"
        if data is None:
            from recommender.cohort import write_cohort
            from recommender.simulate import simulate_cohort

            data = Path(os.environ["RECOMMENDER_HOME"]) / "cohort.parquet"
            # text columns as text, as the project writes its tables (and MLflow's schema wants)
            write_cohort(simulate_cohort("default", n=20_000, seed=7, assignment="rct"), data)
        if temporary:
            from pipelines.train import run_training

            run_training(data=str(data), reason="planning benchmark")
        results = run(
            data,
            budget=args.budget,
            plain_limit=args.plain_limit,
            kept_limit=args.kept_limit,
            repeats=args.repeats,
        )
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
    markdown = report(results, command.strip(), args.budget)
    print(markdown)
    if not args.no_write:
        write_section("allocate", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
