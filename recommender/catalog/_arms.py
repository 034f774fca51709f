"""An arm's entry in the catalog, checked: its fields, its eligibility, and the control arm's.

The fields an arm may have (:data:`ARM_FIELDS`, :data:`ELIGIBILITY_FIELDS`: constraints as
data) and the rules across them: group sizes and capacity that let the arm run, an eligibility
whose every exclusion has one reason, usual care open to everyone at no cost, and a
``renamed_from`` that names one former id. Each problem names the arm's entry and field. The
whole catalog (its top-level fields, the arms' ids and names side by side, the complements) is
checked by :func:`recommender.catalog._load.parse_catalog`.
"""

from __future__ import annotations

from collections.abc import Mapping

from recommender.cohort import CATEGORIES

from ._checks import (
    _INT,
    _LIST,
    _MAPPING,
    _NUMBER,
    _TEXT,
    ARM_ID,
    _BOOL,
    _check_assumption,
    _check_fields,
    _members,
)
from ._model import Arm, Eligibility
from ._records import _evidence, _exclusions


ARM_FIELDS = {
    "id": (_TEXT, True, False),
    "name": (_TEXT, True, False),
    "description": (_TEXT, True, False),
    "format": (_TEXT, True, False),
    "dose": (_TEXT, True, False),
    "group_min": (_INT, True, False),
    "group_max": (_INT, True, False),
    "cost_per_person": (_NUMBER, True, False),
    "capacity": (_INT, False, True),
    "eligibility": (_MAPPING, False, True),
    "evidence": (_LIST, False, True),
    "cost_is_assumption": (_BOOL, False, False),
    "cost_basis": (_TEXT, False, True),
    "capacity_is_assumption": (_BOOL, False, False),
    "capacity_basis": (_TEXT, False, True),
    "renamed_from": (_TEXT, False, True),
}
ELIGIBILITY_FIELDS = {
    "exclusions": (_LIST, True, False),
    "roles": (_LIST, False, True),
    "specialties": (_LIST, False, True),
    "min_years_in_practice": (_NUMBER, False, True),
    "max_years_in_practice": (_NUMBER, False, True),
}
_YEARS = (0, 60)  # the contract's range for years_in_practice


def _eligibility(data, entry, problems) -> Eligibility:
    if data is None:
        return Eligibility()
    n_before = len(problems)
    good = _check_fields(data, ELIGIBILITY_FIELDS, entry, problems)
    roles = _members(good.get("roles"), CATEGORIES["role"], entry, "roles", "role", problems)
    specialties = _members(
        good.get("specialties"),
        CATEGORIES["specialty"],
        entry,
        "specialties",
        "specialty",
        problems,
    )
    years = {}
    for name in ("min_years_in_practice", "max_years_in_practice"):
        value = good.get(name)
        if value is not None and not (_YEARS[0] <= value <= _YEARS[1]):
            problems.add(
                entry, name, value, "out of range", f"a number from {_YEARS[0]} to {_YEARS[1]}"
            )
        else:
            years[name] = None if value is None else float(value)
    lo, hi = years.get("min_years_in_practice"), years.get("max_years_in_practice")
    exclusions = _exclusions(good.get("exclusions"), entry, problems)
    if lo is not None and hi is not None and lo > hi:
        problems.add(
            entry,
            "min_years_in_practice",
            lo,
            "greater than max_years_in_practice",
            f"at most {hi:g}",
        )
    eligibility = Eligibility(
        roles=roles if roles is not None else CATEGORIES["role"],
        specialties=specialties,
        min_years_in_practice=lo,
        max_years_in_practice=hi,
        exclusions=exclusions,
    )
    # Reasons are matched against the rules only when the rules themselves are sound.
    if "exclusions" in good and len(problems) == n_before:
        _check_reasons(eligibility, good, entry, problems)
    return eligibility


def _check_reasons(eligibility: Eligibility, good, entry, problems) -> None:
    """Each exclusion the rules make has exactly one reason, and each reason an exclusion."""
    made = set(eligibility.excluded)
    given = [e.excludes for e in eligibility.exclusions]
    for excluded in eligibility.excluded:
        if excluded not in given:
            problems.add(
                entry,
                "exclusions",
                excluded,
                "exclusion without a reason",
                f"an entry with excludes: {excluded!r}, a reason, and a source or assumption: true",
            )
    for j, excluded in enumerate(given):
        if excluded not in made:
            problems.add(
                f"{entry}.exclusions[{j}]",
                "excludes",
                excluded,
                "no such exclusion in the rules",
                ", ".join(sorted(made)) or "nothing: these rules exclude no one",
            )
        elif given.count(excluded) > 1 and given.index(excluded) != j:
            problems.add(
                f"{entry}.exclusions[{j}]",
                "excludes",
                excluded,
                "duplicate reason",
                "one entry per exclusion",
            )


def _arm(data, index, problems, control: str = "none") -> Arm | None:
    arm_id = data.get("id") if isinstance(data, Mapping) else None
    entry = f"arms[{index}]" + (f" ({arm_id})" if isinstance(arm_id, str) else "")
    n_before = len(problems)
    good = _check_fields(data, ARM_FIELDS, entry, problems)
    if "id" in good and not ARM_ID.match(good["id"]):
        problems.add(
            entry,
            "id",
            good["id"],
            "malformed id",
            "lowercase letters, digits and underscores, starting with a letter, at most 40",
        )
    if "group_min" in good and good["group_min"] < 1:
        problems.add(entry, "group_min", good["group_min"], "too small", "a whole number >= 1")
    if "group_min" in good and "group_max" in good and good["group_min"] > good["group_max"]:
        problems.add(
            entry,
            "group_max",
            good["group_max"],
            "smaller than group_min",
            f"a whole number >= group_min ({good['group_min']})",
        )
    if "cost_per_person" in good and good["cost_per_person"] < 0:
        problems.add(
            entry,
            "cost_per_person",
            good["cost_per_person"],
            "negative cost",
            "a number >= 0 (US$ per participant)",
        )
    if good.get("capacity") is not None and good["capacity"] < 1:
        problems.add(
            entry,
            "capacity",
            good["capacity"],
            "too small",
            "a whole number >= 1, or null for no limit",
        )
    capacity, group_min = good.get("capacity"), good.get("group_min")
    if capacity is not None and group_min is not None and 1 <= capacity < group_min:
        # The arm could never run, yet plans would list it as open.
        problems.add(
            entry,
            "capacity",
            capacity,
            "too few places for one group",
            f"at least group_min ({group_min}), or null for no limit",
        )
    for field in ("cost", "capacity"):
        if good.get(f"{field}_is_assumption"):
            _check_assumption(good.get(f"{field}_basis"), entry, f"{field}_basis", problems)
    if good.get("id") == control:
        _check_control(good, entry, problems)
    if good.get("id") == control and good.get("eligibility") is not None:
        rules = good["eligibility"]
        if (
            isinstance(rules, Mapping)
            and any(
                rules.get(name) is not None
                for name in ("specialties", "min_years_in_practice", "max_years_in_practice")
            )
            or (
                isinstance(rules, Mapping)
                and rules.get("roles") is not None
                and set(rules["roles"]) != set(CATEGORIES["role"])
            )
        ):
            problems.add(
                entry,
                "eligibility",
                "restricted",
                "the control arm is restricted",
                "no eligibility rules (usual care is open to everyone)",
            )
            return None
    eligibility = _eligibility(good.get("eligibility"), f"{entry}.eligibility", problems)
    evidence = _evidence(good.get("evidence"), entry, problems)
    if len(problems) > n_before:
        return None
    return Arm(
        id=good["id"],
        name=good["name"].strip(),
        description=good["description"].strip(),
        format=good["format"],
        dose=good["dose"],
        group_min=good["group_min"],
        group_max=good["group_max"],
        cost_per_person=float(good["cost_per_person"]),
        capacity=good.get("capacity"),
        eligibility=eligibility,
        evidence=evidence,
        cost_is_assumption=good.get("cost_is_assumption", False),
        cost_basis=(good.get("cost_basis") or "").strip(),
        capacity_is_assumption=good.get("capacity_is_assumption", False),
        capacity_basis=(good.get("capacity_basis") or "").strip(),
        renamed_from=good.get("renamed_from"),
    )


def _check_renames(items, ids: Mapping, problems) -> None:
    """``renamed_from`` names an arm's former id, so that a model that learnt it serves the
    arm under its new id: an id the catalog still has, or one claimed twice, would leave two
    arms with one arm's learnt effects."""
    claimed: dict = {}
    for index, item in enumerate(items):
        old = item.get("renamed_from") if isinstance(item, Mapping) else None
        if not isinstance(old, str):
            continue
        arm_id = item.get("id")
        entry = f"arms[{index}]" + (f" ({arm_id})" if isinstance(arm_id, str) else "")
        if old in ids:
            problems.add(
                entry,
                "renamed_from",
                old,
                "names an arm the catalog still has",
                f"the former id of this arm, which no arm has now (arms[{ids[old]}] has it)",
            )
        elif old in claimed:
            problems.add(
                entry,
                "renamed_from",
                old,
                "another arm was renamed from it too",
                f"a former id no other arm names (also arms[{claimed[old]}])",
            )
        elif not ARM_ID.match(old):
            problems.add(
                entry,
                "renamed_from",
                old,
                "malformed id",
                "an arm id: lowercase letters, digits and underscores, starting with a letter",
            )
        claimed.setdefault(old, index)


def _check_control(good, entry, problems) -> None:
    """Usual care is what everyone not planned into an arm gets: plans never spend on it, limit
    it or group it, so a cost, capacity or group size on it would be shown and never used."""
    if good.get("cost_per_person", 0) != 0:
        problems.add(
            entry,
            "cost_per_person",
            good["cost_per_person"],
            "a cost for the control arm",
            "0 (usual care costs the program nothing; plans never spend on it)",
        )
    if good.get("capacity") is not None:
        problems.add(
            entry,
            "capacity",
            good["capacity"],
            "a limit on places for the control arm",
            "null (everyone not planned into an arm gets usual care)",
        )
    for field in ("group_min", "group_max"):
        if good.get(field, 1) != 1:
            problems.add(entry, field, good[field], "the control arm in groups", "1")
