"""What an answer's audit record holds beside the ranking: the request ids (many from one
read of the system's random source), the profile as logged (every field but the identifier),
the served arm's DP and PA figures, and the assignment's draw.
"""

from __future__ import annotations

import operator
import os
import uuid
from collections.abc import Sequence

import numpy as np


def _request_ids(n: int) -> list[str]:
    """``n`` of ``uuid.uuid4().hex``: random version-4 UUIDs as 32 hex digits, for many
    answers from one read of the system's random source (uuid4 reads it for each)."""
    if n < _FEW_IDS:
        return [uuid.uuid4().hex for _ in range(n)]
    octets = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    # What uuid.UUID(bytes=..., version=4) sets: the version in the high four bits of the
    # seventh octet, the RFC 4122 variant in the high two bits of the ninth.
    octets[:, 6] = (octets[:, 6] & 0x0F) | 0x40
    octets[:, 8] = (octets[:, 8] & 0x3F) | 0x80
    digits = octets.tobytes().hex()
    return [digits[k : k + 32] for k in range(0, 32 * n, 32)]


# Fewer ids than this are made one by one (numpy's per-call cost exceeds uuid4's).
_FEW_IDS = 8


def _getter(keys: Sequence[str]):
    """``row -> tuple of row[key]`` for ``keys`` (itemgetter's result is a bare value for one key)."""
    if len(keys) == 1:
        return lambda row: (row[keys[0]],)
    return operator.itemgetter(*keys) if keys else lambda row: ()


def _secondary_figures(ranking, arm: str) -> tuple | None:
    """``arm``'s DP effect and bounds, then PA's (NaN where the model has none), from its
    :class:`~recommender.policy.RankedArm` in ``ranking``; ``None`` if it is not ranked."""
    for ranked in ranking.arms:
        if ranked.arm == arm:
            return (
                ranked.effect_dp,
                ranked.lower_dp,
                ranked.upper_dp,
                ranked.effect_pa,
                ranked.lower_pa,
                ranked.upper_pa,
            )
    return None


def _logged_assignment(assignment) -> dict | None:
    if assignment is None:
        return None
    return {
        "arm": assignment.arm,
        "probability": assignment.probability,
        "policy": assignment.policy,
        "cycle": assignment.cycle,
        "probabilities": assignment.probabilities,
    }
