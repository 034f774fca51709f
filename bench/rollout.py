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
    gate keeps the model being served, as a program would. The product's gate refuses every
    challenger on a greedy log (it cannot measure how it differs from the champion); the
    program promotes it by hand (``promote --force``) when it would otherwise pass, so this
    is greedy with self-promotion, the comparator measured before the gate refused it.
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

The code: one cycle (serve, log, retrain) in ``bench.rollout_cycle``, the off-policy check in
``bench.rollout_offpolicy``, the program in ``bench.rollout_program`` and the report in
``bench.rollout_report``; this module is the command line.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from bench.rollout_program import run
from bench.rollout_report import to_markdown

__all__ = ["run", "to_markdown", "main"]


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
