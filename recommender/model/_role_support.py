"""Which arms each role was served in the data a model learnt from.

A model learns an arm's effect for a role only from that role's people who were served it. The
day-one evidence-only model serves every advanced practice provider usual care (no published
finding concerns them), so a model retrained from that log has no APP served any other arm:
its figures for them are the other roles' carried across, an extrapolation. The training
pipeline records the training rows per arm within each role (:func:`arm_rows_within_role`),
and :func:`unserved_in_role` says, for an answer, which ranked arms the person's role had fewer
than the card's ``min_cell`` rows of, so that such a figure is not read as a measurement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

__all__ = ["ARM_ROLE_KEY", "arm_rows_within_role", "thin_arms_by_role", "unserved_in_role"]

# The metadata key the counts are recorded under: ``{arm: {role: rows}}``.
ARM_ROLE_KEY = "arm_rows_within_role"


def arm_rows_within_role(
    treatment: Sequence, roles: Sequence, *, arms: Sequence[str], all_roles: Sequence[str] = ()
) -> dict[str, dict[str, int]]:
    """Training rows per arm within each role (JSON-safe), zeros included.

    ``arms`` are the learnt treatment arms (usual care, whose effect is 0 by definition, is
    left out); ``all_roles`` the contract's roles, so that one absent from the rows counts 0.

    Examples
    --------
    >>> arm_rows_within_role(
    ...     ["none", "coaching", "none"], ["app", "nurse", "nurse"], arms=["coaching"]
    ... )
    {'coaching': {'app': 0, 'nurse': 1}}
    """
    frame = pd.DataFrame({"arm": [str(a) for a in treatment], "role": [str(r) for r in roles]})
    counts = frame.groupby(["arm", "role"]).size()
    role_ids = list(dict.fromkeys([*map(str, all_roles), *sorted(frame["role"].unique())]))
    return {
        str(arm): {role: int(counts.get((str(arm), role), 0)) for role in role_ids} for arm in arms
    }


def thin_arms_by_role(metadata: Mapping, min_rows: int) -> dict[str, list[str]]:
    """Per role, the treatment arms it had fewer than ``min_rows`` training rows of (empty for
    a model recorded without the counts)."""
    counts = (metadata or {}).get(ARM_ROLE_KEY) or {}
    out: dict[str, list[str]] = {}
    for arm, by_role in counts.items():
        for role, rows in by_role.items():
            if rows < min_rows:
                out.setdefault(role, []).append(arm)
    return out


def unserved_in_role(
    metadata: Mapping, arms: Sequence[str], role: str, names: Mapping, people: str, min_rows: int
) -> str | None:
    """What an answer says of the arms in ``arms`` whose training rows within ``role`` are
    under ``min_rows`` (their figures for the role are extrapolated from other roles), or
    None. Arms without counts (usual care, a carried arm, a model recorded before) are not
    named.

    Examples
    --------
    >>> metadata = {ARM_ROLE_KEY: {"coaching": {"app": 0, "nurse": 40}}}
    >>> unserved_in_role(metadata, ["coaching", "none"], "app", {}, "APPs", 11)
    'Not measured on APPs: coaching: none of them in the data this model learnt from was \
served it (0 rows; 11 needed), so its figure for them is extrapolated from other roles, not \
measured.'
    >>> unserved_in_role(metadata, ["coaching", "none"], "nurse", {}, "nurses", 11) is None
    True
    """
    counts = (metadata or {}).get(ARM_ROLE_KEY) or {}
    parts = []
    for arm in arms:
        rows = (counts.get(arm) or {}).get(str(role))
        if rows is None or rows >= min_rows:
            continue
        served = "none of them" if rows == 0 else f"only {rows} rows of theirs"
        parts.append(
            f"{names.get(arm, arm)}: {served} in the data this model learnt from "
            f"{'was' if rows == 0 else 'were'} served it ({rows} rows; {min_rows} needed), so "
            "its figure for them is extrapolated from other roles, not measured"
        )
    if not parts:
        return None
    return f"Not measured on {people}: " + "; ".join(parts) + "."
