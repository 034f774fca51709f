"""Score interval rules on captured cohorts as ``bench.coverage`` does, and compare them.

A rule's variance scale and extra variance (``bench.interval_rules``) make the interval through
the library's own ``_intervals.combine`` (shrunk jackknife times the scale, floored at the
arm's average-effect variance, plus the extra); the intervals are scored by
``bench.coverage``'s ``_scores``, ``summarise`` and ``acceptance``, per family and over
resamplings of each family's draws, and judged by the bar of ``bench.interval_passes``.
"""

from __future__ import annotations

import numpy as np

from bench import coverage
from bench.interval_capture import CohortCapture
from bench.interval_passes import BASELINE, ELIGIBLE, RESAMPLINGS, passes_bar
from bench.interval_rules import RULES, Rule

__all__ = ["replay_scores", "family_rows", "meets", "resampled_counts", "compare", "report"]


def replay_scores(c: CohortCapture, rule: Rule) -> dict:
    """The rule's 90 % intervals on the cohort's test rows, scored per arm as
    ``bench.coverage.run`` scores a method (arm -> ``_scores``)."""
    from recommender.uplift._intervals import combine

    scale, extra, *floor = rule(c)  # a rule may also set the floor (``dr_floor_rule``)
    _, lower, upper = combine(
        c.effect,
        c.fold_effects,
        typical=c.typical_variance,
        scale=np.asarray(scale, float),
        floor=np.asarray(floor[0], float) if floor else c.variance_floor,
        extra=np.asarray(extra, float),
        alpha=coverage.ALPHA,
    )
    return {
        arm: coverage._scores(lower[:, j], upper[:, j], c.truth[:, j])
        for j, arm in enumerate(c.arms)
    }


def family_rows(captures: dict[str, list[CohortCapture]], rule: Rule, picks=None) -> list[dict]:
    """One ``bench.coverage``-style row per family (``{"family", "ours": summarise(...)}``).
    ``picks``: per family, the indices of the draws to use (a resampling), default all."""
    rows = []
    for family, cohorts in captures.items():
        scored = [replay_scores(c, rule) for c in cohorts]
        chosen = range(len(cohorts)) if picks is None else picks[family]
        rows.append(
            {
                "family": family,
                "ours": coverage.summarise(
                    [scored[i] for i in chosen], [cohorts[i].fit_s for i in chosen]
                ),
            }
        )
    return rows


def meets(row: dict) -> bool:
    """Coverage 86-94 %, no arm below 80 %, width / needed at most 1.2 (the forest's
    comparison does not apply: it is not replayed)."""
    return not coverage.acceptance(row)


def resampled_counts(
    captures: dict[str, list[CohortCapture]],
    rules: dict[str, Rule],
    resamplings: int = RESAMPLINGS,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Per rule, the number of families meeting the acceptance in each of ``resamplings``
    resamplings (with replacement) of every family's draws; the same resamplings for every
    rule."""
    scored = {
        name: {f: [replay_scores(c, rule) for c in cohorts] for f, cohorts in captures.items()}
        for name, rule in rules.items()
    }
    rng = np.random.default_rng(seed)
    picks = [
        {f: rng.integers(0, len(cohorts), len(cohorts)) for f, cohorts in captures.items()}
        for _ in range(resamplings)
    ]
    counts = {}
    for name in rules:
        counts[name] = np.array(
            [
                sum(
                    meets(
                        {
                            "family": f,
                            "ours": coverage.summarise(
                                [scored[name][f][i] for i in pick[f]],
                                [captures[f][i].fit_s for i in pick[f]],
                            ),
                        }
                    )
                    for f in captures
                )
                for pick in picks
            ]
        )
    return counts


def compare(counts: dict[str, np.ndarray], baseline: str = "shipped") -> dict[str, dict]:
    """Per rule: E[count] and the shares of resamplings where it meets the acceptance on more
    (``better``) and on fewer (``worse``) families than ``baseline``."""
    base = counts[baseline]
    return {
        name: {
            "expected": float(c.mean()),
            "better": float(np.mean(c > base)),
            "worse": float(np.mean(c < base)),
        }
        for name, c in counts.items()
    }


# -------------------------------------------------------------------------------- report
def _distance(rows) -> float:
    return float(np.mean([abs(r["ours"]["coverage"] - 0.9) for r in rows]) * 100)


def report(captures, rules: dict[str, Rule], resamplings=RESAMPLINGS, baseline=BASELINE) -> str:
    """The rules' table (families meeting the acceptance, E[count], better / worse than
    ``baseline`` over the resamplings) and their per-family figures, as markdown."""
    rules = rules if baseline in rules else {baseline: RULES[baseline], **rules}
    rows = {name: family_rows(captures, rule) for name, rule in rules.items()}
    counts = resampled_counts(captures, rules, resamplings) if resamplings else None
    summary = compare(counts, baseline) if counts else None
    draws = sorted({c.seed for cohorts in captures.values() for c in cohorts})
    lines = [
        f"Draws: seeds {', '.join(map(str, draws))}; {len(captures)} families, "
        f"{sum(len(v) for v in captures.values())} cohorts; {resamplings} resamplings.",
        "",
        f"| rule | families meeting the acceptance | E[count] | better / worse than {baseline} "
        "| mean distance of coverage from 90 %, points | passes the bar |",
        "|---|---|---|---|---|---|",
    ]
    base = sum(meets(r) for r in rows[baseline])
    for name in rules:
        count = sum(meets(r) for r in rows[name])
        distance = f"{_distance(rows[name]):.1f}"
        if not summary:
            lines.append(f"| {name} | {count} | - | - | {distance} | - |")
            continue
        s = summary[name]
        if name == baseline:
            lines.append(f"| {name} | {count} | {s['expected']:.2f} | - | {distance} | - |")
            continue
        gain = s["expected"] - summary[baseline]["expected"]
        ok = passes_bar(count, base, s["better"], s["worse"], gain)
        verdict = ("yes" if ok else "no") + ("" if name in ELIGIBLE else " (not eligible)")
        lines.append(
            f"| {name} | {count} | {s['expected']:.2f} | {s['better']:.2f} / {s['worse']:.2f} "
            f"| {distance} | {verdict} |"
        )
    lines += ["", "Per family, coverage (range) worst arm, width / needed; * meets all:", ""]
    lines.append("| family | " + " | ".join(rules) + " |")
    lines.append("|---|" + "---|" * len(rules))
    for i, family in enumerate(captures):
        cells = []
        for name in rules:
            o = rows[name][i]["ours"]
            by = o["coverage_by_cohort"]
            cells.append(
                f"{o['coverage']:.1%} ({min(by):.0%}-{max(by):.0%}) {o['min_arm']:.1%}, "
                f"{o['inflation']:.2f}" + (" *" if meets(rows[name][i]) else "")
            )
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
