"""The model card: JSON, Markdown and a self-contained HTML page with embedded plots.

The card is rendered from a plain dict of facts (``card.json``), so it can be re-rendered from a
logged run at any time and tested without fitting anything.
"""

from recommender.card._assemble import (
    PLOT_CAPTIONS,
    evaluation_facts,
    subgroup_facts,
    training_card_facts,
)
from recommender.card._fairness import PROTECTED_ATTRIBUTES, fairness_facts, protected_reasons
from recommender.card._facts import (
    arm_counts,
    complement_facts,
    evidence_facts,
    json_safe,
    policy_summary,
    recommendation_mix,
    table,
)
from recommender.card._render import (
    CARD_FILES,
    card_files,
    copy_card,
    read_card,
    render_html,
    render_markdown,
    write_card,
)
from recommender.card._sections import DEFAULT_TEXT, SECTIONS, section_ids

__all__ = [
    "CARD_FILES",
    "DEFAULT_TEXT",
    "PLOT_CAPTIONS",
    "PROTECTED_ATTRIBUTES",
    "SECTIONS",
    "arm_counts",
    "card_files",
    "complement_facts",
    "copy_card",
    "evaluation_facts",
    "evidence_facts",
    "fairness_facts",
    "protected_reasons",
    "subgroup_facts",
    "json_safe",
    "policy_summary",
    "read_card",
    "recommendation_mix",
    "render_html",
    "render_markdown",
    "section_ids",
    "table",
    "training_card_facts",
    "write_card",
]
