"""The catalog's objects: arms, who may receive them, and the evidence behind them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from recommender.cohort import CATEGORIES
from recommender.errors import InputError

__all__ = ["Evidence", "Eligibility", "Arm", "Catalog"]


@dataclass(frozen=True)
class Evidence:
    """One published finding behind an arm.

    Attributes
    ----------
    citation : str
        Author, year and journal.
    population : str
        Who was studied.
    outcome : str
        What was measured (MBI subscale names only, never item wording).
    effect : str
        The figure in words, as the source reports it.
    effect_points : float or None
        Difference from usual care in Emotional Exhaustion points (negative = less).
    smd : float or None
        Standardized mean difference on Emotional Exhaustion.
    note : str
        Caveats: size, certainty, whether it is specific to the arm.
    """

    citation: str
    population: str
    outcome: str
    effect: str
    effect_points: float | None = None
    smd: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Eligibility:
    """Who a program offers an arm to. Empty restrictions mean everyone.

    Attributes
    ----------
    roles : tuple of str
        Roles allowed (contract values: physician, resident, nurse, app).
    specialties : tuple of str or None
        Specialties allowed; None for any.
    min_years_in_practice, max_years_in_practice : float or None
        Inclusive bounds on years in practice; None for no bound.
    """

    roles: tuple[str, ...] = CATEGORIES["role"]
    specialties: tuple[str, ...] | None = None
    min_years_in_practice: float | None = None
    max_years_in_practice: float | None = None

    @property
    def open_to_all(self) -> bool:
        return (
            set(self.roles) == set(CATEGORIES["role"])
            and self.specialties is None
            and self.min_years_in_practice is None
            and self.max_years_in_practice is None
        )

    def reasons_against(self, profile: Mapping) -> list[str]:
        """Why ``profile`` is not eligible, as sentences; empty when it is."""
        reasons = []
        role = _get(profile, "role")
        if role not in self.roles:
            reasons.append(f"role {role!r} not among {', '.join(self.roles)}")
        if self.specialties is not None:
            specialty = _get(profile, "specialty")
            if specialty not in self.specialties:
                reasons.append(f"specialty {specialty!r} not among {', '.join(self.specialties)}")
        if self.min_years_in_practice is not None or self.max_years_in_practice is not None:
            years = float(_get(profile, "years_in_practice"))
            if self.min_years_in_practice is not None and years < self.min_years_in_practice:
                reasons.append(
                    f"{years:g} years in practice, fewer than {self.min_years_in_practice:g}"
                )
            if self.max_years_in_practice is not None and years > self.max_years_in_practice:
                reasons.append(
                    f"{years:g} years in practice, more than {self.max_years_in_practice:g}"
                )
        return reasons

    def allows(self, profile: Mapping) -> bool:
        return not self.reasons_against(profile)


def _get(profile: Mapping, key: str):
    try:
        return profile[key]
    except (KeyError, IndexError):
        fields = ", ".join(map(str, profile.keys()))
        raise InputError(
            f"profile has no {key!r}; eligibility needs it (profile fields: {fields})"
        ) from None


@dataclass(frozen=True)
class Arm:
    """One intervention a program can offer.

    Attributes
    ----------
    id : str
        Short name used in data and columns (``coaching``).
    name, description : str
        Plain-language name and what the person would do.
    format, dose : str
        How it is delivered and how much of it.
    group_min, group_max : int
        Group size limits (1 and 1 for one-to-one formats).
    cost_per_person : float
        Default US$ per participant for a full course.
    capacity : int or None
        Places per program cycle with default staffing; None for no practical limit.
    eligibility : Eligibility
        Who the program offers it to.
    evidence : tuple of Evidence
        Published findings.
    cost_is_assumption, capacity_is_assumption : bool
        True when the default has no direct source.
    cost_basis, capacity_basis : str
        Where the default comes from.
    """

    id: str
    name: str
    description: str
    format: str
    dose: str
    group_min: int
    group_max: int
    cost_per_person: float
    capacity: int | None = None
    eligibility: Eligibility = field(default_factory=Eligibility)
    evidence: tuple[Evidence, ...] = ()
    cost_is_assumption: bool = False
    cost_basis: str = ""
    capacity_is_assumption: bool = False
    capacity_basis: str = ""


@dataclass(frozen=True)
class Catalog:
    """The arms a program offers, control (usual care) included.

    Attributes
    ----------
    version : str
        Catalog version, recorded with every trained model.
    control : str
        The control arm's id (``"none"``).
    arms : tuple of Arm
        All arms in catalog order, control included.
    """

    version: str
    control: str
    arms: tuple[Arm, ...]

    @property
    def arm_ids(self) -> tuple[str, ...]:
        return tuple(arm.id for arm in self.arms)

    @property
    def treatment_arms(self) -> tuple[str, ...]:
        """Non-control arm ids in catalog order."""
        return tuple(arm.id for arm in self.arms if arm.id != self.control)

    def arm(self, arm_id: str) -> Arm:
        for arm in self.arms:
            if arm.id == arm_id:
                return arm
        raise InputError(f"unknown arm {arm_id!r}; the catalog has {', '.join(self.arm_ids)}")

    def eligible_arms(self, profile: Mapping) -> list[str]:
        """Arm ids (control included, catalog order) that the program offers to ``profile``.

        Parameters
        ----------
        profile : mapping
            At least ``role``; ``specialty`` and ``years_in_practice`` when an arm's rules
            use them. A pandas Series (one cohort row) works too.

        Examples
        --------
        >>> from recommender.catalog import load_catalog
        >>> load_catalog().eligible_arms({"role": "nurse", "specialty": "other",
        ...                               "years_in_practice": 4})
        ['none', 'mindfulness', 'resilience_training']
        """
        return [arm.id for arm in self.arms if arm.eligibility.allows(profile)]
