"""Safety triage: who gets crisis resources only, who gets a confidential referral as well.

Triage runs before any ranking. A crisis flag means the person needs help now, not a wellness
program, so no intervention is ranked at all; a severe profile still gets the ranking, with a
confidential-referral notice beside it. Thresholds and wording come from ``configs/serve.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from recommender.cohort import CRISIS_COLUMN
from recommender.errors import InputError
from recommender.policy._ranking import JUDGEMENT_COLUMNS

__all__ = [
    "CRISIS_COLUMN",
    "CrisisResource",
    "Referral",
    "SafetyRules",
    "Triage",
    "crisis_flag",
    "crisis_flags",
    "triage",
    "triage_table",
]

_SCORES = ("ee", "dp", "pa")
_BOUNDS = ("at_least", "at_most")

CRISIS = "crisis"
REFERRAL = "referral"
ROUTINE = "routine"


@dataclass(frozen=True)
class CrisisResource:
    """Where a person in crisis can get help now, whom it serves and when it is open.

    ``serves`` holds the roles it serves (the data contract's ``role`` values), or is None for
    a resource open to everyone; ``audience``, ``hours`` and ``confidentiality`` are shown as
    written in ``serve.yaml``, where each is checked against the resource's own pages.
    """

    name: str
    contact: str
    url: str | None = None
    serves: frozenset[str] | None = None
    audience: str = "everyone"
    hours: str | None = None
    confidentiality: str | None = None

    def serves_role(self, role) -> bool:
        """Does this resource serve ``role``? (An unknown role: yes; see
        :meth:`SafetyRules.resources_for`.)"""
        return self.serves is None or role is None or role in self.serves


@dataclass(frozen=True)
class Referral:
    """Where a severe profile of one role is referred, and what confidentiality it has."""

    to: str
    confidentiality: str


@dataclass(frozen=True)
class SafetyRules:
    """Referral thresholds and the texts shown with them.

    Parameters
    ----------
    referral_rules : tuple of tuple
        Each rule is a tuple of ``(score, bound, value)`` with score in ``ee``, ``dp``, ``pa``
        and bound ``"at_least"`` or ``"at_most"``; a rule holds when all its bounds hold, and a
        profile needs a referral when any rule holds.
    referral_notice, crisis_notice : str
        Texts shown to the program.
    crisis_resources : tuple of CrisisResource
    referrals : mapping of role to Referral
        Where each role is referred (empty: the notice alone).
    """

    referral_rules: tuple[tuple[tuple[str, str, float], ...], ...]
    referral_notice: str
    crisis_notice: str
    crisis_resources: tuple[CrisisResource, ...]
    referrals: Mapping[str, Referral] = field(default_factory=dict)

    def resources_for(self, role) -> tuple[CrisisResource, ...]:
        """The crisis resources that serve ``role`` (every resource when the role is unknown:
        each says whom it serves, and withholding one could leave a person without help)."""
        return tuple(r for r in self.crisis_resources if r.serves_role(role))

    @classmethod
    def from_config(cls, safety: Mapping, *, where: str = "safety") -> SafetyRules:
        """Read the ``safety`` section of ``serve.yaml``; every mistake names its entry.

        Examples
        --------
        >>> rules = SafetyRules.from_config({
        ...     "referral_rules": [{"ee_at_least": 40, "dp_at_least": 15}],
        ...     "referral_notice": "see someone", "crisis_notice": "call now",
        ...     "crisis_resources": [{"name": "988 Lifeline", "contact": "988"}]})
        >>> rules.referral_rules
        ((('ee', 'at_least', 40.0), ('dp', 'at_least', 15.0)),)
        """
        if not isinstance(safety, Mapping):
            raise InputError(f"{where}: expected a mapping, got {safety!r}")
        known = {
            "referral_rules",
            "referral_notice",
            "crisis_notice",
            "crisis_resources",
            "referrals",
        }
        unknown = sorted(set(safety) - known)
        if unknown:
            raise InputError(f"{where}: unknown key(s) {unknown}; accepted: {sorted(known)}")
        rules = []
        for i, rule in enumerate(safety.get("referral_rules") or []):
            rules.append(_parse_rule(rule, f"{where}.referral_rules[{i}]"))
        resources = [
            _parse_resource(item, f"{where}.crisis_resources[{i}]")
            for i, item in enumerate(safety.get("crisis_resources") or [])
        ]
        if not resources:
            # A crisis answer without anywhere to turn would be worse than no service.
            raise InputError(f"{where}.crisis_resources: at least one resource is required")
        if not any(r.serves is None for r in resources):
            # Every person, whatever their role, must get somewhere to turn.
            raise InputError(
                f"{where}.crisis_resources: at least one resource must serve "
                "everyone (leave out 'serves')"
            )
        texts = {}
        for key in ("referral_notice", "crisis_notice"):
            value = safety.get(key)
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"{where}.{key}: {value!r} is not accepted; give a non-empty text")
            texts[key] = " ".join(value.split())
        referrals = _parse_referrals(safety.get("referrals") or {}, f"{where}.referrals")
        return cls(
            referral_rules=tuple(rules),
            crisis_resources=tuple(resources),
            referrals=referrals,
            **texts,
        )


def _roles() -> tuple[str, ...]:
    from recommender.cohort import CATEGORIES

    return tuple(CATEGORIES["role"])


def _text(value, spot: str, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{spot}: {value!r} is not accepted; give a non-empty text")
    return " ".join(value.split())


_RESOURCE_KEYS = ("name", "contact", "url", "serves", "audience", "hours", "confidentiality")


def _parse_resource(item, spot: str) -> CrisisResource:
    if not isinstance(item, Mapping) or not item.get("name") or not item.get("contact"):
        raise InputError(
            f"{spot}: {item!r} is not accepted; each resource needs a non-empty 'name' "
            f"and 'contact' (and optionally {', '.join(_RESOURCE_KEYS[2:])})"
        )
    extra = sorted(set(item) - set(_RESOURCE_KEYS))
    if extra:
        raise InputError(f"{spot}: unknown key(s) {extra}; accepted: {', '.join(_RESOURCE_KEYS)}")
    serves = item.get("serves")
    if serves is not None:
        roles = _roles()
        if (
            not isinstance(serves, (list, tuple))
            or not serves
            or any(role not in roles for role in serves)
        ):
            raise InputError(
                f"{spot}.serves: {serves!r} is not accepted; give a list of roles "
                f"from {', '.join(roles)} (leave it out for everyone)"
            )
        serves = frozenset(serves)
    audience = _text(item.get("audience"), f"{spot}.audience", required=serves is not None)
    return CrisisResource(
        name=str(item["name"]),
        contact=str(item["contact"]),
        url=None if item.get("url") is None else str(item["url"]),
        serves=serves,
        audience=audience or "everyone",
        hours=_text(item.get("hours"), f"{spot}.hours", required=False),
        confidentiality=_text(
            item.get("confidentiality"), f"{spot}.confidentiality", required=False
        ),
    )


def _parse_referrals(referrals, spot: str) -> dict[str, Referral]:
    roles = _roles()
    if not isinstance(referrals, Mapping):
        raise InputError(
            f"{spot}: {referrals!r} is not accepted; map roles ({', '.join(roles)}) "
            "to {to: ..., confidentiality: ...}"
        )
    out = {}
    for role, entry in referrals.items():
        if role not in roles:
            raise InputError(f"{spot}: unknown role {role!r}; accepted: {', '.join(roles)}")
        if not isinstance(entry, Mapping) or set(entry) != {"to", "confidentiality"}:
            raise InputError(
                f"{spot}.{role}: {entry!r} is not accepted; give "
                "{to: <where to refer>, confidentiality: <what it keeps private>}"
            )
        out[role] = Referral(
            _text(entry["to"], f"{spot}.{role}.to", required=True),
            _text(entry["confidentiality"], f"{spot}.{role}.confidentiality", required=True),
        )
    missing = [role for role in roles if role not in out]
    if out and missing:
        # A role left out by an edit would have its severe profiles given the notice alone,
        # while the others are told where their role is referred.
        raise InputError(
            f"{spot}: no referral for {', '.join(missing)}; accepted: one for every role "
            f"({', '.join(roles)}), or no referrals at all for the notice alone"
        )
    return out


def _parse_rule(rule, spot: str) -> tuple[tuple[str, str, float], ...]:
    accepted = [f"{s}_{b}" for s in _SCORES for b in _BOUNDS]
    if not isinstance(rule, Mapping) or not rule:
        raise InputError(
            f"{spot}: {rule!r} is not accepted; a rule maps one or more of {accepted} to a number"
        )
    bounds = []
    for key, value in rule.items():
        if key not in accepted:
            raise InputError(f"{spot}: unknown bound {key!r}; accepted: {accepted}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise InputError(f"{spot}.{key}: {value!r} is not accepted; give a number")
        score, bound = key.split("_", 1)
        bounds.append((score, bound, float(value)))
    return tuple(bounds)


@dataclass(frozen=True)
class Triage:
    """The safety decision for one profile.

    ``level`` is ``"crisis"`` (resources only, no ranking), ``"referral"`` (ranking plus a
    confidential-referral notice) or ``"routine"``. ``resources`` are those that serve the
    person's role; ``referral`` says where a severe profile of that role is referred.
    """

    level: str
    notice: str | None
    resources: tuple[CrisisResource, ...]
    matched_rule: str | None = None
    referral: Referral | None = None

    @property
    def rank_interventions(self) -> bool:
        """Whether an intervention ranking may be shown at all."""
        return self.level != CRISIS

    def summary(self) -> str:
        """The decision in one line of text, for a file's ``referral`` column ('' if routine)."""
        if self.level == CRISIS:
            places = "; ".join(
                f"{r.name}: {r.contact}" + (f" ({r.hours})" if r.hours else "")
                for r in self.resources
            )
            return f"CRISIS: {self.notice} {places}"
        if self.level == REFERRAL:
            where = (
                f" Refer to: {self.referral.to} Confidentiality: {self.referral.confidentiality}"
                if self.referral
                else ""
            )
            return f"{self.notice}{where}"
        return ""


def _rule_text(rule) -> str:
    words = {"at_least": ">=", "at_most": "<="}
    return " and ".join(f"{score.upper()} {words[bound]} {value:g}" for score, bound, value in rule)


def _rule_holds(rule, scores: Mapping) -> bool:
    for score, bound, value in rule:
        x = float(scores[score])
        if (bound == "at_least" and not x >= value) or (bound == "at_most" and not x <= value):
            return False
    return True


def triage(profile: Mapping, rules: SafetyRules, *, crisis_risk: bool = False) -> Triage:
    """Decide the safety level of one profile.

    Parameters
    ----------
    profile : mapping
        Holds ``ee``, ``dp`` and ``pa`` (validated upstream) and, when known, ``role``. A
        crisis flag needs none of them: its answer depends on nothing else (a missing role
        gets every resource, each saying whom it serves).
    rules : SafetyRules
    crisis_risk : bool
        The program's flag that the person may be at risk of self-harm.

    Examples
    --------
    >>> rules = SafetyRules.from_config({
    ...     "referral_rules": [{"ee_at_least": 40, "dp_at_least": 15}],
    ...     "referral_notice": "see someone", "crisis_notice": "call now",
    ...     "crisis_resources": [{"name": "988 Lifeline", "contact": "988"}]})
    >>> triage({"ee": 45, "dp": 20, "pa": 30}, rules).level
    'referral'
    >>> triage({}, rules, crisis_risk=True).level
    'crisis'
    """
    role = profile.get("role") if isinstance(profile, Mapping) else None
    if crisis_risk:
        return Triage(CRISIS, rules.crisis_notice, rules.resources_for(role))
    for rule in rules.referral_rules:
        if _rule_holds(rule, profile):
            return Triage(
                REFERRAL,
                rules.referral_notice,
                (),
                matched_rule=_rule_text(rule),
                referral=rules.referrals.get(role),
            )
    return Triage(ROUTINE, None, ())


# -- files: the optional crisis_risk column and the safety columns ------------------------------

# The texts a crisis flag may be sent as, any case, spaces around trimmed: the ones pydantic
# reads as a bool, so the service's requests and the files read a flag alike.
# 1.0 and 0.0: pandas writes a 0/1 column holding a missing value so (a float column).
_TRUE = frozenset({"true", "t", "yes", "y", "on", "1", "1.0"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0", "0.0", ""})
_LISTED = 20


def crisis_flag(value) -> bool | None:
    """One ``crisis_risk`` value as a flag: True, False, or None when it cannot be read.

    Booleans, 0/1 and the texts true/false, t/f, yes/no, y/n, on/off, 1/0, 1.0/0.0 (any case, spaces
    around trimmed); a missing value or an empty text is False. The one reading for requests
    and files: callers decide what an unreadable flag means (a file is refused naming its row;
    either way the person gets the crisis resources, since a flag read wrongly as unset would
    be a silent safety error).

    Examples
    --------
    >>> [crisis_flag(v) for v in (True, "Yes ", "n", 0, None, "", "maybe", 2)]
    [True, True, False, False, False, False, None, None]
    """
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return False
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return bool(value) if value in (0, 1) else None
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def crisis_flags(frame, *, where: str = "the cohort", strict: bool = True):
    """The optional ``crisis_risk`` column of a cohort table as booleans (all False without it).

    Each value is read by :func:`crisis_flag`. A value that cannot be read is refused, naming
    every row (up to 20), its value and what is accepted: a crisis flag read wrongly either way
    would be a silent safety error. A column that names the flag otherwise (``Crisis Risk``,
    ``crisis_risk `` with a spreadsheet's trailing space: :func:`recommender.cohort.is_crisis_name`)
    is refused naming it, rather than ignored as an unknown column (its flagged people would be
    ranked). With ``strict=False`` nothing is refused and a row reads as flagged when any such
    column sets its flag or cannot be read: who must get the crisis resources when the file is
    refused.

    Examples
    --------
    >>> import pandas as pd
    >>> crisis_flags(pd.DataFrame({"crisis_risk": ["TRUE", "", "no", 1]})).tolist()
    [True, False, False, True]
    >>> crisis_flags(pd.DataFrame({"crisis_risk": ["maybe", "n"]}), strict=False).tolist()
    [True, False]
    >>> crisis_flags(pd.DataFrame({"Crisis Risk": ["yes", "no"]}), strict=False).tolist()
    [True, False]
    """
    from recommender.cohort import is_crisis_name

    # By position: a header that gives the column twice makes frame[name] a table.
    names = list(frame.columns)
    positions = sorted(
        (i for i, name in enumerate(names) if is_crisis_name(name)),
        key=lambda i: names[i] != CRISIS_COLUMN,
    )
    if not positions:
        return np.zeros(len(frame), dtype=bool)
    misnamed = [names[i] for i in positions if names[i] != CRISIS_COLUMN]
    if misnamed and strict:
        raise InputError(
            f"{where}: column(s) {', '.join(repr(c) for c in misnamed)} name the crisis flag "
            f"but are not spelled {CRISIS_COLUMN!r} (ignored, their flagged people would be "
            f"ranked); accepted: one column named exactly {CRISIS_COLUMN!r} (rename it)",
            problems=[
                {
                    "row": None,
                    "column": column,
                    "value": None,
                    "rule": f"the crisis flag's column is named {CRISIS_COLUMN!r}",
                    "message": f"rename it {CRISIS_COLUMN!r}",
                }
                for column in misnamed
            ],
        )
    if len(positions) > 1 and strict:
        raise InputError(
            f"{where}: column {CRISIS_COLUMN!r} is given {len(positions)} times; accepted: "
            "one such column",
            problems=[
                {
                    "row": None,
                    "column": CRISIS_COLUMN,
                    "value": None,
                    "rule": "one crisis flag's column",
                    "message": f"given {len(positions)} times",
                }
            ],
        )
    flags = np.zeros(len(frame), dtype=bool)
    for i in positions:
        read = [crisis_flag(value) for value in frame.iloc[:, i].tolist()]
        flags |= np.array([flag is not False for flag in read], dtype=bool)
    values = frame.iloc[:, positions[0]].tolist()
    read = [crisis_flag(value) for value in values]
    bad = [(row, value) for row, (value, flag) in enumerate(zip(values, read)) if flag is None]
    if bad and strict:
        accepted = (
            "true or false (also yes/no, y/n, t/f, on/off, 1/0, 1.0/0.0, any case; an empty cell "
            "is false)"
        )
        problems = [
            {
                "row": row,
                "column": CRISIS_COLUMN,
                "value": value,
                "rule": accepted,
                "message": "not a boolean",
            }
            for row, value in bad[:_LISTED]
        ]
        shown = ", ".join(f"row {row}: {value!r}" for row, value in bad[:_LISTED])
        more = f" and {len(bad) - _LISTED} more" if len(bad) > _LISTED else ""
        raise InputError(
            f"{where}: column {CRISIS_COLUMN!r} has {len(bad)} value(s) that are "
            f"not accepted ({shown}{more}); accepted: {accepted}",
            problems=problems,
        )
    return flags


# The columns triage_table adds to a cohort table.
SAFETY_COLUMNS = ("safety_level", "referral")


def triage_table(frame, rules: SafetyRules, crisis):
    """``safety_level`` and ``referral`` columns for a cohort table (one row per person).

    ``crisis`` is :func:`crisis_flags`' result; ``referral`` is :meth:`Triage.summary` (empty
    for a routine profile).
    """
    import pandas as pd

    columns = [c for c in ("role", "ee", "dp", "pa") if c in frame.columns]
    levels, texts = [], []
    for flagged, profile in zip(crisis, frame[columns].to_dict(orient="records")):
        decision = triage(profile, rules, crisis_risk=bool(flagged))
        levels.append(decision.level)
        texts.append(decision.summary())
    return pd.DataFrame(dict(zip(SAFETY_COLUMNS, (levels, texts))), index=frame.index)


def triaged_scores(scored, frame, rules: SafetyRules, crisis):
    """A cohort's scored table: ``scored`` (the model's table of the rows of ``frame`` not
    flagged for crisis risk, in their order) placed on every row of ``frame``, then
    ``safety_level`` and ``referral`` (:func:`triage_table`).

    A flagged row is never ranked: its recommendation, judgements and figures are missing and
    its ``referral`` holds the crisis resources. ``recommended`` stays text and the judgements
    stay booleans (nullable) even when every row is flagged. The one home of this rule for
    ``recommender score`` and the registered pyfunc model.
    """
    import pandas as pd

    crisis = np.asarray(crisis, dtype=bool)
    if len(scored) != int((~crisis).sum()):
        raise ValueError(f"{len(scored)} scored rows for {int((~crisis).sum())} unflagged ones")
    kept = scored.copy()
    kept.index = frame.index[~crisis]
    table = kept.reindex(frame.index)
    judged = [c for c in JUDGEMENT_COLUMNS if c in table.columns]
    table[judged] = table[judged].astype("boolean")
    if "recommended" in table.columns:
        table["recommended"] = table["recommended"].astype(pd.StringDtype(na_value=float("nan")))
    if "person_id" in frame.columns:
        table["person_id"] = frame["person_id"].astype(str).to_numpy()
    elif "person_id" in table.columns:
        table["person_id"] = frame.index.astype(str).to_numpy()
    return pd.concat([table, triage_table(frame, rules, crisis)], axis=1)
