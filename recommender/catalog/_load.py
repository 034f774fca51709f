"""Loading the catalog from YAML and checking it, reporting every problem at once.

The allowed fields are tables (constraints as data) so that one loop checks presence, type
and range for every entry, and a message always names the entry, the field, the value found
and what would be accepted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from recommender.cohort import CATEGORIES
from recommender.errors import InputError

from ._model import Arm, Catalog, Eligibility, Evidence

__all__ = ["load_catalog", "parse_catalog"]

# An id becomes part of column names (effect_<id>, true_effect_<id>), hence the pattern.
ARM_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

_TEXT = ("text", lambda v: isinstance(v, str) and v.strip() != "")
_INT = ("whole number", lambda v: isinstance(v, int) and not isinstance(v, bool))
_NUMBER = (
    "number",
    lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
)
_BOOL = ("true or false", lambda v: isinstance(v, bool))
_LIST = ("list", lambda v: isinstance(v, list))
_MAPPING = ("mapping", lambda v: isinstance(v, Mapping))

# field -> (kind, required, nullable)
TOP_FIELDS = {
    "version": (_TEXT, True, False),
    "control": (_TEXT, False, False),
    "arms": (_LIST, True, False),
    "description": (_TEXT, False, True),
}
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
}
ELIGIBILITY_FIELDS = {
    "roles": (_LIST, False, True),
    "specialties": (_LIST, False, True),
    "min_years_in_practice": (_NUMBER, False, True),
    "max_years_in_practice": (_NUMBER, False, True),
}
EVIDENCE_FIELDS = {
    "citation": (_TEXT, True, False),
    "population": (_TEXT, True, False),
    "outcome": (_TEXT, True, False),
    "effect": (_TEXT, True, False),
    "effect_points": (_NUMBER, False, True),
    "smd": (_NUMBER, False, True),
    "note": (_TEXT, False, True),
}
_YEARS = (0, 60)  # the contract's range for years_in_practice


class _Problems(list):
    def add(self, entry: str, field: str | None, value, rule: str, accepted: str):
        where = f"{entry}.{field}" if field else entry
        message = f"{where}: {rule}"
        if value is not _ABSENT:
            message += f"; found {value!r}"
        message += f"; accepted: {accepted}"
        self.append(
            {
                "entry": entry,
                "field": field,
                "value": None if value is _ABSENT else value,
                "rule": rule,
                "message": message,
            }
        )


_ABSENT = object()


def _check_fields(data, fields, entry: str, problems: _Problems) -> dict:
    """Presence, unknown names and types; returns the fields that passed."""
    if not isinstance(data, Mapping):
        problems.add(entry, None, data, "wrong type", "a mapping of field: value")
        return {}
    good = {}
    for name in data:
        if name not in fields:
            problems.add(entry, str(name), data[name], "unknown field", ", ".join(fields))
    for name, ((kind, test), required, nullable) in fields.items():
        if name not in data:
            if required:
                problems.add(entry, name, _ABSENT, "missing field", f"a {kind}")
            continue
        value = data[name]
        if value is None and nullable:
            good[name] = None
        elif value is None or not test(value):
            problems.add(
                entry, name, value, "wrong type", f"a {kind}" + (" or null" if nullable else "")
            )
        else:
            good[name] = value
    return good


def _members(values, allowed, entry, field, singular, problems) -> tuple[str, ...] | None:
    if values is None:
        return None
    bad = [v for v in values if v not in allowed]
    for value in bad:
        problems.add(entry, field, value, f"unknown {singular}", ", ".join(allowed))
    if not values:
        problems.add(
            entry,
            field,
            values,
            "empty list",
            f"one or more of {', '.join(allowed)}, or null for any",
        )
    return None if bad or not values else tuple(dict.fromkeys(values))


def _eligibility(data, entry, problems) -> Eligibility:
    if data is None:
        return Eligibility()
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
    if lo is not None and hi is not None and lo > hi:
        problems.add(
            entry,
            "min_years_in_practice",
            lo,
            "greater than max_years_in_practice",
            f"at most {hi:g}",
        )
    return Eligibility(
        roles=roles if roles is not None else CATEGORIES["role"],
        specialties=specialties,
        min_years_in_practice=lo,
        max_years_in_practice=hi,
    )


def _evidence(items, entry, problems) -> tuple[Evidence, ...]:
    found = []
    for j, item in enumerate(items or ()):
        good = _check_fields(item, EVIDENCE_FIELDS, f"{entry}.evidence[{j}]", problems)
        if all(name in good for name, (_, required, _) in EVIDENCE_FIELDS.items() if required):
            found.append(
                Evidence(
                    **{
                        k: (float(v) if k in ("effect_points", "smd") and v is not None else v)
                        for k, v in good.items()
                        if v is not None
                    }
                )
            )
    return tuple(found)


def _arm(data, index, problems) -> Arm | None:
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
    )


def parse_catalog(data, *, source: str = "catalog") -> Catalog:
    """Build a :class:`Catalog` from parsed YAML (a mapping), checking everything.

    Raises
    ------
    InputError
        Listing every problem; ``error.problems`` holds dicts with ``entry``, ``field``,
        ``value``, ``rule`` and ``message``.
    """
    problems = _Problems()
    good = _check_fields(data, TOP_FIELDS, "catalog", problems)
    control = good.get("control", "none")
    arms, seen = [], {}
    for index, item in enumerate(good.get("arms") or ()):
        arm = _arm(item, index, problems)
        arm_id = item.get("id") if isinstance(item, Mapping) else None
        if isinstance(arm_id, str):
            if arm_id in seen:
                problems.add(
                    f"arms[{index}] ({arm_id})",
                    "id",
                    arm_id,
                    "duplicate id",
                    f"an id not used before (also arms[{seen[arm_id]}])",
                )
            else:
                seen[arm_id] = index
        if arm is not None:
            arms.append(arm)
    if "arms" in good and not good["arms"]:
        problems.add(
            "catalog", "arms", [], "empty list", "the control arm and at least one other arm"
        )
    if "arms" in good and good["arms"]:
        if control not in seen:
            problems.add(
                "catalog",
                "control",
                control,
                "no arm has the control id",
                f"the id of an arm in the list ({', '.join(seen) or 'none found'})",
            )
        elif len(seen) < 2:
            problems.add(
                "catalog",
                "arms",
                list(seen),
                "only the control arm",
                "the control arm and at least one other arm",
            )
    for arm in arms:
        if arm.id == control and not arm.eligibility.open_to_all:
            problems.add(
                f"arms[{seen[arm.id]}] ({arm.id})",
                "eligibility",
                "restricted",
                "the control arm is restricted",
                "no eligibility rules (usual care is open to everyone)",
            )
    if problems:
        lines = "\n".join(f"  - {p['message']}" for p in problems)
        raise InputError(
            f"{source}: {len(problems)} problem(s) in the intervention catalog:\n{lines}",
            problems=list(problems),
        )
    return Catalog(version=good["version"], control=control, arms=tuple(arms))


def load_catalog(path=None) -> Catalog:
    """Load and check the intervention catalog.

    Parameters
    ----------
    path : str or Path, optional
        A YAML file; default ``configs/interventions.yaml`` via
        :func:`recommender.paths.config_path`.

    Raises
    ------
    InputError
        When the file is missing, is not YAML, or breaks any rule (every problem listed).

    Examples
    --------
    >>> catalog = load_catalog()
    >>> catalog.control, catalog.treatment_arms[:2]
    ('none', ('coaching', 'mindfulness'))
    """
    if path is None:
        from recommender.paths import config_path

        path = config_path("interventions.yaml")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such catalog file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise InputError(f"{path}: not valid YAML: {error}") from error
    return parse_catalog(data, source=str(path))
