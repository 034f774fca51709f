"""The Markdown section of ``bench.rollout``: per scenario, each strategy's share of the
oracle's value by cycle, the loop's exploration cost, the arms retrained models learnt, and the
off-policy estimates against the truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.rollout_program import STRATEGIES

__all__ = ["to_markdown"]


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
