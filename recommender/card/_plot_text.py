"""Each plot's text alternative: what it shows, in the numbers of the card's own tables.

A screen reader reads a plot's ``alt`` text, not its bars: "Qini curves per arm" alone tells
a reader who cannot see the image nothing the plot says. The figures are drawn from the same
report the tables are (:mod:`recommender.evaluation._plots`), so the tables' rows are what each
plot shows.
"""

from __future__ import annotations

from recommender.card._format import fmt, interval_level

__all__ = ["plot_alternative", "plot_block"]

# plot name -> (card section, its table, the column of the plotted value, what that value is)
_PLOTTED = {
    "policy_values": (
        "evaluation",
        "policy_values",
        "estimate",
        "EE points avoided per person versus usual care for all",
    ),
    "qini": (
        "evaluation",
        "qini",
        "qini",
        "Qini coefficient of each arm's curve (0 = no better than chance)",
    ),
    "calibration": (
        "evaluation",
        "calibration",
        "slope",
        "slope of the doubly robust effect on the predicted effect, by arm (1 = calibrated); "
        "the points of each quantile bin are not listed in the card",
    ),
    "subgroups": (
        "subgroups",
        "table",
        "policy_value",
        "learned policy's EE points avoided per person, by subgroup; suppressed cells left out",
    ),
}


def plot_alternative(name: str, caption: str, facts: dict) -> str:
    """The ``alt`` text of plot ``name``: its ``caption``, then each plotted value with its
    interval, as the card's table has them (the caption alone for a plot without one)."""
    where = _PLOTTED.get(name)
    table = ((facts.get(where[0]) or {}).get(where[1]) or {}) if where else {}
    columns = table.get("columns") or []
    if not where or where[2] not in columns:
        return caption
    value = columns.index(where[2])
    bounds = [columns.index(c) if c in columns else None for c in ("lower", "upper")]
    # a subgroup's label is its grouping and cell; any other table's row names itself
    label = 2 if name == "subgroups" and "cell" in columns else 1
    said = []
    for row in table.get("rows") or []:
        if not isinstance(row[value], (int, float)) or isinstance(row[value], bool):
            continue  # suppressed, or not estimable: not plotted
        text = f"{': '.join(str(part) for part in row[:label])} {fmt(row[value], 2)}"
        if None not in bounds and all(isinstance(row[i], (int, float)) for i in bounds):
            text += f" ({fmt(row[bounds[0]], 2)} to {fmt(row[bounds[1]], 2)})"
        said.append(text)
    if not said:
        return caption
    level = interval_level(facts)
    return f"{caption.rstrip('.')}. Plotted: {where[3]}, with {level} intervals: " + (
        "; ".join(said) + "."
    )


def plot_block(name: str, facts: dict) -> tuple:
    """The card's block of plot ``name``: ``("img", name, caption, alt text)``."""
    caption = (facts.get("plots") or {}).get(name, {}).get("caption", name)
    return ("img", name, caption, plot_alternative(name, caption, facts))
