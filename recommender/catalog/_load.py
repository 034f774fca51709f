"""Loading the catalog from YAML and checking it, reporting every problem at once.

The allowed fields are tables (constraints as data) so that one loop checks presence, type
and range for every entry, and a message always names the entry, the field, the value found
and what would be accepted. Evidence records, exclusions and complements are checked in
``_records``; the shared machinery is in ``_checks``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

from recommender.cohort import CATEGORIES
from recommender.config_file import read_config
from recommender.errors import InputError

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
    _Problems,
)
from ._model import Arm, Catalog, Eligibility
from ._records import _complement, _evidence, _exclusions

__all__ = ["catalog_sha256", "load_catalog", "parse_catalog"]

# field -> (kind, required, nullable)
TOP_FIELDS = {
    "version": (_TEXT, True, False),
    "control": (_TEXT, False, False),
    "arms": (_LIST, True, False),
    "complements": (_LIST, False, True),
    "description": (_TEXT, False, True),
}
# Top-level keys starting with "x-" hold YAML anchors shared by several entries (a record
# pooled across arms); they are not read otherwise.
_EXTENSION = "x-"
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


def _normalised(name) -> str | None:
    return " ".join(name.split()).casefold() if isinstance(name, str) else None


def parse_catalog(data, *, source: str = "catalog") -> Catalog:
    """Build a :class:`Catalog` from parsed YAML (a mapping), checking everything.

    Raises
    ------
    InputError
        Listing every problem; ``error.problems`` holds dicts with ``entry``, ``field``,
        ``value``, ``rule`` and ``message``.
    """
    problems = _Problems()
    good = _check_fields(data, TOP_FIELDS, "catalog", problems, extension=_EXTENSION)
    control = good.get("control", "none")
    arms, seen, names = [], {}, {}
    for index, item in enumerate(good.get("arms") or ()):
        arm = _arm(item, index, problems, control)
        arm_id = item.get("id") if isinstance(item, Mapping) else None
        name = _normalised(item.get("name")) if isinstance(item, Mapping) else None
        if name and name in names:
            # Answers, plans and cards show arms by name: two alike would be told apart by no
            # one (a treatment named like usual care, above all).
            problems.add(
                f"arms[{index}]" + (f" ({arm_id})" if isinstance(arm_id, str) else ""),
                "name",
                item["name"],
                "the name of another arm",
                f"a name no other arm has (also arms[{names[name]}])",
            )
        elif name:
            names[name] = index
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
    complements, seen_complements = [], {}
    for index, item in enumerate(good.get("complements") or ()):
        complement = _complement(item, index, problems)
        comp_id = item.get("id") if isinstance(item, Mapping) else None
        if isinstance(comp_id, str):
            if comp_id in seen_complements or comp_id in seen:
                problems.add(
                    f"complements[{index}] ({comp_id})",
                    "id",
                    comp_id,
                    "duplicate id",
                    "an id used by no arm and no other complement",
                )
            seen_complements.setdefault(comp_id, index)
        if complement is not None:
            complements.append(complement)
    _check_renames(good.get("arms") or (), seen, problems)
    if problems:
        lines = "\n".join(f"  - {_line(data, p)}{p['message']}" for p in problems)
        older = _older_format(data)
        raise InputError(
            f"{source}: {len(problems)} problem(s) in the intervention catalog"
            + (" (written in an older release's format)" if older else "")
            + f":\n{lines}"
            + (f"\n{older}" if older else ""),
            problems=list(problems),
        )
    return Catalog(
        version=good["version"], control=control, arms=tuple(arms), complements=tuple(complements)
    )


def _line(data, problem: dict) -> str:
    """``line N: `` for a problem of a key the file holds (read by ``read_config``), else ``""``."""
    if not hasattr(data, "line"):
        return ""
    entry = re.sub(r" \([^)]*\)", "", problem["entry"])  # arms[1] (coaching) -> arms[1]
    parts = [part for part in (entry, problem["field"]) if part and part != "catalog"]
    line = data.line(".".join(parts)) if parts else None
    return f"line {line}: " if line else ""


# Evidence fields of the catalog format before version 2026.12-1 (one `citation` text and an
# `smd`), which this release's evidence records replaced by their parts.
_OLDER_EVIDENCE_FIELDS = ("citation", "smd")


def _older_format(data) -> str | None:
    """What to do with a catalog an older release wrote (``None`` for any other): its every
    evidence record is refused field by field, which alone would not say why."""
    arms = data.get("arms") if isinstance(data, Mapping) else None
    records = [
        record
        for arm in (arms if isinstance(arms, list) else ())
        if isinstance(arm, Mapping) and isinstance(arm.get("evidence"), list)
        for record in arm["evidence"]
        if isinstance(record, Mapping)
    ]
    if not any(field in record for record in records for field in _OLDER_EVIDENCE_FIELDS):
        return None
    version = data.get("version")
    return (
        f"This catalog (version {version!r}) is in the format of a release before catalog "
        "2026.12-1 (evidence records with `citation` and `smd`), which this release does not "
        "read. Start from the interventions.yaml this release ships (its configs/ folder) and "
        "carry your own changes over (costs, capacities, eligibility, arms); `recommender serve "
        "--check` checks the result. Models registered with the older catalog "
        "are still served with the new one."
    )


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
    if not path.exists():
        raise InputError(f"{path}: no such catalog file")
    # a folder or an unreadable file: read_config says so in its own words
    digest = catalog_sha256(path) if path.is_file() else None
    data = read_config(path, what="catalog")
    try:
        catalog = parse_catalog(data, source=f"catalog {path}")
    except InputError as error:
        note = None if _older_format(data) else _other_version(data, path)
        if note is None:
            raise
        raise InputError(f"{error}\n{note}", problems=error.problems) from None
    # A program may save the file while it is read: the digest must be of the content parsed.
    if catalog_sha256(path) != digest:
        raise InputError(
            f"catalog {path} changed while it was read (an edit being saved); read it again "
            "once the edit is saved"
        )
    return dataclasses.replace(catalog, sha256=digest)


def catalog_sha256(path) -> str:
    """The catalog's content digest: the sha256 of the file's bytes, in hex.

    The one home of the digest: the training run tags it as ``catalog.sha256`` and the service
    names it beside the catalog version in every answer and plan, so an answer can be tied to
    the exact file even when a program edits the catalog without bumping its version.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "interventions.yaml"
    >>> _ = path.write_bytes(b"version: x\\n")
    >>> catalog_sha256(path)[:12]
    'fa52a1ee01ef'
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _other_version(data, path: Path) -> str | None:
    """A refused catalog whose version is not the one this release ships: it may be kept from
    an older release, from before a rule it breaks (``None`` otherwise)."""
    from recommender.paths import shipped_config_dir

    shipped = shipped_config_dir() / "interventions.yaml"
    found = data.get("version") if isinstance(data, Mapping) else None
    try:
        if shipped.resolve() == path.resolve():
            return None
        ships = read_config(shipped, what="catalog").get("version")
    except (OSError, InputError):
        return None
    if not isinstance(ships, str) or not isinstance(found, str) or found == ships:
        return None
    return (
        f"This catalog is version {found!r}; this release ships version {ships!r} ({shipped}). "
        "A catalog kept from an older release may break a rule added since: compare it with the "
        "shipped one and carry your own changes over; `recommender serve --check` checks it."
    )
