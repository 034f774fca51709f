"""From effects to a decision: safety triage, eligibility, ranking, exploration and cohort
allocation.

Pure functions over plain data; nothing here knows about HTTP, the audit log or how the effects
were estimated.
"""

from recommender.policy._allocation import Allocation, allocate
from recommender.policy._limits import (
    BUDGET_ACCEPTED,
    MAX_CAPACITY,
    ArmLimits,
    limits_from_catalog,
)
from recommender.policy._planning import PlannedCohort, check_plan_options, plan_allocation
from recommender.policy._eligibility import (
    Exclusion,
    eligibility_matrix,
    eligible_mask,
    offered_arms,
)
from recommender.policy._fairness import FAIRNESS_ATTRIBUTES, fairness_records, fairness_table
from recommender.policy._exploration_rule import POLICIES, ExplorationRule
from recommender.policy._exploration import arm_probabilities, equipoise_arms, expected_cost
from recommender.policy._assignment import Assignment, assign, assign_many, draw_position
from recommender.policy._triage import (
    CRISIS_COLUMN,
    CrisisResource,
    Referral,
    SAFETY_COLUMNS,
    SafetyRules,
    Triage,
    crisis_flag,
    crisis_flags,
    triage,
    triage_table,
    triaged_scores,
)
from recommender.policy._ranking import (
    JUDGEMENT_COLUMNS,
    FIGURE_DECIMALS,
    RankedArm,
    Ranking,
    TableRanking,
    arm_order,
    best_arm,
    interval_overlap,
    rank_arms,
    rank_many,
    rank_table,
    ranked_figures,
)

__all__ = [
    "JUDGEMENT_COLUMNS",
    "POLICIES",
    "Assignment",
    "ExplorationRule",
    "arm_probabilities",
    "assign",
    "assign_many",
    "draw_position",
    "equipoise_arms",
    "expected_cost",
    "CRISIS_COLUMN",
    "Allocation",
    "ArmLimits",
    "BUDGET_ACCEPTED",
    "MAX_CAPACITY",
    "CrisisResource",
    "FAIRNESS_ATTRIBUTES",
    "Exclusion",
    "FIGURE_DECIMALS",
    "RankedArm",
    "Referral",
    "Ranking",
    "TableRanking",
    "SafetyRules",
    "Triage",
    "allocate",
    "crisis_flag",
    "crisis_flags",
    "arm_order",
    "best_arm",
    "check_plan_options",
    "eligibility_matrix",
    "eligible_mask",
    "fairness_records",
    "fairness_table",
    "interval_overlap",
    "limits_from_catalog",
    "offered_arms",
    "PlannedCohort",
    "plan_allocation",
    "rank_arms",
    "rank_many",
    "rank_table",
    "ranked_figures",
    "triage",
    "triage_table",
    "SAFETY_COLUMNS",
    "triaged_scores",
]
