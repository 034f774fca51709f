"""Replay interval rules on captured cohorts and score them as ``bench.coverage`` does.

A rule maps one cohort's capture (``bench.interval_capture``) to a per-arm variance scale and
a per-arm extra variance; the interval is then made by the library's own
``_intervals.combine`` (shrunk jackknife times the scale, floored at the arm's average-effect
variance, plus the extra) and scored by ``bench.coverage``'s ``_scores``, ``summarise`` and
``acceptance``. The shipped rule's replay gives ``bench.coverage``'s figures exactly
(``verify``).

The rules, and the record of each pass's rules and bars as fixed before scoring, are in
``bench.interval_rules`` and ``bench.interval_passes``; the scoring in
``bench.interval_scoring``. This module is the command line; it also re-exports those names,
which the tests and the passes' notes use from here.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import coverage
from bench.interval_capture import (
    capture_cohort,
    capture_path,
    load_dir,
    save,
)
from bench.interval_errors import dr_error, rival_ratio, world_correction, world_miss_spread
from bench.interval_passes import BASELINE, ELIGIBLE, RESAMPLINGS, passes_bar
from bench.interval_rules import (
    RULES,
    dr_floor_rule,
    fifth_pass,
    gap_upper_rule,
    held_out_gap,
    lead_b,
    rival_scale_rule,
    shipped,
    stable_floor_rule,
    third_pass,
    world_floor,
    world_floor_rule,
)
from bench.interval_scoring import (
    compare,
    family_rows,
    meets,
    replay_scores,
    report,
    resampled_counts,
)

__all__ = [
    "RULES",
    "RESAMPLINGS",
    "replay_scores",
    "family_rows",
    "meets",
    "resampled_counts",
    "compare",
    "main",
    # moved to bench.interval_rules, bench.interval_errors, bench.interval_passes and
    # bench.interval_scoring; the tests and the passes' notes still use them from here
    "ELIGIBLE",
    "dr_error",
    "dr_floor_rule",
    "fifth_pass",
    "gap_upper_rule",
    "held_out_gap",
    "lead_b",
    "passes_bar",
    "rival_ratio",
    "rival_scale_rule",
    "shipped",
    "stable_floor_rule",
    "third_pass",
    "world_correction",
    "world_floor",
    "world_floor_rule",
    "world_miss_spread",
]


def verify(directory, families, seeds, *, quick=False) -> float:
    """Largest difference between ``bench.coverage.run``'s figures for ``families`` on
    ``seeds`` (fitted afresh) and the replayed shipped rule on the captures of the same draws."""
    captures = load_dir(directory)
    fresh = coverage.run(families, quick=quick, methods=("ours",), seeds=seeds, log=lambda _: None)
    worst = 0.0
    for row in fresh["families"]:
        kept = {row["family"]: [c for c in captures[row["family"]] if c.seed in row["seeds"]]}
        replayed = family_rows(kept, shipped)[0]["ours"]
        for key in ("coverage", "min_arm", "width", "needed"):
            worst = max(worst, abs(row["ours"][key] - replayed[key]))
        for a, b in zip(row["ours"]["coverage_by_cohort"], replayed["coverage_by_cohort"]):
            worst = max(worst, abs(a - b))
        print(
            f"{row['family']} seeds {row['seeds']}: bench.coverage {row['ours']['coverage']:.4f}"
            f" / {row['ours']['inflation']:.4f}, replay {replayed['coverage']:.4f} / "
            f"{replayed['inflation']:.4f}"
        )
    return worst


# ----------------------------------------------------------------------------------- CLI
def capture(
    directory, families=None, seeds=None, *, quick=False, with_rival=True, log=print
) -> None:
    """Capture every cohort of ``families`` on ``seeds`` (IHDP: its own) not yet captured."""
    for family in coverage.selected_families(families, quick=quick):
        for seed in coverage.family_seeds(family, seeds, quick=quick):
            path = capture_path(directory, family.name, seed)
            if path.exists():
                continue
            start = time.time()
            cohort = coverage.draw(family, seed, quick=quick)
            captured = capture_cohort(cohort, family=family.name, seed=seed, with_rival=with_rival)
            save(captured, path)
            log(f"{family.name} seed {seed}: {time.time() - start:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.interval_replay", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cap = sub.add_parser("capture", help="fit and capture cohorts (resumes where it stopped)")
    cap.add_argument("directory")
    cap.add_argument("--seeds", help="comma-separated (default: bench.coverage's held-out)")
    cap.add_argument("--families", help="comma-separated (default: all but IHDP)")
    cap.add_argument("--quick", action="store_true", help="bench.coverage's --quick cohorts")
    cap.add_argument(
        "--no-rival-world",
        action="store_true",
        help="skip the ninth pass's rival world (it doubles the bootstrap's work)",
    )
    rep = sub.add_parser("replay", help="score the rules on a directory of captures")
    rep.add_argument("directory")
    rep.add_argument("--rules", default=",".join(RULES))
    rep.add_argument("--resamplings", type=int, default=RESAMPLINGS)
    rep.add_argument("--baseline", default=BASELINE, help="the rule the others are judged against")
    ver = sub.add_parser("verify", help="compare the shipped replay with bench.coverage.run")
    ver.add_argument("directory")
    ver.add_argument("--families", required=True)
    ver.add_argument("--seeds", required=True)
    ver.add_argument("--quick", action="store_true", help="the captures were made with --quick")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")] if getattr(args, "seeds", None) else None
    if args.command == "capture":
        families = (
            args.families.split(",")
            if args.families
            else [f.name for f in coverage.FAMILIES if f.generate is not None]
        )
        capture(
            args.directory,
            families,
            seeds,
            quick=args.quick,
            with_rival=not args.no_rival_world,
            log=lambda m: print(m, file=sys.stderr, flush=True),
        )
    elif args.command == "replay":
        captures = load_dir(args.directory)
        unknown = set(args.rules.split(",")) - set(RULES)
        if unknown:
            parser.error(f"unknown rules {sorted(unknown)}; known: {', '.join(RULES)}")
        rules = {name: RULES[name] for name in args.rules.split(",")}
        if args.baseline not in RULES:
            parser.error(f"unknown baseline {args.baseline!r}; known: {', '.join(RULES)}")
        print(report(captures, rules, args.resamplings, baseline=args.baseline))
    else:
        worst = verify(Path(args.directory), args.families.split(","), seeds, quick=args.quick)
        print(f"largest difference: {worst:.3g}")
        return 0 if worst == 0 else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
