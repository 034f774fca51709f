"""Evidence records, eligibility exclusions and complementary measures: the catalog's parts
that cite the literature. Every field is checked, and rules across fields keep a figure honest
(EE points only from a between-group difference, with an interval and a conversion)."""

from __future__ import annotations

from collections.abc import Mapping

from recommender.cohort import CATEGORIES

from ._checks import (
    _BOOL,
    _LIST,
    _NUMBER,
    _PAIR,
    _TEXT,
    _YEAR,
    ARM_ID,
    _check_assumption,
    _check_fields,
    _members,
)
from ._model import DESIGNS, EFFECT_KINDS, GRADES, Complement, Evidence, Exclusion

__all__ = ["EVIDENCE_FIELDS", "EXCLUSION_FIELDS", "COMPLEMENT_FIELDS"]

# field -> (kind, required, nullable). Every field is required: a record that leaves one out
# is refused, so a reader never has to guess whether "no DOI" means "none given" (null) or
# "forgot to look".
EVIDENCE_FIELDS = {
    "authors": (_TEXT, True, True),
    "year": (_YEAR, True, False),
    "title": (_TEXT, True, True),
    "journal": (_TEXT, True, False),
    "doi": (_TEXT, True, True),
    "pmid": (_TEXT, True, True),
    "population": (_TEXT, True, False),
    "setting": (_TEXT, True, False),
    "design": (_TEXT, True, False),
    "outcome": (_TEXT, True, False),
    "effect": (_TEXT, True, False),
    "measure": (_TEXT, True, False),
    "value": (_NUMBER, True, True),
    "ci": (_PAIR, True, True),
    "comparison": (_TEXT, True, False),
    "effect_kind": (_TEXT, True, False),
    "grade": (_TEXT, True, True),
    "certainty": (_TEXT, True, False),
    "uptake": (_TEXT, True, True),
    "effect_points": (_NUMBER, True, True),
    "effect_points_ci": (_PAIR, True, True),
    "conversion": (_TEXT, True, True),
    "roles": (_LIST, True, False),
    "specific_to_arm": (_BOOL, True, False),
    "checked_against": (_TEXT, True, False),
    "note": (_TEXT, True, True),
}
EXCLUSION_FIELDS = {
    "excludes": (_TEXT, True, False),
    "reason": (_TEXT, True, False),
    "source": (_TEXT, True, True),
    "assumption": (_BOOL, True, False),
}
COMPLEMENT_FIELDS = {
    "id": (_TEXT, True, False),
    "name": (_TEXT, True, False),
    "level": (_TEXT, True, False),
    "description": (_TEXT, True, False),
    "roles": (_LIST, True, False),
    "evidence": (_LIST, True, False),
}


def _exclusions(items, entry, problems) -> tuple[Exclusion, ...]:
    found = []
    for j, item in enumerate(items or ()):
        where = f"{entry}.exclusions[{j}]"
        good = _check_fields(item, EXCLUSION_FIELDS, where, problems)
        if not good.get("assumption", True) and good.get("source") is None and "source" in good:
            problems.add(
                where,
                "source",
                None,
                "no source and not an assumption",
                "the study or document behind the exclusion, or assumption: true",
            )
        if good.get("assumption"):
            if good.get("source") is not None:
                problems.add(
                    where,
                    "source",
                    good["source"],
                    "an assumption with a source",
                    "null when assumption is true, or assumption: false with the source",
                )
            _check_assumption(good.get("reason"), where, "reason", problems)
        if all(name in good for name in EXCLUSION_FIELDS):
            found.append(Exclusion(**good))
    return tuple(found)


def _pair(value) -> tuple[float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]))


def _evidence(items, entry, problems) -> tuple[Evidence, ...]:
    found = []
    for j, item in enumerate(items or ()):
        where = f"{entry}.evidence[{j}]"
        n_before = len(problems)
        good = _check_fields(item, EVIDENCE_FIELDS, where, problems)
        _check_record(good, where, problems)
        if len(problems) == n_before:
            values = dict(good)
            for name in ("value", "effect_points"):
                values[name] = None if values[name] is None else float(values[name])
            for name in ("ci", "effect_points_ci"):
                values[name] = _pair(values[name])
            values["roles"] = tuple(values["roles"])
            found.append(Evidence(**values))
    return tuple(found)


def _check_record(good, where, problems) -> None:
    """Rules across fields: the allowed words, intervals in order, and conversions honest."""
    for name, allowed in (("design", DESIGNS), ("effect_kind", EFFECT_KINDS), ("grade", GRADES)):
        if good.get(name) is not None and good[name] not in allowed:
            problems.add(where, name, good[name], f"unknown {name}", ", ".join(allowed))
    if "roles" in good:
        _members(good["roles"], CATEGORIES["role"], where, "roles", "role", problems)
    for name in ("ci", "effect_points_ci"):
        pair = good.get(name)
        if pair is not None and pair[0] > pair[1]:
            problems.add(where, name, pair, "lower bound above upper bound", "[lower, upper]")
    value, ci = good.get("value"), good.get("ci")
    if value is not None and ci is not None and ci[0] <= ci[1] and not ci[0] <= value <= ci[1]:
        # A reported figure outside its own interval: one of the two is mistyped.
        problems.add(where, "ci", ci, "does not contain value", f"an interval containing {value:g}")
    if "effect_points" not in good or "effect_points_ci" not in good:
        return
    points, interval = good["effect_points"], good["effect_points_ci"]
    if points is None:
        if interval is not None:
            problems.add(
                where,
                "effect_points_ci",
                interval,
                "interval without effect_points",
                "null when effect_points is null",
            )
        return
    if good.get("effect_kind") not in (None, "between_group"):
        # A pre-post change or an association is not a difference from usual care.
        problems.add(
            where,
            "effect_points",
            points,
            f"EE points from a {good['effect_kind']} figure",
            "null unless effect_kind is between_group",
        )
    if interval is None:
        problems.add(
            where,
            "effect_points_ci",
            None,
            "effect_points without an interval",
            "[lower, upper] around effect_points",
        )
    elif not interval[0] <= points <= interval[1]:
        problems.add(
            where,
            "effect_points_ci",
            interval,
            "does not contain effect_points",
            f"an interval containing {points:g}",
        )
    if "conversion" in good and good["conversion"] is None:
        problems.add(
            where,
            "conversion",
            None,
            "effect_points without a conversion",
            "text saying how the EE points were obtained",
        )


def _complement(data, index, problems) -> Complement | None:
    comp_id = data.get("id") if isinstance(data, Mapping) else None
    entry = f"complements[{index}]" + (f" ({comp_id})" if isinstance(comp_id, str) else "")
    n_before = len(problems)
    good = _check_fields(data, COMPLEMENT_FIELDS, entry, problems)
    if "id" in good and not ARM_ID.match(good["id"]):
        problems.add(
            entry,
            "id",
            good["id"],
            "malformed id",
            "lowercase letters, digits and underscores, starting with a letter, at most 40",
        )
    roles = _members(good.get("roles"), CATEGORIES["role"], entry, "roles", "role", problems)
    evidence = _evidence(good.get("evidence"), entry, problems)
    if "evidence" in good and not good["evidence"]:
        problems.add(entry, "evidence", [], "empty list", "at least one evidence record")
    if len(problems) > n_before:
        return None
    return Complement(
        id=good["id"],
        name=good["name"].strip(),
        level=good["level"],
        description=good["description"].strip(),
        roles=roles,
        evidence=evidence,
    )
