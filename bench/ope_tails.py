"""Coverage of the off-policy estimates' 95 % intervals when the logging probabilities are small.

A log generator of its own (nothing from ``recommender.simulate``): four kinds of people (40,
30, 20 and 10 % of the log), each with a favoured arm served with most of the probability, the
others with the smallest probability ``p`` (usual care at 0.1 for two kinds; with six arms one
middle arm at 0.05), outcomes with t(3) noise (heavy tails), and a doubly robust outcome model
off by about one point per cell (a wrong model, as DR must survive). Two target policies: the
favoured arms ("close" to the log's) and, per kind, its least served arm ("far"). The truth is
the policy's value against usual care on the kinds' shares.

For each cell (rows x smallest probability x arms x policy) ``off_policy_values`` is run on
``--seeds`` logs, given every row's logged probabilities (as the service's log keeps them), and
the report gives, for IPS, SNIPS and DR, the share of logs whose interval holds the truth among
those given a figure, and the share given a figure ("not measurable" withholds it).

    python -m bench.ope_tails                # 400 seeds per cell, about 15 minutes
    python -m bench.ope_tails --seeds 100 --rows 500 2000
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import numpy as np
import pandas as pd

__all__ = ["cell", "main"]

SHARES = np.array([0.4, 0.3, 0.2, 0.1])
KINDS = len(SHARES)
METHODS = ("ips", "snips", "dr")


def _design(arms: int, smallest: float):
    """``(mean outcome per kind and arm, logging probabilities per kind and arm, policies)``."""
    rng = np.random.default_rng(100 + arms)
    mean = rng.normal(0, 3, size=(KINDS, arms))
    favoured = np.array([1, arms - 1, 0, 1])
    logging = np.zeros((KINDS, arms))
    for kind in range(KINDS):
        others = [a for a in range(arms) if a != favoured[kind]]
        logging[kind, others] = smallest
        if kind in (0, 1) and favoured[kind] != 0:
            logging[kind, 0] = 0.1  # usual care
        if arms > 2:
            middle = [a for a in others if a != 0][0]
            logging[kind, middle] = max(0.05, smallest)
        logging[kind, favoured[kind]] = 1 - logging[kind].sum()
    far = np.array(
        [min(range(1, arms), key=lambda a, k=kind: (logging[k, a], a)) for kind in range(KINDS)]
    )
    return mean, logging, {"close": favoured, "far": far}


def cell(
    rows: int,
    smallest: float,
    arms: int,
    policy: str,
    seeds: int,
    seed: int,
    with_probabilities: bool = True,
) -> dict:
    """Coverage and share given of each estimate's interval over ``seeds`` logs of one cell;
    ``with_probabilities=False`` gives the estimates no row's logged probabilities of other arms
    (as an older log's rows), so nothing is withheld for want of rows: the intervals as they were
    before the check."""
    from recommender.evaluation import off_policy_values

    mean, logging, policies = _design(arms, smallest)
    target = policies[policy]
    truth = float((SHARES * (mean[np.arange(KINDS), target] - mean[:, 0])).sum())
    model = mean + np.random.default_rng(7).normal(0, 1, size=mean.shape)
    names = np.array(["none"] + [f"arm{k}" for k in range(1, arms)], dtype=object)
    offered = [
        {names[a]: float(logging[k, a]) for a in range(arms) if logging[k, a] > 0}
        for k in range(KINDS)
    ]
    rng = np.random.default_rng(seed)
    held = {m: [] for m in METHODS}
    given = {m: 0 for m in METHODS}
    for _ in range(seeds):
        kind = np.searchsorted(np.cumsum(SHARES), rng.random(rows), side="right").clip(0, KINDS - 1)
        served = (rng.random(rows)[:, None] > np.cumsum(logging, axis=1)[kind]).sum(1)
        served = served.clip(0, arms - 1)
        probability = logging[kind, served]
        outcome = mean[kind, served] + 2.0 * rng.standard_t(3, size=rows)
        scores = model[kind].copy()
        every = np.arange(rows)
        scores[every, served] += (outcome - model[kind, served]) / probability
        values = off_policy_values(
            names[served],
            probability,
            outcome,
            names[target[kind]],
            dr_scores=pd.DataFrame(scores, columns=list(names)),
            alpha=0.05,
            candidates=[offered[k] for k in kind] if with_probabilities else None,
        )
        for method in METHODS:
            estimate = values[method]
            if np.isfinite(estimate.lower):
                given[method] += 1
                held[method].append(estimate.lower <= truth <= estimate.upper)
    return {
        method: (float(np.mean(held[method])) if held[method] else float("nan"), given[method])
        for method in METHODS
    }


def _shown(covered: float, given: int, seeds: int) -> str:
    if given == 0:
        return "not measurable"
    share = "" if given == seeds else f" ({given / seeds:.0%} given)"
    return f"{covered:.3f}{share}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ope_tails", description=__doc__)
    parser.add_argument("--seeds", type=int, default=400, help="logs per cell (default 400)")
    parser.add_argument("--rows", type=int, nargs="+", default=[500, 2000, 20000])
    parser.add_argument("--smallest", type=float, nargs="+", default=[0.1, 0.01, 0.001])
    parser.add_argument("--arms", type=int, nargs="+", default=[2, 6])
    parser.add_argument(
        "--without-probabilities",
        action="store_true",
        help="give the estimates no row's probabilities of other arms: the intervals unchecked",
    )
    args = parser.parse_args(argv)
    if args.seeds < 1 or min(args.rows) < 10 or min(args.arms) < 2:
        parser.error("--seeds at least 1, --rows at least 10, --arms at least 2")
    if not all(0 < p < 0.2 for p in args.smallest):
        parser.error("--smallest: probabilities above 0 and below 0.2")
    given = " ".join(sys.argv[1:] if argv is None else argv)
    print(f"`python -m bench.ope_tails{' ' + given if given else ''}`\n")
    print("| rows | smallest p | arms | policy | IPS | SNIPS | DR | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    grid = itertools.product(args.rows, args.smallest, args.arms, ("close", "far"))
    for number, (rows, smallest, arms, policy) in enumerate(grid):
        started = time.perf_counter()
        found = cell(
            rows,
            smallest,
            arms,
            policy,
            args.seeds,
            seed=1000 + number,
            with_probabilities=not args.without_probabilities,
        )
        shown = " | ".join(_shown(*found[m], args.seeds) for m in METHODS)
        seconds = time.perf_counter() - started
        print(f"| {rows:,} | {smallest:g} | {arms} | {policy} | {shown} | {seconds:.0f} |")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
