"""How answers name an arm in their sentences and notes."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ArmLabels"]


class ArmLabels(dict):
    """Each arm's label, worked out once: its name in ``names``, else its id with spaces for
    underscores (a batch's thousand sentences and notes name the same few arms).

    Examples
    --------
    >>> labels = ArmLabels({"coaching": "Professional coaching"})
    >>> labels["coaching"], labels["peer_group"]
    ('Professional coaching', 'peer group')
    """

    def __init__(self, names: Mapping[str, str] | None = None):
        super().__init__()
        self.names = dict(names or {})

    def __missing__(self, arm: str) -> str:
        text = self[arm] = self.names.get(arm, arm.replace("_", " "))
        return text
