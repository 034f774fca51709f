"""Checks a raw scenario mapping section by section and builds the :class:`Scenario` tree.

Every problem is recorded with its field path, the value and what is accepted, and all of them
are raised at once as one :class:`~recommender.errors.InputError`. The checks of one field
(tags, numbers, shares, scores) are :class:`._scenario_fields.FieldReader`'s; every parameter
must carry a tag (``source:`` a study, or ``assumption:`` a reason); see
:mod:`recommender.simulate._scenario`.
"""

from __future__ import annotations

from recommender.cohort import PRACTICE_START_AGE
from recommender.errors import InputError
from recommender.simulate._scenario import (
    CAREER_STAGES,
    GENDERS,
    ROLES,
    SETTINGS,
    SPECIALTIES,
    ArmEffect,
    Assignment,
    Baseline,
    Course,
    EffectModifiers,
    Observational,
    Population,
    Scenario,
)
from recommender.simulate._scenario_fields import FieldReader, _frozen

__all__ = ["read_scenario"]


def read_scenario(raw: dict, source: str) -> Scenario:
    """Check ``raw`` (parsed YAML, ``extends`` already merged) and build the scenario."""
    return _Reader(source).scenario(raw)


class _Reader(FieldReader):
    """Walks the raw YAML section by section into the :class:`Scenario` tree."""

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
                "description": lambda v, p: (
                    v if isinstance(v, str) else self.problem(p, f"must be text, got {v!r}")
                ),
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
        # Without a valid arm list every arm-keyed table would be reported wrong, burying the
        # one problem under dozens; they are checked once 'arms' is readable.
        effects, assignment = {}, None
        if arms is not None:
            effects = self.effects(top["effects"], treatment, roles)
            assignment = self.assignment(top["assignment"], arms, control, treatment, roles)
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
        # The oracle columns are true_effect_<arm> (EE) and true_effect_dp_<arm> / _pa_<arm>:
        # arms 'x' and 'dp_x' would write two columns of one name, one silently lost.
        clashes = [a for a in value for b in value if a in (f"dp_{b}", f"pa_{b}")]
        if clashes:
            return self.problem(
                path,
                f"arm {clashes[0]!r} would share its oracle column true_effect_{clashes[0]} with "
                f"arm {clashes[0][3:]!r}'s {clashes[0][:2].upper()} effect; rename one of them",
            )
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
                        v,
                        p,
                        roles,
                        self.distribution({"mean": (18, 90), "sd": (0, 30), "min": (0, 90)}),
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
        # A mean outside the clipping bounds would put everyone on a bound, silently.
        for role, hours in values["weekly_hours"].items():
            if None in hours.values():
                continue
            if hours["min"] > hours["max"]:
                self.problem(
                    f"{path}.weekly_hours.{role}", f"min {hours['min']} exceeds max {hours['max']}"
                )
            elif not hours["min"] <= hours["mean"] <= hours["max"]:
                self.problem(
                    f"{path}.weekly_hours.{role}.mean",
                    f"must lie within min and max [{hours['min']}, {hours['max']}], "
                    f"got {hours['mean']}",
                )
        for role, years in values["years_in_practice"].items():
            if None not in years.values() and years["mean"] > years["max"]:
                self.problem(
                    f"{path}.years_in_practice.{role}.mean",
                    f"must not exceed max ({years['max']}), got {years['mean']}",
                )
        for role, entry in values["age_at_entry"].items():
            if None in entry.values():
                continue
            # Ages are whole years, so a person's age may round up to half a year below
            # entry + years: a minimum of PRACTICE_START_AGE + 1 keeps everyone inside the
            # data contract's rule on years_in_practice.
            if entry["min"] < PRACTICE_START_AGE + 1:
                self.problem(
                    f"{path}.age_at_entry.{role}.min",
                    f"must be at least {PRACTICE_START_AGE + 1}, got {entry['min']:g}: the data "
                    f"contract refuses practice begun before age {PRACTICE_START_AGE}, and an age "
                    "is rounded to whole years",
                )
            elif entry["min"] > entry["mean"]:
                self.problem(
                    f"{path}.age_at_entry.{role}.min",
                    f"must not exceed mean ({entry['mean']:g}), got {entry['min']:g}",
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
        if scores is None:
            return None
        negative = {k: v for k, v in vars(scores).items() if v < 0}
        for score, number in negative.items():
            self.problem(f"{path}.{score}", f"must be >= 0, got {number:g}")
        return None if negative else scores

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
