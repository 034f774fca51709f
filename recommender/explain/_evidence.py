"""The published evidence behind an arm, and the measures the model does not rank, as the
responses, plans and the card show them."""

from __future__ import annotations

__all__ = ["COMPLEMENT_NOTE", "complements_for", "evidence_for"]

# Said wherever complements are listed: the model ranks individual programs only.
COMPLEMENT_NOTE = (
    "Not ranked by the model. These measures act on the work, the team and the organisation; "
    "the individual interventions ranked here complement them and do not replace them."
)


def evidence_for(catalog, arm: str) -> list[dict]:
    """The catalog's evidence records for ``arm`` as plain dicts, in catalog order: every
    record field (citation parts, design, effect as reported, certainty, uptake, EE points and
    their conversion, roles) plus ``citation`` and ``reference``."""
    records = [item.as_dict() for item in catalog.arm(arm).evidence]
    # An interval the source does not report is an empty list, not null: clients that decode
    # answers by their schema (BentoML's among them) read a list field as a list.
    for record in records:
        for name in ("ci", "effect_points_ci"):
            if record.get(name) is None:
                record[name] = []
    return records


def _line(item) -> dict:
    return {
        "citation": item.citation,
        "reference": item.reference,
        "design": item.design,
        "effect": item.effect,
        "grade": item.grade,
        "certainty": item.certainty,
    }


def complements_for(catalog) -> list[dict]:
    """The catalog's complementary measures, each with a short line per evidence record
    (citation, design, the effect as reported, certainty) and :data:`COMPLEMENT_NOTE`."""
    return [
        {
            "id": c.id,
            "name": c.name,
            "level": c.level,
            "description": c.description,
            "roles": list(c.roles),
            "ranked": False,
            "note": COMPLEMENT_NOTE,
            "evidence": [_line(item) for item in c.evidence],
        }
        for c in catalog.complements
    ]
