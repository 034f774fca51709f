"""The catalog's objects: arms, who may receive them, and the evidence behind them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from recommender.cohort import CATEGORIES
from recommender.errors import InputError

__all__ = ["Evidence", "Exclusion", "Eligibility", "Arm", "Complement", "Catalog"]

DESIGNS = (
    "rct",
    "cluster_rct",
    "controlled",
    "pre_post",
    "meta_analysis",
    "systematic_review",
    "observational",
    "qualitative",
)
EFFECT_KINDS = ("between_group", "within_group", "association", "descriptive")
GRADES = ("high", "moderate", "low", "very_low")


@dataclass(frozen=True)
class Evidence:
    """One published finding behind an arm or a complementary measure.

    Every attribute is present in the catalog; None means the source does not give it. See
    ``configs/interventions.yaml`` for the conventions.

    Attributes
    ----------
    authors, year, title, journal, doi, pmid
        The citation. ``doi`` and ``pmid`` only where a source gives them (never made up).
    population, setting : str
        Who was studied, and where and when.
    design : str
        One of :data:`DESIGNS` (``rct``, ``controlled``, ``pre_post``, ``meta_analysis`` ...).
    outcome : str
        What was measured (MBI subscale names only, never item wording).
    effect : str
        The finding as the study reports it.
    measure, value, ci, comparison
        The reported effect's parts: what the number is, the number, its interval
        ``(lower, upper)`` and what was compared with what.
    effect_kind : str
        ``between_group``, ``within_group`` (pre-post), ``association`` or ``descriptive``.
    grade : str or None
        GRADE certainty where a review rated it (high, moderate, low, very_low).
    certainty : str
        How sure the figure is, and on what basis (GRADE, or the design's level, said as such).
    uptake : str or None
        Participation or uptake, where reported.
    effect_points : float or None
        Difference from usual care in Emotional Exhaustion points (negative = less); only for
        between-group figures.
    effect_points_ci : tuple of float or None
        Interval of ``effect_points``.
    conversion : str or None
        How ``effect_points`` were obtained (an assumed SD is labelled an assumption), or why
        the figure was not converted.
    roles : tuple of str
        Roles the evidence concerns (physician, resident, nurse, app).
    specific_to_arm : bool
        False for estimates pooled over several kinds of intervention.
    checked_against : str
        Where the record was checked: a file in shared/evidence or the study's abstract.
    note : str or None
        Caveats.
    """

    authors: str | None
    year: int
    title: str | None
    journal: str
    doi: str | None
    pmid: str | None
    population: str
    setting: str
    design: str
    outcome: str
    effect: str
    measure: str
    value: float | None
    ci: tuple[float, float] | None
    comparison: str
    effect_kind: str
    grade: str | None
    certainty: str
    uptake: str | None
    effect_points: float | None
    effect_points_ci: tuple[float, float] | None
    conversion: str | None
    roles: tuple[str, ...]
    specific_to_arm: bool
    checked_against: str
    note: str | None

    @property
    def citation(self) -> str:
        """Short citation: first author, year, journal."""
        if not self.authors:
            return f"{self.journal} {self.year} (authors not given in the stored sources)"
        names = [name.strip() for name in self.authors.split(",")]
        first = names[0] + (" et al." if len(names) > 1 else "")
        return f"{first} {self.year}, {self.journal}"

    @property
    def reference(self) -> str:
        """Full reference as one line, with DOI / PMID where given."""
        parts = [self.authors or "Authors not given in the stored sources", f"({self.year})."]
        parts.append(f"{self.title}." if self.title else "Title not given in the stored sources.")
        parts.append(f"{self.journal}.")
        if self.doi:
            parts.append(f"doi:{self.doi}.")
        if self.pmid:
            parts.append(f"PMID {self.pmid}.")
        return " ".join(parts)

    def as_dict(self) -> dict:
        """Plain values (tuples as lists), plus ``citation`` and ``reference``; JSON-ready."""
        out = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        out["citation"] = self.citation
        out["reference"] = self.reference
        return out


@dataclass(frozen=True)
class Exclusion:
    """Why an eligibility rule leaves people out.

    Attributes
    ----------
    excludes : str
        ``role <role>``, ``specialties``, ``min_years_in_practice`` or ``max_years_in_practice``.
    reason : str
        Why.
    source : str or None
        The study or document behind it; None when it is a program assumption.
    assumption : bool
        True when the exclusion is a program choice rather than a finding.
    """

    excludes: str
    reason: str
    source: str | None
    assumption: bool


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
    exclusions : tuple of Exclusion
        The reason and source of every rule above that leaves someone out.
    """

    roles: tuple[str, ...] = CATEGORIES["role"]
    specialties: tuple[str, ...] | None = None
    min_years_in_practice: float | None = None
    max_years_in_practice: float | None = None
    exclusions: tuple[Exclusion, ...] = ()

    @property
    def excluded(self) -> tuple[str, ...]:
        """The exclusions these rules make, in the words ``Exclusion.excludes`` uses."""
        out = [f"role {role}" for role in CATEGORIES["role"] if role not in self.roles]
        if self.specialties is not None:
            out.append("specialties")
        if self.min_years_in_practice is not None:
            out.append("min_years_in_practice")
        if self.max_years_in_practice is not None:
            out.append("max_years_in_practice")
        return tuple(out)

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
    renamed_from : str or None
        The arm's former id, when it was renamed: a model that learnt that id serves the arm
        with what it learnt there (``None``: not renamed).
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
    renamed_from: str | None = None


@dataclass(frozen=True)
class Complement:
    """A measure the model does not rank: it acts on the work or the team, not on one person.

    Attributes
    ----------
    id, name, level, description : str
        Short name, readable name, where it acts (team, organisation) and what it is.
    roles : tuple of str
        Roles it concerns.
    evidence : tuple of Evidence
        Published findings, in the same record format as an arm's.
    """

    id: str
    name: str
    level: str
    description: str
    roles: tuple[str, ...]
    evidence: tuple[Evidence, ...] = ()


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
    complements : tuple of Complement
        Measures the model does not rank, shown with every answer as what individual
        programs do not replace.
    sha256 : str or None
        The file's content digest (:func:`~recommender.catalog.catalog_sha256`), set by
        :func:`~recommender.catalog.load_catalog`; ``None`` for a catalog not read from a file.
        Where it came from, not what it says: two catalogs that say the same are equal whatever
        their files' bytes (a byte order mark, a comment).
    """

    version: str
    control: str
    arms: tuple[Arm, ...]
    complements: tuple[Complement, ...] = ()
    sha256: str | None = field(default=None, compare=False)

    @property
    def arm_ids(self) -> tuple[str, ...]:
        return tuple(arm.id for arm in self.arms)

    @property
    def renames(self) -> dict[str, str]:
        """``former id -> id`` of the arms renamed (``renamed_from``)."""
        return {arm.renamed_from: arm.id for arm in self.arms if arm.renamed_from}

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
