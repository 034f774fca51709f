"""The catalog as a document an auditor can read line by line: ``docs/evidence.md``.

Generated, never edited by hand: ``recommender evidence --out docs/evidence.md`` writes it and
a test checks that the committed file is what the generator makes from the catalog now.
"""

from __future__ import annotations

from recommender.cohort import CATEGORIES

__all__ = ["ASSUMED_EE_SD", "CONVERSION_NOTE", "cost_and_capacity", "evidence_markdown"]

# The SD the catalog's conversions multiply a standardized effect by ("SMD x 9.5 (assumed SD of
# EE, see the header)"). The header is a comment of the catalog file, which neither this
# document nor the model card shows, so both print this note.
ASSUMED_EE_SD = 9.5
CONVERSION_NOTE = (
    f'A conversion marked "assumed SD of EE, see the header" multiplies a standardized mean '
    f"difference by {ASSUMED_EE_SD:g} EE points, as the header of the catalog file "
    "(configs/interventions.yaml) says. That SD is an assumption: the MBI manual's norm for "
    "medicine as the project's calibration notes give it; the manual itself was not available "
    "to check, and nurses' SD may differ."
)

# (field, label) in the order a record is printed; every field of a record appears.
_RECORD_FIELDS = (
    ("authors", "Authors"),
    ("year", "Year"),
    ("title", "Title"),
    ("journal", "Journal"),
    ("doi", "DOI"),
    ("pmid", "PMID"),
    ("population", "Population"),
    ("setting", "Setting"),
    ("design", "Design"),
    ("outcome", "Outcome"),
    ("effect", "Effect as reported"),
    ("measure", "Measure"),
    ("value", "Value"),
    ("ci", "Reported interval"),
    ("comparison", "Comparison"),
    ("effect_kind", "Kind of figure"),
    ("grade", "GRADE"),
    ("certainty", "Certainty"),
    ("uptake", "Uptake / participation"),
    ("effect_points", "EE points vs usual care"),
    ("effect_points_ci", "Interval of EE points"),
    ("conversion", "Conversion"),
    ("roles", "Roles concerned"),
    ("specific_to_arm", "Specific to this option"),
    ("checked_against", "Checked against"),
    ("note", "Note"),
)
_NOT_GIVEN = "not given (null)"


def _text(value) -> str:
    if value is None:
        return _NOT_GIVEN
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, float) for v in value):
        return f"{value[0]:g} to {value[1]:g}"
    if isinstance(value, tuple):
        return ", ".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    # Markdown table cells: one line, no bare pipes.
    return " ".join(str(value).split()).replace("|", "\\|")


def _record(lines: list[str], number: int, item) -> None:
    grade = f"GRADE {item.grade.replace('_', ' ')}" if item.grade else "not GRADE-rated"
    lines += [
        f"#### {number}. {item.citation} ({item.design}; {grade})",
        "",
        f"**Certainty:** {_text(item.certainty)}",
        "",
        "| field | value |",
        "|---|---|",
    ]
    lines += [f"| {label} | {_text(getattr(item, name))} |" for name, label in _RECORD_FIELDS]
    lines.append("")


def _eligibility(lines: list[str], arm) -> None:
    rules = arm.eligibility
    lines.append(
        f"**Offered to:** {', '.join(rules.roles)}"
        + (f"; specialties {', '.join(rules.specialties)}" if rules.specialties else "")
        + (
            f"; at least {rules.min_years_in_practice:g} years in practice"
            if rules.min_years_in_practice is not None
            else ""
        )
        + (
            f"; at most {rules.max_years_in_practice:g} years in practice"
            if rules.max_years_in_practice is not None
            else ""
        )
    )
    lines.append("")
    if not rules.exclusions:
        lines += ["No one is excluded.", ""]
        return
    lines += ["| excluded | reason | source |", "|---|---|---|"]
    for e in rules.exclusions:
        source = (
            ("program assumption" + (f"; see {e.source}" if e.source else ""))
            if e.assumption
            else e.source
        )
        lines.append(f"| {_text(e.excludes)} | {_text(e.reason)} | {_text(source)} |")
    lines.append("")


def _gaps(arm) -> list[str]:
    """Roles the arm is offered to that no evidence record concerns."""
    covered = {role for item in arm.evidence for role in item.roles}
    return [role for role in arm.eligibility.roles if role not in covered]


def cost_and_capacity(arm) -> tuple[str, str]:
    """An arm's cost and capacity in words, each labelled an assumption where the catalog
    marks it one, with its basis: ``("US$1,400 a person (assumption): ...", "40 ...")``."""
    cost = (
        f"US${arm.cost_per_person:,.0f} a person"
        + (" (assumption)" if arm.cost_is_assumption else "")
        + (f": {' '.join(arm.cost_basis.split()).rstrip('.')}" if arm.cost_basis else "")
    )
    capacity = (
        f"{'no limit' if arm.capacity is None else arm.capacity}"
        + (" (assumption)" if arm.capacity_is_assumption else "")
        + (f": {' '.join(arm.capacity_basis.split()).rstrip('.')}" if arm.capacity_basis else "")
    )
    return cost, capacity


def evidence_markdown(catalog) -> str:
    """``docs/evidence.md``: one section per arm and per complementary measure, every field of
    every evidence record, the certainty of each, and the reason and source of every
    eligibility exclusion."""
    lines = [
        "# Evidence behind the intervention catalog",
        "",
        f"Generated from `configs/interventions.yaml` (catalog version {catalog.version}) by "
        "`recommender evidence --out docs/evidence.md`. Do not edit by hand: change the "
        "catalog and regenerate. A test checks that this file matches the catalog.",
        "",
        "How to read a record: *Effect as reported* gives the finding in the study's own "
        "figures and, condensed, its abstract's words; text in quotation marks is the "
        "source's, verbatim. *Kind of figure* says "
        "whether it is a difference between arms (`between_group`), a pre-post change "
        "(`within_group`, never a difference from usual care), an association or a narrative "
        "finding. *EE points vs usual care* is filled only for between-group figures, and "
        "*Conversion* says how it was obtained; an assumed SD of Emotional Exhaustion is "
        "labelled as an assumption. *GRADE* is the certainty a review gave; otherwise "
        "*Certainty* names the design's level. `not given (null)` means no source we hold "
        "gives that detail; nothing here is filled in by guess. The MBI is copyrighted: "
        "subscale names and scores only.",
        "",
        CONVERSION_NOTE,
        "",
        "## Options the model ranks",
        "",
    ]
    for arm in catalog.arms:
        lines += [
            f"### {arm.name} (`{arm.id}`)",
            "",
            " ".join(arm.description.split()),
            "",
            f"**Format:** {arm.format}. **Dose:** {arm.dose}. **Group size:** "
            f"{arm.group_min}-{arm.group_max}. **Cost:** {cost_and_capacity(arm)[0]}. "
            f"**Capacity:** {cost_and_capacity(arm)[1]}.",
            "",
        ]
        _eligibility(lines, arm)
        gaps = _gaps(arm)
        if gaps and arm.id != catalog.control:
            lines += [
                f"**No evidence record concerns:** {', '.join(gaps)}. Offering the arm to "
                "them is a program choice, not a finding.",
                "",
            ]
        for number, item in enumerate(arm.evidence, 1):
            _record(lines, number, item)
    lines += [
        "## Options the model does not rank",
        "",
        "These measures act on the work, the team and the organisation. Every answer, plan "
        "and model card lists them: the individual interventions above complement them and "
        "do not replace them.",
        "",
    ]
    for complement in catalog.complements:
        roles = ", ".join(r for r in CATEGORIES["role"] if r in complement.roles)
        lines += [
            f"### {complement.name} (`{complement.id}`)",
            "",
            " ".join(complement.description.split()),
            "",
            f"**Level:** {complement.level}. **Concerns:** {roles}.",
            "",
        ]
        for number, item in enumerate(complement.evidence, 1):
            _record(lines, number, item)
    return "\n".join(lines).rstrip() + "\n"
