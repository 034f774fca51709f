"""Checks a raw scenario mapping field by field and builds the :class:`Scenario` tree.

Every problem is recorded with its field path, the value and what is accepted, and all of them
are raised at once as one :class:`~recommender.errors.InputError`. Every parameter must carry a
tag (``source:`` a study, or ``assumption:`` a reason); see :mod:`recommender.simulate._scenario`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from recommender.errors import InputError
from recommender.simulate._scenario import (
    CAREER_STAGES,
    GENDERS,
    ROLES,
    SCORES,
    SETTINGS,
    SPECIALTIES,
    ArmEffect,
    Assignment,
    Baseline,
    Correlations,
    Course,
    EffectModifiers,
    Observational,
    ParameterTag,
    Population,
    Scenario,
    Scores,
)

__all__ = ["read_scenario"]

_SHARE_SLACK = 1e-3  # shares written with two decimals may miss 1 by rounding
_TAG_KEYS = ("value", "source", "assumption", "note")
# "Dyrbye 2019", "Hoff & Lee 2021", "Maslach and Jackson 1981", "West et al. 2016": how the
# catalog names a study. A source must name one; an assumption must name none.
_CITATION = re.compile(
    r"\b[A-Z][A-Za-z'\-]+(?:,? (?:&|and) [A-Z][A-Za-z'\-]+| et al\.?)? (?:19|20)\d\d\b"
)
_UNTAGGED = object()


def read_scenario(raw: dict, source: str) -> Scenario:
    """Check ``raw`` (parsed YAML, ``extends`` already merged) and build the scenario."""
    return _Reader(source).scenario(raw)


def _frozen(mapping: dict) -> Mapping:
    return MappingProxyType(dict(mapping))


def _has_tag(node) -> bool:
    if not isinstance(node, dict):
        return False
    return "value" in node or any(_has_tag(child) for child in node.values())


class _Reader:
    """Walks the raw YAML, recording every problem with its field path."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[str] = []
        self.tags: dict[str, ParameterTag] = {}

    # -- primitives ----------------------------------------------------------------------
    def problem(self, path: str, message: str):
        self.problems.append(f"field '{path}' {message}")
        return None

    # -- tags ----------------------------------------------------------------------------
    def param(self, reader):
        """Reader for a parameter: strip its tags (refusing an untagged one), then read it."""

        def read(node, path):
            plain = self.untag(node, path)
            return None if plain is _UNTAGGED else reader(plain, path)

        return read

    def untag(self, node, path: str):
        if isinstance(node, dict) and "value" in node:
            return self.tag(node, path)
        if isinstance(node, dict) and node and _has_tag(node):
            plain, complete = {}, True
            for key, child in node.items():
                plain[key] = self.untag(child, f"{path}.{key}")
                complete = complete and plain[key] is not _UNTAGGED
            return plain if complete else _UNTAGGED
        self.problem(
            path,
            "has no tag: write it as {value: ..., source: <a study, e.g. 'Dyrbye 2019'>} or "
            "{value: ..., assumption: <a one-line reason>}",
        )
        return _UNTAGGED

    def tag(self, node: dict, path: str):
        for key in node:
            if key not in _TAG_KEYS:
                self.problem(
                    f"{path}.{key}",
                    f"is not an accepted key of a tagged parameter; accepted: {', '.join(_TAG_KEYS)}",
                )
        kinds = [kind for kind in ("source", "assumption") if kind in node]
        if len(kinds) != 1:
            self.problem(
                path, "needs exactly one of 'source:' (a study) or 'assumption:' (a reason)"
            )
            return _UNTAGGED
        kind, text, note = kinds[0], node[kinds[0]], node.get("note", "")
        if not isinstance(text, str) or not text.strip() or "\n" in text.strip():
            self.problem(f"{path}.{kind}", f"must be one line of text, got {text!r}")
            return _UNTAGGED
        if not isinstance(note, str) or (note and kind != "source"):
            self.problem(f"{path}.note", "is one line of text, and only beside a 'source:'")
        cited = _CITATION.search(text)
        if kind == "source" and cited is None:
            self.problem(
                f"{path}.source",
                f"must name a study as 'Author Year' (e.g. 'Dyrbye 2019'), got {text!r}",
            )
        if kind == "assumption" and cited is not None:
            self.problem(
                f"{path}.assumption",
                f"names a study ({cited.group(0)!r}): an assumption never carries a study's "
                "name; tag the figure with 'source:' if it comes from the study",
            )
        self.tags[path] = ParameterTag(path, kind, text.strip(), str(note).strip(), node["value"])
        return node["value"]

    def mapping(self, node, path: str) -> dict | None:
        if not isinstance(node, dict):
            return self.problem(path, f"must be a mapping, got {node!r}")
        return node

    def number(
        self, value, path: str, *, lo=-math.inf, hi=math.inf, strict_lo=False
    ) -> float | None:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            return self.problem(path, f"must be a finite number, got {value!r}")
        low_bad = value <= lo if strict_lo else value < lo
        if low_bad or value > hi:
            bracket = "(" if strict_lo else "["
            return self.problem(path, f"must be in {bracket}{lo}, {hi}], got {value!r}")
        return float(value)

    def keyed(self, node, path: str, allowed, reader, *, required=()) -> dict | None:
        node = self.mapping(node, path)
        if node is None:
            return None
        out = {}
        for key, value in node.items():
            if key not in allowed:
                self.problem(
                    f"{path}.{key}", f"is not an accepted key; accepted: {', '.join(allowed)}"
                )
                continue
            out[key] = reader(value, f"{path}.{key}")
        for key in required:
            if key not in node:
                self.problem(f"{path}.{key}", "is missing")
        return out

    def shares(self, node, path: str, allowed) -> dict | None:
        values = self.keyed(node, path, allowed, lambda v, p: self.number(v, p, lo=0.0))
        if values is None or any(v is None for v in values.values()):
            return None
        total = sum(values.values())
        if not values or abs(total - 1.0) > _SHARE_SLACK:
            return self.problem(path, f"shares must sum to 1, they sum to {total:.4g}")
        return {key: value / total for key, value in values.items()}

    def scores(self, node, path: str) -> Scores | None:
        values = self.keyed(node, path, SCORES, lambda v, p: self.number(v, p), required=SCORES)
        if values is None or len(values) < 3 or any(v is None for v in values.values()):
            return None
        return Scores(**values)

    def correlations(self, node, path: str) -> Correlations | None:
        keys = ("ee_dp", "ee_pa", "dp_pa")
        values = self.keyed(
            node, path, keys, lambda v, p: self.number(v, p, lo=-0.99, hi=0.99), required=keys
        )
        if values is None or len(values) < 3 or any(v is None for v in values.values()):
            return None
        result = Correlations(**values)
        if np.linalg.eigvalsh(result.matrix()).min() <= 0:
            return self.problem(
                path, f"is not a valid correlation matrix (not positive definite): {values}"
            )
        return result

    def fields(
        self, node, path: str, spec: dict, *, optional: Mapping = MappingProxyType({})
    ) -> dict | None:
        """A mapping with exactly the keys of ``spec`` (key -> reader); ``optional`` gives defaults."""
        node = self.mapping(node, path or "<top level>")
        if node is None:
            return None
        for key in node:
            if key not in spec:
                self.problem(
                    f"{path}.{key}".lstrip("."),
                    f"is not an accepted field; accepted: {', '.join(spec)}",
                )
        out = {}
        for key, reader in spec.items():
            sub = f"{path}.{key}".lstrip(".")
            if key in node:
                out[key] = reader(node[key], sub)
            elif key in optional:
                out[key] = optional[key]
            else:
                out[key] = self.problem(sub, "is missing")
        return out

    def distribution(self, keys: dict):
        """Reader for {mean, sd, ...} with per-key bounds."""

        def read(node, path):
            return self.fields(
                node,
                path,
                {
                    k: (lambda v, p, b=b: self.number(v, p, lo=b[0], hi=b[1]))
                    for k, b in keys.items()
                },
            )

        return read

    # -- the tree ------------------------------------------------------------------------
    def scenario(self, raw: dict) -> Scenario:
        top = self.fields(
            raw,
            "",
            {
                "name": lambda v, p: (
                    v
                    if isinstance(v, str) and v
                    else self.problem(p, f"must be a non-empty string, got {v!r}")
                ),
                "description": lambda v, p: str(v),
                "control": lambda v, p: (
                    v
                    if isinstance(v, str) and v
                    else self.problem(p, f"must be an arm name, got {v!r}")
                ),
                "arms": self.arm_list,
                "followup_months": self.param(lambda v, p: self.number(v, p, lo=0, strict_lo=True)),
                "population": lambda v, p: v,
                "baseline": lambda v, p: v,
                "course": lambda v, p: v,
                "effect_modifiers": lambda v, p: v,
                "effects": lambda v, p: v,
                "assignment": lambda v, p: v,
            },
            optional={"description": ""},
        )
        if top is None:
            raise InputError(
                f"scenario {self.source} is malformed: " + "; ".join(self.problems),
                problems=list(self.problems),
            )
        arms, control = top["arms"], top["control"]
        if arms is not None and control is not None and control not in arms:
            self.problem("control", f"must be one of arms {arms}, got {control!r}")
        population = self.population(top["population"])
        roles = tuple(population.roles) if population else ROLES
        baseline = self.baseline(top["baseline"], roles)
        course = self.course(top["course"], roles)
        modifiers = self.modifiers(top["effect_modifiers"])
        treatment = tuple(a for a in (arms or ()) if a != control)
        effects = self.effects(top["effects"], treatment, roles)
        assignment = self.assignment(top["assignment"], arms or (), control, treatment, roles)
        if self.problems:
            raise InputError(
                f"scenario {self.source} is malformed: " + "; ".join(self.problems),
                problems=list(self.problems),
            )
        return Scenario(
            name=top["name"],
            description=top["description"],
            control=control,
            arms=arms,
            followup_months=top["followup_months"],
            population=population,
            baseline=baseline,
            course=course,
            effect_modifiers=modifiers,
            effects=_frozen(effects),
            assignment=assignment,
            source=self.source,
            parameters=_frozen(self.tags),
        )

    def arm_list(self, value, path):
        if (
            not isinstance(value, list)
            or len(value) < 2
            or not all(isinstance(a, str) and a for a in value)
        ):
            return self.problem(path, f"must be a list of at least two arm names, got {value!r}")
        if len(set(value)) != len(value):
            return self.problem(path, f"must not repeat an arm, got {value!r}")
        return tuple(value)

    def per_role(self, node, path, roles, reader):
        table = self.keyed(node, path, ROLES, reader, required=roles)
        return _frozen(table) if table is not None else None

    def population(self, node) -> Population | None:
        path = "population"
        raw_roles = node.get("roles") if isinstance(node, dict) else None
        roles_shares = (
            self.param(lambda v, p: self.shares(v, p, ROLES))(raw_roles, f"{path}.roles")
            if raw_roles is not None
            else None
        )
        roles = tuple(r for r, s in (roles_shares or {}).items()) or ROLES
        values = self.fields(
            node,
            path,
            {
                "roles": lambda v, p: roles_shares,
                "gender": self.param(
                    lambda v, p: self.per_role(
                        v, p, roles, lambda x, q: _frozen(self.shares(x, q, GENDERS) or {})
                    )
                ),
                "years_in_practice": self.param(
                    lambda v, p: self.per_role(
                        v,
                        p,
                        roles,
                        self.distribution({"mean": (0, 60), "sd": (0, 60), "max": (0, 60)}),
                    )
                ),
                "age_at_entry": self.param(
                    lambda v, p: self.per_role(
                        v, p, roles, self.distribution({"mean": (18, 90), "sd": (0, 30)})
                    )
                ),
                "specialty": self.param(
                    lambda v, p: self.per_role(
                        v, p, roles, lambda x, q: _frozen(self.shares(x, q, SPECIALTIES) or {})
                    )
                ),
                "setting": self.param(lambda v, p: self.shares(v, p, SETTINGS)),
                "weekly_hours": self.param(
                    lambda v, p: self.per_role(
                        v,
                        p,
                        roles,
                        self.distribution(
                            {"mean": (0, 120), "sd": (0, 60), "min": (0, 120), "max": (0, 120)}
                        ),
                    )
                ),
            },
        )
        if values is None or any(v is None for v in values.values()):
            return None
        for role, hours in values["weekly_hours"].items():
            if None not in hours.values() and hours["min"] > hours["max"]:
                self.problem(
                    f"{path}.weekly_hours.{role}", f"min {hours['min']} exceeds max {hours['max']}"
                )
        values["roles"] = _frozen(values["roles"])
        values["setting"] = _frozen(values["setting"])
        for key in ("years_in_practice", "age_at_entry", "weekly_hours"):
            values[key] = _frozen({role: _frozen(d) for role, d in values[key].items()})
        return Population(**values)

    def score_table(self, keys, required):
        return self.param(lambda v, p: self.keyed(v, p, keys, self.scores, required=required))

    def baseline(self, node, roles) -> Baseline | None:
        values = self.fields(
            node,
            "baseline",
            {
                "role_means": self.score_table(ROLES, roles),
                "gender_shift": self.score_table(GENDERS, GENDERS),
                "hours_slope": self.param(self.scores),
                "specialty_shift": self.score_table(SPECIALTIES, SPECIALTIES),
                "setting_shift": self.score_table(SETTINGS, SETTINGS),
                "sd": self.param(self.positive_scores),
                "correlation": self.param(self.correlations),
            },
        )
        return self.build(
            Baseline,
            values,
            tables=("role_means", "gender_shift", "specialty_shift", "setting_shift"),
        )

    def positive_scores(self, node, path):
        scores = self.scores(node, path)
        if scores is not None and min(scores.ee, scores.dp, scores.pa) < 0:
            return self.problem(path, f"SDs must be >= 0, got {scores}")
        return scores

    def course(self, node, roles) -> Course | None:
        values = self.fields(
            node,
            "course",
            {
                "drift": self.score_table(ROLES, roles),
                "regression_to_mean": self.param(lambda v, p: self.number(v, p, lo=0.0, hi=1.0)),
                "noise_sd": self.param(self.positive_scores),
                "noise_correlation": self.param(self.correlations),
            },
        )
        return self.build(Course, values, tables=("drift",))

    def modifiers(self, node) -> EffectModifiers | None:
        values = self.fields(
            node,
            "effect_modifiers",
            {
                "early_career_below": self.param(lambda v, p: self.number(v, p, lo=0, hi=60)),
                "late_career_above": self.param(lambda v, p: self.number(v, p, lo=0, hi=60)),
                "severity_reference": self.param(self.scores),
                "severity_scale": self.param(self.positive_scores),
                "severity_floor": self.param(lambda v, p: self.number(v, p, lo=0.0)),
                "severity_cap": self.param(lambda v, p: self.number(v, p, lo=0.0)),
                "hours_threshold": self.param(lambda v, p: self.number(v, p, lo=0, hi=120)),
                "time_floor": self.param(lambda v, p: self.number(v, p, lo=0.0, hi=1.0)),
                "effect_bound": self.param(self.positive_scores),
            },
        )
        result = self.build(EffectModifiers, values)
        if result is not None:
            if (
                min(result.severity_scale.ee, result.severity_scale.dp, result.severity_scale.pa)
                <= 0
            ):
                self.problem("effect_modifiers.severity_scale", "must be > 0 for every subscale")
            if result.severity_floor > result.severity_cap:
                self.problem("effect_modifiers.severity_floor", "must not exceed severity_cap")
        return result

    def effects(self, node, treatment, roles) -> dict:
        node = self.mapping(node, "effects")
        if node is None:
            return {}
        out = {}
        for arm in node:
            if arm not in treatment:
                self.problem(
                    f"effects.{arm}",
                    f"is not a treatment arm of this scenario ({', '.join(treatment)})",
                )
        for arm in treatment:
            path = f"effects.{arm}"
            if arm not in node:
                self.problem(path, "is missing: every non-control arm needs an effect")
                continue
            values = self.fields(
                node[arm],
                path,
                {
                    "by_role": self.score_table(ROLES, roles),
                    "career": self.param(
                        lambda v, p: self.keyed(
                            v,
                            p,
                            CAREER_STAGES,
                            lambda x, q: self.number(x, q, lo=0.0),
                            required=CAREER_STAGES,
                        )
                    ),
                    "severity_slope": self.param(lambda v, p: self.number(v, p, lo=0.0)),
                    "time_demand": self.param(lambda v, p: self.number(v, p, lo=0.0)),
                },
            )
            out[arm] = self.build(ArmEffect, values, tables=("by_role", "career"))
        return out

    def assignment(self, node, arms, control, treatment, roles) -> Assignment | None:
        path = "assignment"
        node = self.mapping(node, path)
        if node is None:
            return None

        def rct(value, p):
            if value == "equal":
                return _frozen({arm: 1.0 / len(arms) for arm in arms}) if arms else None
            shares = self.shares(value, p, arms)
            return _frozen(shares) if shares is not None else None

        @self.param
        def per_arm(v, p):
            return self.keyed(v, p, treatment, lambda x, q: self.number(x, q))

        def observational(value, p):
            values = self.fields(
                value,
                p,
                {
                    "strength": self.param(lambda v, q: self.number(v, q, lo=0.0)),
                    "overlap_floor": self.param(
                        lambda v, q: self.number(v, q, lo=0.0, hi=1.0 / max(len(arms), 1))
                    ),
                    "intercept": per_arm,
                    "role": self.param(
                        lambda v, q: self.keyed(
                            v,
                            q,
                            treatment,
                            lambda x, r: self.keyed(x, r, ROLES, lambda y, s: self.number(y, s)),
                        )
                    ),
                    "severity": per_arm,
                    "hours": per_arm,
                },
            )
            if values is None or any(v is None for v in values.values()):
                return None
            values["role"] = _frozen({a: _frozen(t) for a, t in values["role"].items()})
            for key in ("intercept", "severity", "hours"):
                values[key] = _frozen(values[key])
            return Observational(**values)

        values = self.fields(
            node, path, {"rct_shares": self.param(rct), "observational": observational}
        )
        return self.build(Assignment, values)

    def build(self, cls, values, *, tables=()):
        if values is None or any(v is None for v in values.values()):
            return None
        for key in tables:
            if any(v is None for v in values[key].values()):
                return None
            values[key] = _frozen(values[key])
        return cls(**values)
