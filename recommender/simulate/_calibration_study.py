"""A published figure the simulator must reproduce (:class:`Study`), and the shorthands the
study tables use for its population (a role mix, a row filter) and its design (trial shares).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd

__all__ = ["Study"]


@dataclass(frozen=True)
class Study:
    """One published figure and how to reproduce it in simulation.

    Parameters
    ----------
    name : str
        Short citation and population, e.g. ``"Dyrbye 2019: coaching, physicians 5-30 y"``.
    quantity : str
        What is measured, in words and units.
    roles : mapping of role -> share, or None
        The simulated cohort's role mix (None: the scenario's own mix).
    design : mapping of arm -> share, or None
        Randomized shares for the simulated trial (None: the scenario's rct shares).
    measure : callable
        ``measure(frame) -> float`` on the simulated (and filtered) cohort.
    target : float
        The published figure (or the bound of a direction check).
    tolerance : float or None
        Half-width of the accepted band; None for a direction check.
    direction : {"<", ">"} or None
        For direction checks: simulated must be below / above ``target``.
    source : str
        Where the figure comes from.
    select : callable or None
        ``select(frame) -> boolean mask`` restricting the cohort (e.g. years in practice).
    gap : str
        Empty for a figure the default scenario must reproduce; otherwise why it does not (the
        tests then check that it indeed does not, so the stated gap stays true).
    """

    name: str
    quantity: str
    roles: Mapping[str, float] | None
    design: Mapping[str, float] | None
    measure: Callable[[pd.DataFrame], float]
    target: float
    tolerance: float | None
    direction: str | None
    source: str
    select: Callable[[pd.DataFrame], np.ndarray] | None = None
    gap: str = ""

    @property
    def kind(self) -> str:
        return "tolerance" if self.tolerance is not None else "direction"

    def check(self) -> str:
        """The acceptance rule in words (``"±1.5"`` or ``"< 0"``)."""
        if self.tolerance is not None:
            return f"±{self.tolerance:g}"
        return f"{self.direction} {self.target:g}"

    def accepts(self, simulated: float) -> bool:
        if self.tolerance is not None:
            return bool(abs(simulated - self.target) <= self.tolerance)
        return (
            bool(simulated < self.target)
            if self.direction == "<"
            else bool(simulated > self.target)
        )


# -- population and design shorthands --------------------------------------------------------
def _years(lo: float, hi: float):
    return lambda f: f["years_in_practice"].between(lo, hi).to_numpy()


_P = MappingProxyType({"physician": 1.0})
_R = MappingProxyType({"resident": 1.0})
_N = MappingProxyType({"nurse": 1.0})
_P_AND_R = MappingProxyType({"physician": 0.77, "resident": 0.23})  # the default mix's doctors
_N_AND_P = MappingProxyType({"nurse": 0.5, "physician": 0.5})
_ALL_ARMS = None  # the scenario's own equal shares
_MID = _years(5, 30)


def _trial(arm: str, *others: str) -> Mapping[str, float]:
    arms = ("none", arm, *others)
    return MappingProxyType({a: 1.0 / len(arms) for a in arms})
