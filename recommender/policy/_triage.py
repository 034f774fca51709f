"""Safety triage: who gets crisis resources only, who gets a confidential referral as well.

Triage runs before any ranking. A crisis flag means the person needs help now, not a wellness
program, so no intervention is ranked at all; a severe profile still gets the ranking, with a
confidential-referral notice beside it. Thresholds and wording come from ``configs/serve.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from recommender.errors import InputError

__all__ = ["CrisisResource", "SafetyRules", "Triage", "triage"]

_SCORES = ("ee", "dp", "pa")
_BOUNDS = ("at_least", "at_most")

CRISIS = "crisis"
REFERRAL = "referral"
ROUTINE = "routine"


@dataclass(frozen=True)
class CrisisResource:
    """Where a person in crisis can get help now."""

    name: str
    contact: str
    url: str | None = None


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
    """

    referral_rules: tuple[tuple[tuple[str, str, float], ...], ...]
    referral_notice: str
    crisis_notice: str
    crisis_resources: tuple[CrisisResource, ...]

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
        known = {"referral_rules", "referral_notice", "crisis_notice", "crisis_resources"}
        unknown = sorted(set(safety) - known)
        if unknown:
            raise InputError(f"{where}: unknown key(s) {unknown}; accepted: {sorted(known)}")
        rules = []
        for i, rule in enumerate(safety.get("referral_rules") or []):
            rules.append(_parse_rule(rule, f"{where}.referral_rules[{i}]"))
        resources = []
        for i, item in enumerate(safety.get("crisis_resources") or []):
            spot = f"{where}.crisis_resources[{i}]"
            if not isinstance(item, Mapping) or not item.get("name") or not item.get("contact"):
                raise InputError(
                    f"{spot}: {item!r} is not accepted; each resource needs a non-empty 'name' "
                    "and 'contact' (and optionally 'url')"
                )
            extra = sorted(set(item) - {"name", "contact", "url"})
            if extra:
                raise InputError(f"{spot}: unknown key(s) {extra}; accepted: name, contact, url")
            resources.append(CrisisResource(str(item["name"]), str(item["contact"]),
                                            None if item.get("url") is None else str(item["url"])))
        if not resources:
            # A crisis answer without anywhere to turn would be worse than no service.
            raise InputError(f"{where}.crisis_resources: at least one resource is required")
        texts = {}
        for key in ("referral_notice", "crisis_notice"):
            value = safety.get(key)
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"{where}.{key}: {value!r} is not accepted; give a non-empty text")
            texts[key] = " ".join(value.split())
        return cls(referral_rules=tuple(rules), crisis_resources=tuple(resources), **texts)


def _parse_rule(rule, spot: str) -> tuple[tuple[str, str, float], ...]:
    accepted = [f"{s}_{b}" for s in _SCORES for b in _BOUNDS]
    if not isinstance(rule, Mapping) or not rule:
        raise InputError(f"{spot}: {rule!r} is not accepted; a rule maps one or more of "
                         f"{accepted} to a number")
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
    confidential-referral notice) or ``"routine"``.
    """

    level: str
    notice: str | None
    resources: tuple[CrisisResource, ...]
    matched_rule: str | None = None

    @property
    def rank_interventions(self) -> bool:
        """Whether an intervention ranking may be shown at all."""
        return self.level != CRISIS


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
        Holds at least ``ee``, ``dp`` and ``pa`` (validated upstream).
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
    >>> triage({"ee": 10, "dp": 2, "pa": 40}, rules, crisis_risk=True).level
    'crisis'
    """
    if crisis_risk:
        return Triage(CRISIS, rules.crisis_notice, rules.crisis_resources)
    for rule in rules.referral_rules:
        if _rule_holds(rule, profile):
            return Triage(REFERRAL, rules.referral_notice, (), matched_rule=_rule_text(rule))
    return Triage(ROUTINE, None, ())
