"""The published evidence behind an arm, as the response and the card show it."""

from __future__ import annotations

from dataclasses import asdict

__all__ = ["evidence_for"]


def evidence_for(catalog, arm: str) -> list[dict]:
    """The catalog's evidence entries for ``arm`` as plain dicts (citation, population,
    outcome, effect, effect_points, smd, note), in catalog order."""
    return [asdict(item) for item in catalog.arm(arm).evidence]
