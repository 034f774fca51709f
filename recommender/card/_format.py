"""How the card writes a value, and what it says where it has none."""

from __future__ import annotations

__all__ = ["MISSING", "fmt", "interval_level", "why_missing"]

MISSING = "not available"


def fmt(value, digits: int = 3) -> str:
    """A cell as text: numbers to ``digits`` decimals, None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "—"
        text = f"{value:.{digits}f}"
        # -0.0, or a negative that rounds to zero, is zero: "-0.000" reads as a finding
        return text[1:] if text.startswith("-") and not text.strip("-0.") else text
    return str(value)


def why_missing(section: dict | None) -> str:
    """A section's facts may say why it has nothing to show (``why``); else "not available"."""
    return (section or {}).get("why") or MISSING


def interval_level(facts) -> str:
    """The evaluation's interval level as text (``"90%"``)."""
    alpha = (facts.get("evaluation") or {}).get("alpha", 0.1) or 0.1
    return f"{100 * (1 - alpha):.0f}%"
