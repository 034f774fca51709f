"""What an answer says of figures not learnt from the program's own staff.

An evidence-only model's figures rest on published trials; a model retrained from the log
carries some arms' estimates over (:mod:`recommender.model._carried`) and may rank, for a role,
an arm that role was (almost) never served (:mod:`recommender.model._role_support`). One
function words all three, for single and batch answers alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from recommender.cohort import ROLE_NAMES
from recommender.model._evidence import no_evidence_for_role, roles_without_evidence
from recommender.model._role_support import unserved_in_role
from recommender.model._support import MIN_LEVEL_ROWS

__all__ = ["estimate_basis"]


def estimate_basis(metadata: Mapping, arms: Sequence[str], role: str, names: Mapping) -> str | None:
    """What an answer must say of figures not learnt from the program's staff, or None.

    An evidence-only model's answer (``arms[0]`` the recommended arm): they rest on published
    trials, cited, and are the same for everyone in a role; for a role no finding concerns,
    that none does and that nothing is ranked. A model retrained from the log:
    each ranked arm in ``arms`` whose estimate was carried over is named with its source (the
    published trial cited for the person's role, or the earlier model) and why; and each
    other ranked arm the person's role had fewer than the card's ``min_cell`` training rows of
    (``arm_rows_within_role``, recorded at training) is said to be extrapolated from other
    roles, not measured on theirs. A model recorded without those counts says what it did.
    """
    metadata = metadata or {}
    if metadata.get("source") == "evidence":
        if str(role) in roles_without_evidence(metadata):
            return no_evidence_for_role(str(role))
        best = arms[0] if arms else None
        cited = (metadata.get("evidence_citations") or {}).get(best, {}).get(str(role))
        source = f" ({names.get(best, best)}: {cited})" if cited else ""
        return (
            "These estimates rest on published trials alone" + source + ", not on this "
            "program's data, and are not personalised beyond role: everyone in the same role "
            "gets the same figures."
        )
    sources = metadata.get("arm_sources") or {}
    parts = []
    for arm in arms:
        facts = sources.get(arm) or {}
        if facts.get("source") != "carried":
            continue
        cited = (facts.get("citations") or {}).get(str(role))
        origin = (
            f"published trials ({cited})" if cited else str(facts.get("from", "an earlier model"))
        )
        parts.append(
            f"{names.get(arm, arm)}: from {origin}, not learnt from this program's staff "
            f"({facts.get('rows', 0)} served so far; {facts.get('min_rows')} are needed to learn it)"
        )
    carried = (
        "Figures carried over until the program's log can support learning them: "
        + "; ".join(parts)
        + "."
        if parts
        else None
    )
    # learnt arms the person's role was (almost) never served: measured on other roles only
    min_rows = int(metadata.get("min_cell") or MIN_LEVEL_ROWS)
    learnt = [a for a in arms if (sources.get(a) or {}).get("source") != "carried"]
    people = ROLE_NAMES.get(str(role), str(role))
    unserved = unserved_in_role(metadata, learnt, role, names, people, min_rows)
    said = [text for text in (carried, unserved) if text]
    return " ".join(said) or None
