"""Loading the catalog from YAML and checking it, reporting every problem at once.

The allowed fields are tables (constraints as data) so that one loop checks presence, type
and range for every entry, and a message always names the entry, the field, the value found
and what would be accepted. Evidence records, exclusions and complements are checked in
``_records``; each arm's entry in ``_arms``; the shared machinery is in ``_checks``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

from recommender.config_file import read_config
from recommender.errors import InputError

from ._arms import _arm, _check_renames
from ._checks import _LIST, _TEXT, _check_fields, _Problems
from ._model import Catalog
from ._records import _complement

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
