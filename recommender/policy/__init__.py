"""From effects to a decision: safety triage, eligibility, ranking and cohort allocation.

Pure functions over plain data; nothing here knows about HTTP, the audit log or how the effects
were estimated.
"""

from recommender.policy._allocation import (
    Allocation,
    ArmLimits,
    allocate,
    fairness_records,
    limits_from_catalog,
)
from recommender.policy._eligibility import (Exclusion, eligibility_matrix, eligible_mask,
                                             offered_arms)
from recommender.policy._fairness import FAIRNESS_ATTRIBUTES, fairness_table
from recommender.policy._ranking import (RankedArm, Ranking, arm_order, best_arm,
                                         interval_overlap, rank_arms)
from recommender.policy._triage import CrisisResource, SafetyRules, Triage, triage

__all__ = [
    "Allocation",
    "ArmLimits",
    "CrisisResource",
    "FAIRNESS_ATTRIBUTES",
    "Exclusion",
    "RankedArm",
    "Ranking",
    "SafetyRules",
    "Triage",
    "allocate",
    "arm_order",
    "best_arm",
    "eligibility_matrix",
    "eligible_mask",
    "fairness_records",
    "fairness_table",
    "interval_overlap",
    "limits_from_catalog",
    "offered_arms",
    "rank_arms",
    "triage",
]
