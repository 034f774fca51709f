"""From effects to a decision: safety triage, eligibility and ranking.

Pure functions over plain data; nothing here knows about HTTP, the audit log or how the effects
were estimated.
"""

from recommender.policy._eligibility import Exclusion, offered_arms
from recommender.policy._ranking import RankedArm, Ranking, interval_overlap, rank_arms
from recommender.policy._triage import CrisisResource, SafetyRules, Triage, triage

__all__ = [
    "CrisisResource",
    "Exclusion",
    "RankedArm",
    "Ranking",
    "SafetyRules",
    "Triage",
    "interval_overlap",
    "offered_arms",
    "rank_arms",
    "triage",
]
