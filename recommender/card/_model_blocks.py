"""The card's model-details section: the model, its lineage (learners, seed, commit) and its
promotion gate; an outcome none of whose arms is personalised says so instead of naming a
learner."""

from __future__ import annotations

from recommender.card._format import fmt

__all__ = ["ONE_EFFECT_LEARNER", "model_details"]


def model_details(facts):
    m = facts.get("model") or {}
    gate = m.get("gate") or {}
    rows = [
        ("Registered model", m.get("name")),
        ("Version", m.get("version") or "assigned at registration"),
        ("Aliases at registration", ", ".join(m.get("aliases") or []) or "—"),
        ("Created (UTC)", m.get("created")),
        ("MLflow run id", m.get("run_id")),
        ("MLflow experiment", m.get("experiment")),
        ("Git commit", _git_commit_text(m.get("git_commit"))),
        ("Training data SHA-256", m.get("data_sha256")),
        ("Intervention catalog version", m.get("catalog_version")),
        # one row per outcome: a learner's own text may hold "; " and ", " (carried arms)
        *(
            (f"Learner for {outcome}", _learner_text(m, outcome, learner))
            for outcome, learner in (m.get("learners") or {}).items()
        ),
        *_learner_choice_rows(m),
        *_one_effect_row(m),
        ("Seed", m.get("seed")),
        ("Champion when registered", _champion_then(m)),
        (
            "Promotion gate",
            ("passed" if gate.get("passed") else "not passed")
            + (f": {gate['reason']}" if gate.get("reason") else "")
            if gate
            else "—",
        ),
    ]
    blocks = [
        (
            "p",
            m.get("description")
            or (
                "A multi-arm uplift model: for each clinician it estimates the expected change in "
                "burnout subscale scores under every intervention in the catalog versus usual care, "
                "with an interval, and recommends the intervention expected to lower emotional "
                "exhaustion most."
            ),
        )
    ]
    blocks.append(
        (
            "table",
            {"columns": ["field", "value"], "rows": [[k, fmt(v)] for k, v in rows]},
            "The model, its lineage and its promotion gate",
        )
    )
    versions = m.get("package_versions") or {}
    if versions:
        blocks.append(
            (
                "table",
                {
                    "columns": ["package", "version"],
                    "rows": [[k, v] for k, v in sorted(versions.items())],
                },
                "Package versions",
            )
        )
    return blocks


def _git_commit_text(commit):
    """The commit, or plainly why there is none (a card from before a commit was recorded
    shows nothing)."""
    if commit == "unknown":
        return (
            "unknown: not trained from a git checkout of the project (the package version "
            "below names the code)"
        )
    return commit


# An outcome whose every arm got one effect for everyone: its learner's name ("dr", the doubly
# robust average every arm fell back to) read as a personalised learner.
ONE_EFFECT_LEARNER = (
    "one effect per arm, the same for everyone (personalising added nothing measurable)"
)


def _learner_text(m: dict, outcome: str, learner) -> str:
    """The learner row of ``outcome``: its learner's name, or plainly one effect per arm when
    every arm got one effect for everyone (recorded as ``one_effect_outcomes``; a card from
    before that was recorded reads it from ``learner_choice``, when it has one)."""
    if "one_effect_outcomes" in m:
        one = outcome in (m["one_effect_outcomes"] or [])
    else:
        arms = ((m.get("learner_choice") or {}).get("outcomes") or {}).get(outcome) or {}
        one = bool(arms) and all(
            list(chosen) == ["one effect for everyone"] for chosen in arms.values()
        )
    return ONE_EFFECT_LEARNER if one else learner


def _learner_choice_rows(m: dict) -> list:
    """Why each outcome's learner: the rule, then per outcome the candidates each arm
    averaged (a card from before the choice was recorded has no row)."""
    choice = m.get("learner_choice")
    if not choice:
        return []
    rows = [("Learner choice", choice.get("rule"))]
    for outcome, arms in (choice.get("outcomes") or {}).items():
        rows.append(
            (
                f"Chosen for {outcome}",
                "; ".join(f"{arm}: {' + '.join(chosen)}" for arm, chosen in arms.items()),
            )
        )
    return rows


def _one_effect_row(m: dict) -> list:
    """Which arms the model gives one effect for everyone (its answers say so too); a card
    from before the fact was recorded has no row."""
    if "one_effect_arms" not in m:
        return []
    arms = m["one_effect_arms"]
    outcome = m.get("one_effect_outcome")
    # beside the 'Chosen for <outcome>' rows, which may give every arm one effect in another
    # outcome: the row names the outcome the arms are ranked by (cards before it: no name)
    ranked_by = f" in {outcome}, which ranks the arms" if outcome else ""
    return [
        (
            f"Arms given one effect for everyone{ranked_by}",
            ", ".join(arms) + " (no measurable benefit in personalising them)"
            if arms
            else "none: every arm's effect is personalised",
        )
    ]


def _champion_then(m: dict) -> str:
    """The champion when this version was registered, and what became of it."""
    before = m.get("previous_champion")
    if not before:
        return "none"
    gate = m.get("gate") or {}
    if not gate:
        return f"version {before}"
    if gate.get("passed"):
        return f"version {before} (this version replaced it)"
    return f"version {before} (it stayed champion: this version's gate did not pass)"
