"""The card's subgroup section: what the learned policy recommends to each group and what it is
worth there, with a plain reading of each group's interval (too few to judge, worse than usual
care, more or less than overall) so that a wide interval is not read as a finding."""

from __future__ import annotations

from recommender.card._format import fmt, interval_level, why_missing
from recommender.card._plot_text import plot_block
from recommender.card._loop import carried_arms

__all__ = ["reading_against_others", "subgroup_blocks", "subgroup_reading"]


def _compared_with_others(at) -> bool:
    return {"difference", "difference_lower", "difference_upper"} <= set(at)


def reading_against_others(lower, upper, difference_lower, difference_upper) -> str:
    """What a group's policy-value interval and the interval of its difference from everyone
    else held out can say.

    Examples
    --------
    >>> reading_against_others(0.96, 4.58, -4.7, -0.9)
    'benefits, less than the others'
    >>> reading_against_others(-4.6, 5.6, -9.9, 0.3)
    'too few to judge'
    >>> reading_against_others(4.7, 6.6, -0.5, 1.6)
    'benefits, no difference from the others shown'
    """
    if lower is None or upper is None:
        return "—"
    benefit = (
        "worse than usual care" if upper < 0 else "benefits" if lower > 0 else "benefit not shown"
    )
    if difference_lower is None or difference_upper is None:
        return benefit
    if difference_lower > 0:
        return f"{benefit}, more than the others"
    if difference_upper < 0:
        return f"{benefit}, less than the others"
    if benefit == "benefit not shown":  # both intervals hold 0
        return "too few to judge"
    return f"{benefit}, no difference from the others shown"


def subgroup_reading(lower, upper, overall) -> str:
    """What a group's policy-value interval can say, against no benefit (0) and the value of
    the whole held-out part (``overall``).

    Examples
    --------
    >>> subgroup_reading(-11.4, 10.0, 4.25)
    'too few to judge'
    >>> subgroup_reading(-8.1, -0.1, 4.25)
    'worse than usual care'
    >>> subgroup_reading(4.3, 9.0, 4.25)
    'benefits, more than overall'
    """
    if lower is None or upper is None:
        return "—"
    if upper < 0:
        return "worse than usual care"
    if overall is None:
        return "benefits" if lower > 0 else "benefit not shown"
    if lower > overall:
        return "benefits, more than overall"
    if lower > 0:
        return "benefits, less than overall" if upper < overall else "benefits, as overall"
    # the interval holds 0: the data cannot show a benefit
    return "too few to judge" if upper >= overall else "less than overall; benefit not shown"


def _overall(facts):
    rows = ((facts.get("evaluation") or {}).get("policy_values") or {}).get("rows") or []
    return next((row[1] for row in rows if str(row[0]).startswith("learned policy")), None)


def subgroup_blocks(facts):
    s = facts.get("subgroups") or {}
    if not s.get("table"):
        return [("p", why_missing(s))]
    min_cell = s.get("min_cell", 11)
    at = {c: i for i, c in enumerate(s["table"].get("columns") or [])}
    shown = [
        row
        for row in s["table"].get("rows") or []
        if "n" in at and isinstance(row[at["n"]], (int, float))  # suppressed: the word
    ]
    blocks = [
        (
            "p",
            "Recommendations and the learned policy's value by role, gender, age band, "
            f"setting and role × gender on the held-out part. Cells with fewer than {min_cell} "
            "people are suppressed (every figure blanked, size included), and "
            + _complementary_text(s, min_cell),
        ),
        (
            "p",
            (
                "Reading: a group's value is compared with no benefit (0) by its own "
                "interval, and with everyone else held out by the interval of the difference "
                "(the column against the others: this group's value minus theirs). A group is "
                "too few to judge when both intervals hold 0, so the data cannot tell whether "
                "the policy helps it at all or differently from the others; worse than usual "
                "care when its own interval lies below 0; more or less than the others when "
                "the difference's interval excludes 0. "
                if _compared_with_others(at)
                else "Reading: a group is too few to judge when its interval holds both no "
                "benefit (0) and the value on the whole held-out part, so the data cannot tell "
                "whether the policy helps it at all or as much as everyone; worse than usual "
                "care, more or less than overall, when the interval excludes that (against "
                "that value alone: this card was made before the difference had an "
                "interval). "
            )
            + f"Each interval is {interval_level(facts)} on its own: among {len(shown)} groups "
            f"shown, about one in {round(1 / _alpha(facts))} misses its true value by chance, "
            "so read one flagged group as a question to review, not a finding.",
        ),
    ]
    if {"effect_lower", "effect_upper"} <= set(at):
        blocks.append(
            (
                "p",
                "The mean predicted EE effect is the model's own estimate for the arms it "
                "recommends (usual care counts 0), not a measured outcome. Its interval is the "
                f"model's uncertainty about that mean: its {interval_level(facts)} intervals "
                "for each person, taken as if their errors all leaned the same way, with the "
                "spread of its predictions over the group's people. Picking each person's "
                "best-looking arm leans it optimistic, which no interval corrects; the policy "
                "value is the measured figure.",
            )
        )
    absent = s.get("not_held_out") or []
    if absent:
        blocks.append(
            (
                "p",
                "In the training data but with no one in the held-out part, so not evaluated "
                "and in no table below (not absent from the data): "
                + "; ".join(f"{grouping} {cell}" for grouping, cell in absent)
                + ".",
            )
        )
    thin = s.get("thin_arms_by_role") or {}
    if thin:
        blocks.append(
            (
                "p",
                f"Arms a role had fewer than {min_cell} training rows of, so that the model's "
                "figures for that role are extrapolated from other roles, not measured (a "
                "role's row below reads the learned policy, not those arms): "
                + "; ".join(f"{role}: {', '.join(map(str, arms))}" for role, arms in thin.items())
                + ".",
            )
        )
    if carried_arms(facts):
        blocks.append(
            (
                "p",
                "These tables count and value the learned policy among the learnt arms, as "
                "the evaluation section does; the arms carried over are in the "
                "Recommendation mix and the fairness tables.",
            )
        )
    blocks += _subgroup_tables(s["table"], _overall(facts))
    for name in s.get("plots") or []:
        blocks.append(plot_block(name, facts))
    return blocks


def _complementary_text(s: dict, min_cell: int) -> str:
    """How the card kept suppressed cells from being read off the totals: a card from before
    it guarded sets of cells says the rule it followed."""
    if s.get("suppression") == "sets":
        return (
            "where published totals, added and subtracted, would give a suppressed cell or a "
            f"set of them with fewer than {min_cell} people away (size and figures alike, the "
            "figures being means), the next smallest cells too (complementary suppression)."
        )
    return (
        "where a published total would give a suppressed cell away, the next smallest cell "
        "too (complementary suppression; this card's tables were made before sets of "
        "suppressed cells were checked too, so a set of them may be read off the totals)."
    )


def _alpha(facts) -> float:
    return (facts.get("evaluation") or {}).get("alpha", 0.1) or 0.1


def _subgroup_tables(tbl: dict, overall) -> list:
    # One table of 14 columns is wider than a page: the recommendation shares (as whole
    # percentages) and the policy values (with their interval in one cell) are shown apart.
    columns, rows = tbl.get("columns") or [], tbl.get("rows") or []
    at = {c: i for i, c in enumerate(columns)}
    shares = [c for c in columns if c.startswith("share_")]
    if not {"grouping", "cell", "n", "policy_value"} <= set(at) or not shares:
        return [("table", tbl, "Subgroup and intersectional table")]

    def cell(row):
        return [row[at["grouping"]], row[at["cell"]], row[at["n"]]]

    def suppressed(row):  # a suppressed cell shows nothing but the word
        return not isinstance(row[at["n"]], (int, float))

    def percent(value):
        if not isinstance(value, (int, float)) or value != value:
            return fmt(value)
        return f"{100 * value:.0f}%"

    share_rows = [cell(r) + [percent(r[at[c]]) for c in shares] for r in rows]
    # a card from before the predicted effect had an interval shows the effect alone
    effect_interval = {"effect_lower", "effect_upper"} <= set(at)
    compared = _compared_with_others(at)
    value_rows = []
    for r in rows:
        if suppressed(r):
            value_rows.append(cell(r) + [r[at["n"]]] * (5 if compared else 4))
            continue
        value = r[at["policy_value"]]
        lower, upper = (r[at[k]] if k in at else None for k in ("lower", "upper"))
        interval = (
            f"{fmt(lower, 2)} to {fmt(upper, 2)}"
            if lower is not None and upper is not None
            else "—"
        )
        effect = r[at["mean_predicted_effect"]] if "mean_predicted_effect" in at else None
        if compared:
            d, d_lower, d_upper = (_number(r[at[k]]) for k in _DIFFERENCE)
            reading = reading_against_others(lower, upper, d_lower, d_upper)
            against = (
                "—"
                if d is None or d_lower is None or d_upper is None
                else f"{fmt(d, 2)} ({fmt(d_lower, 2)} to {fmt(d_upper, 2)})"
            )
            extra = [against]
        else:  # a card from before the difference had an interval
            reading, extra = subgroup_reading(lower, upper, overall), []
        value_rows.append(
            cell(r) + [_with_interval(r, at, effect), fmt(value, 2), interval, *extra, reading]
        )
    return [
        (
            "table",
            {
                "columns": [
                    "grouping",
                    "cell",
                    "n",
                    *(c[len("share_") :].replace("_", " ") for c in shares),
                ],
                "rows": share_rows,
            },
            "Share of each subgroup recommended each intervention",
        ),
        (
            "table",
            {
                "columns": [
                    "grouping",
                    "cell",
                    "n",
                    "mean predicted EE effect"
                    + (" (the model's own interval)" if effect_interval else ""),
                    "policy value",
                    "interval",
                    *(["against the others (interval)"] if compared else []),
                    "reading",
                ],
                "rows": value_rows,
            },
            "Learned policy's value per subgroup (EE points avoided per person)",
        ),
    ]


_DIFFERENCE = ("difference", "difference_lower", "difference_upper")


def _number(value):
    """A figure of card.json, or None where it has none (null, NaN)."""
    return value if isinstance(value, (int, float)) and value == value else None


def _with_interval(row, at: dict, effect) -> str:
    """The mean predicted effect as ``-4.49 (-6.40 to -2.58)``, or alone on an older card."""
    if not {"effect_lower", "effect_upper"} <= set(at):
        return fmt(effect, 2)
    lower, upper = row[at["effect_lower"]], row[at["effect_upper"]]
    if not all(isinstance(v, (int, float)) and v == v for v in (lower, upper)):
        return f"{fmt(effect, 2)} (no interval: the model gave none)"
    return f"{fmt(effect, 2)} ({fmt(lower, 2)} to {fmt(upper, 2)})"
