"""Per-person reasons for a recommendation: contributions in EE points, a sentence, evidence."""

from recommender.explain._evidence import COMPLEMENT_NOTE, complements_for, evidence_for
from recommender.explain._labels import ArmLabels
from recommender.explain._reasons import (
    FEATURE_LABELS,
    Contribution,
    Explanation,
    explain,
    explain_many,
    top_contributions,
    top_contributions_many,
)

__all__ = [
    "ArmLabels",
    "COMPLEMENT_NOTE",
    "complements_for",
    "FEATURE_LABELS",
    "Contribution",
    "Explanation",
    "evidence_for",
    "explain",
    "explain_many",
    "top_contributions",
    "top_contributions_many",
]
