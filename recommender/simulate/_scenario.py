"""Scenario files: every assumption of the simulator as a named, checked, tagged parameter.

A scenario is YAML (``configs/scenarios/<name>.yaml``) read once into a tree of frozen
dataclasses. Reading checks every field and reports all problems at once, each naming the field
path (``effects.coaching.by_role.nurse.ee``), the value and what is accepted (the checks live
in ``_scenario_reader.py``, those of a single field in ``_scenario_fields.py``).

Every parameter says where its number comes from: it is written ``{value: ..., source: "Dyrbye
2019"}`` (a study, named "Author Year" as in the catalog, with an optional ``note`` on how the
figure was taken from it) or ``{value: ..., assumption: "one-line reason"}`` (which must not name
a study). The tag may sit on the parameter or on each of its parts (per role, per subscale).
A parameter without a tag is refused, naming it; the tags are kept in
:attr:`Scenario.parameters` for ``docs/calibration.md``.

A scenario may start from another with ``extends: <name>``: mappings merge key by key, anything
else replaces; a tagged parameter replaces the parent's whole, so a new value never inherits the
parent's source. ``extends`` may also be a path to a ``.yaml`` file: a relative one is looked for
beside the extending file first, then in the working folder (where earlier releases looked).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recommender.cohort import CATEGORIES, RANGES
from recommender.errors import InputError

__all__ = [
    "Scenario",
    "Scores",
    "Correlations",
    "Population",
    "Baseline",
    "Course",
    "EffectModifiers",
    "ArmEffect",
    "Observational",
    "Assignment",
    "load_scenario",
    "scenario_names",
    "SCORES",
    "ROLES",
    "GENDERS",
    "SPECIALTIES",
    "SETTINGS",
    "CAREER_STAGES",
    "SCORE_RANGES",
    "ParameterTag",
]

# The data contract's vocabularies, taken from recommender.cohort so a simulated cohort can never
# drift from what validation accepts.
SCORES = ("ee", "dp", "pa")
SCORE_RANGES = {score: RANGES[score] for score in SCORES}
ROLES = CATEGORIES["role"]
GENDERS = CATEGORIES["gender"]
SPECIALTIES = CATEGORIES["specialty"]
SETTINGS = CATEGORIES["setting"]
CAREER_STAGES = ("trainee", "early", "mid", "late")


@dataclass(frozen=True)
class ParameterTag:
    """Where one scenario parameter (or part of one) comes from."""

    path: str  # e.g. "effects.coaching.by_role.physician"
    kind: str  # "source" or "assumption"
    text: str  # the study ("Dyrbye 2019") or the one-line reason
    note: str  # how the figure was taken from the source ("" when none)
    value: object  # the tagged value as written


@dataclass(frozen=True)
class Scores:
    """One number per MBI subscale."""

    ee: float
    dp: float
    pa: float

    def as_array(self) -> np.ndarray:
        return np.array([self.ee, self.dp, self.pa], dtype=float)


@dataclass(frozen=True)
class Correlations:
    """Pairwise correlations of the three subscales."""

    ee_dp: float
    ee_pa: float
    dp_pa: float

    def matrix(self) -> np.ndarray:
        return np.array(
            [
                [1.0, self.ee_dp, self.ee_pa],
                [self.ee_dp, 1.0, self.dp_pa],
                [self.ee_pa, self.dp_pa, 1.0],
            ]
        )


@dataclass(frozen=True)
class Population:
    """Who is in the cohort: shares and distributions by role."""

    roles: Mapping[str, float]
    gender: Mapping[str, Mapping[str, float]]
    years_in_practice: Mapping[str, Mapping[str, float]]  # mean, sd, max
    age_at_entry: Mapping[str, Mapping[str, float]]  # mean, sd, min
    specialty: Mapping[str, Mapping[str, float]]
    setting: Mapping[str, float]
    weekly_hours: Mapping[str, Mapping[str, float]]  # mean, sd, min, max


@dataclass(frozen=True)
class Baseline:
    """Latent baseline scores: role means, shifts, person-level SDs and correlations."""

    role_means: Mapping[str, Scores]
    gender_shift: Mapping[str, Scores]
    hours_slope: Scores
    specialty_shift: Mapping[str, Scores]
    setting_shift: Mapping[str, Scores]
    sd: Scores
    correlation: Correlations


@dataclass(frozen=True)
class Course:
    """Natural course under usual care from baseline to follow-up."""

    drift: Mapping[str, Scores]
    regression_to_mean: float
    noise_sd: Scores
    noise_correlation: Correlations


@dataclass(frozen=True)
class EffectModifiers:
    """How career stage, baseline severity and weekly hours scale every arm's effect."""

    early_career_below: float
    late_career_above: float
    severity_reference: Scores
    severity_scale: Scores
    severity_floor: float
    severity_cap: float
    hours_threshold: float
    time_floor: float
    effect_bound: Scores  # largest improvement any one person's expected effect may reach


@dataclass(frozen=True)
class ArmEffect:
    """One arm's effect for a reference person of each role, and how it varies."""

    by_role: Mapping[str, Scores]
    career: Mapping[str, float]
    severity_slope: float
    time_demand: float


@dataclass(frozen=True)
class Observational:
    """Confounded assignment: a multinomial logit over arms with ``none`` as reference."""

    strength: float
    overlap_floor: float
    intercept: Mapping[str, float]
    role: Mapping[str, Mapping[str, float]]
    severity: Mapping[str, float]
    hours: Mapping[str, float]


@dataclass(frozen=True)
class Assignment:
    rct_shares: Mapping[str, float]
    observational: Observational


@dataclass(frozen=True)
class Scenario:
    """A simulated world: population, baseline, natural course, effects and assignment."""

    name: str
    description: str
    control: str
    arms: tuple[str, ...]
    followup_months: float
    population: Population
    baseline: Baseline
    course: Course
    effect_modifiers: EffectModifiers
    effects: Mapping[str, ArmEffect]
    assignment: Assignment
    source: str = field(default="", compare=False)
    parameters: Mapping[str, ParameterTag] = field(default_factory=dict, compare=False)

    @property
    def treatment_arms(self) -> tuple[str, ...]:
        """The non-control arms, in scenario order."""
        return tuple(arm for arm in self.arms if arm != self.control)

    def check_catalog(self, arms, control: str, *, catalog: str = "the intervention catalog"):
        """Raise :class:`InputError` unless every arm is one of the catalog's ``arms`` and the
        control is the catalog's ``control``: a cohort with other arms breaks the data contract,
        and would only be refused once simulated (by ``validate``, or before training)."""
        arms = tuple(arms)
        problems = []
        unknown = [arm for arm in self.arms if arm not in arms]
        if unknown:
            problems.append(
                f"field 'arms' names {', '.join(map(repr, unknown))}, which {catalog} does not "
                f"offer; accepted: the catalog's arms ({', '.join(arms)})"
            )
        if self.control != control:
            problems.append(
                f"field 'control' is {self.control!r}; accepted: the catalog's control arm "
                f"{control!r}"
            )
        if problems:
            raise InputError(f"scenario {self.source}: " + "; ".join(problems), problems=problems)


def scenario_names() -> list[str]:
    """Names of the scenario files in ``configs/scenarios``."""
    from recommender.paths import config_path

    folder = config_path("scenarios")
    return sorted(path.stem for path in folder.glob("*.yaml")) if folder.is_dir() else []


def load_scenario(name_or_path: str | Path | Mapping) -> Scenario:
    """Read and check a scenario.

    Parameters
    ----------
    name_or_path : str, Path or Mapping
        A scenario name (``"default"``, ``"homogeneous"``, ``"null"``, ``"conservative"``,
        ``"local"``: resolved to ``configs/scenarios/<name>.yaml``), a path to a YAML file, or an
        already-parsed mapping.

    Returns
    -------
    Scenario

    Raises
    ------
    InputError
        Unknown name, unreadable file, or any malformed field (all reported at once, each with
        its field path, the value found and what is accepted).

    Examples
    --------
    >>> scenario = load_scenario("default")
    >>> scenario.control, scenario.treatment_arms[0]
    ('none', 'coaching')
    """
    raw, source = _read_raw(name_or_path, seen=())
    from recommender.simulate._scenario_reader import read_scenario

    return read_scenario(raw, source)


def _read_raw(
    name_or_path, *, seen: tuple[str, ...], beside: Path | None = None
) -> tuple[dict, str]:
    from recommender.config_file import read_config

    folder = None  # the extending file's, against which a relative parent path is read
    if isinstance(name_or_path, Mapping):
        raw, source = dict(name_or_path), str(name_or_path.get("name", "<mapping>"))
    else:
        path = _resolve(name_or_path, beside=beside)
        source, folder = str(path), path.parent
        # Compared resolved: "./b.yaml" and "../x/b.yaml" may name one file.
        if str(path.resolve()) in seen:
            raise InputError(f"scenario {source}: 'extends' forms a cycle through {list(seen)}")
        seen = (*seen, str(path.resolve()))
        raw = read_config(path, what="scenario")
    has_parent, parent = "extends" in raw, raw.pop("extends", None)
    if has_parent and (not isinstance(parent, str) or not parent):
        raise InputError(
            f"scenario {source}: field 'extends' must be a scenario name or a path, got "
            f'{parent!r} (YAML reads a bare null as no value: write "null" in quotes)'
        )
    if has_parent:
        base, _ = _read_raw(parent, seen=seen, beside=folder)
        raw = _merge(base, raw)
    return raw, source


def _resolve(name_or_path, *, beside: Path | None = None) -> Path:
    """The file a scenario name or path names; ``beside``: the folder of the scenario file
    whose ``extends`` it is, where a relative path is looked for first."""
    from recommender.paths import config_path

    text = str(name_or_path)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.parent != Path("."):
        tried = [path]
        if beside is not None and not path.is_absolute():
            tried.insert(0, beside / path)
        for candidate in tried:
            if candidate.is_dir():
                raise InputError(
                    f"scenario file {str(candidate)!r} is a folder; accepted: a .yaml file"
                )
            if candidate.is_file():
                return candidate
        if len(tried) == 1:
            raise InputError(f"scenario file {text!r} does not exist")
        raise InputError(
            f"'extends: {text}' names no file: neither {str(tried[0])!r} (beside the scenario "
            f"extending it) nor {str(path.absolute())!r} (in the working folder) exists; "
            "accepted: a scenario name or a path to a .yaml file"
        )
    candidate = config_path(f"scenarios/{text}.yaml")
    if not candidate.is_file():
        known = ", ".join(scenario_names()) or "none found"
        raise InputError(
            f"unknown scenario {text!r}: accepted are the names in {candidate.parent} "
            f"({known}) or a path to a .yaml file"
        )
    return candidate


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        tagged = isinstance(value, dict) and "value" in value
        if not tagged and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
