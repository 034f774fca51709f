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
) -> list[str]:
    """One part per arm in ``arms`` whose training rows within ``role`` are under
    ``min_rows``: its figure for the role is extrapolated from other roles. Arms without
    counts (usual care, a carried arm, a model recorded before) get none."""
    counts = (metadata or {}).get(ARM_ROLE_KEY) or {}
    parts = []
    for arm in arms:
        rows = (counts.get(arm) or {}).get(str(role))
        if rows is None or rows >= min_rows:
            continue
        served = (
            f"none of the {people} in the data this model learnt from was served it "
            if rows == 0
            else f"only {rows} rows of {people} in the data this model learnt from were served it "
        )
        parts.append(
            f"{names.get(arm, arm)}: {served}({rows} rows; {min_rows} needed), so its figure "
            "for them is extrapolated from other roles, not measured"
        )
    return parts
