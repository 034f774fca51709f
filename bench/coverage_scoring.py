"""How ``bench.coverage`` scores 90 % intervals against the truth, and the acceptance.

Per cohort and arm, which pairs are covered, the widths and how far the truth lies from the
centre in half-widths (``_scores``); per family, the figures over its realisations
(``summarise``); and issue 14's acceptance criteria on them (``criteria``, ``acceptance``).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ALPHA",
    "CRITERIA",
    "summarise",
    "criteria",
    "acceptance",
    "acceptance_report",
]

ALPHA = 0.1


def _scores(lower, upper, oracle) -> dict:
    lo, hi, truth = (np.asarray(v, float) for v in (lower, upper, oracle))
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    return {
        "covered": (lo <= truth) & (truth <= hi),
        "width": hi - lo,
        "t": np.abs(truth - centre) / np.maximum(half, 1e-12),
    }


def summarise(realisations: list[dict], fit_times: list[float]) -> dict:
    """One family's figures from its realisations (each: arm -> ``_scores``).

    Coverage is each realisation's share of person-arm pairs covered, averaged over the
    realisations (the frequentist promise is over data draws), with their spread; an arm's
    coverage likewise. Width and the needed factor pool every realisation's pairs."""
    arms = list(realisations[0].keys())
    by_realisation = np.array(
        [np.concatenate([r[a]["covered"] for a in arms]).mean() for r in realisations]
    )
    arm_coverage = {a: float(np.mean([r[a]["covered"].mean() for r in realisations])) for a in arms}
    width = np.concatenate([r[a]["width"] for r in realisations for a in arms])
    t = np.concatenate([r[a]["t"] for r in realisations for a in arms])
    needed = float(np.quantile(t, 1 - ALPHA))
    return {
        "coverage": float(by_realisation.mean()),
        "coverage_by_cohort": [float(c) for c in by_realisation],
        "coverage_sd": float(by_realisation.std(ddof=1)) if len(by_realisation) > 1 else 0.0,
        "min_arm": float(min(arm_coverage.values())),
        "arm_coverage": {str(a): c for a, c in arm_coverage.items()},
        "width": float(width.mean()),
        "needed": needed,
        "inflation": 1.0 / needed if needed > 0 else float("inf"),
        "fit_s": float(np.median(fit_times)),
    }


CRITERIA = (
    "coverage 86-94 %",
    "no arm below 80 %",
    "width / needed at most 1.2",
    "narrower than the forest where both cover",
)


def criteria(row: dict) -> list[tuple[str, bool | None, str]]:
    """The issue's acceptance per family: (criterion, holds, figures) for each of ``CRITERIA``;
    ``holds`` is None when the criterion does not apply (the forest not run, or not covering)."""
    ours, forest = row["ours"], row.get("forest")
    out = [
        (CRITERIA[0], 0.86 <= ours["coverage"] <= 0.94, f"{ours['coverage']:.1%}"),
        (CRITERIA[1], ours["min_arm"] >= 0.80, f"worst arm {ours['min_arm']:.1%}"),
        (CRITERIA[2], ours["inflation"] <= 1.2, f"{ours['inflation']:.2f}"),
    ]
    if forest and forest["coverage"] >= 0.86 and ours["coverage"] >= 0.86:
        out.append(
            (
                CRITERIA[3],
                ours["width"] < forest["width"],
                f"{ours['width']:.3g} vs {forest['width']:.3g}",
            )
        )
    else:
        why = "forest not run" if not forest else f"forest covers {forest['coverage']:.1%}"
        if forest and ours["coverage"] < 0.86:
            why = f"ours covers {ours['coverage']:.1%}"
        out.append((CRITERIA[3], None, f"does not apply ({why})"))
    return out


def acceptance(row: dict) -> list[str]:
    """The criteria that fail for this family; an empty list means it holds."""
    return [f"{name}: {figures}" for name, holds, figures in criteria(row) if holds is False]


def acceptance_report(result: dict) -> str:
    """Each criterion of issue 14 for each family, and whether it holds."""
    lines = []
    judged = [row for row in result["families"] if "ours" in row]
    for row in judged:
        lines.append(f"- `{row['family']}`:")
        for name, holds, figures in criteria(row):
            verdict = "n/a" if holds is None else ("holds" if holds else "FAILS")
            lines.append(f"  - {verdict}: {name} ({figures})")
    failing = [row["family"] for row in judged if acceptance(row)]
    lines.append(
        f"\nFamilies meeting every criterion: {len(judged) - len(failing)} of "
        f"{len(judged)}" + (f" (not: {', '.join(failing)})" if failing else "")
    )
    return "\n".join(lines)
