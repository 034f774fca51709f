"""Plan a cohort: who gets which intervention under a budget and the program's capacities.

The registered model gives every person's expected EE change under each arm with its interval;
the catalog gives costs, capacities, group sizes and who each arm is offered to;
:func:`recommender.policy.plan_allocation` (the planning the service's ``/allocate`` does too)
finds the assignment with the largest expected benefit that fits. Severe profiles are flagged for a confidential referral whatever they are allocated, by the
same rules as the service (``configs/serve.yaml``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipelines._crisis_rows import beside, crisis_rows_kept, refuse_writing_over
from recommender.errors import InputError

__all__ = ["CohortPlan", "plan_cohort", "parse_limits"]


@dataclass
class CohortPlan:
    """What :func:`plan_cohort` decided and wrote."""

    path: Path
    rows: int
    model_uri: str
    version: str | None
    allocation: object  # recommender.policy.Allocation
    referrals: int
    crisis: int = 0
    fairness_path: Path | None = None
    complements: tuple = ()  # recommender.catalog.Complement: what the plan does not replace
    catalog_version: str | None = None  # the intervention catalog planned with
    catalog_sha256: str | None = None  # its file's digest (recommender.catalog.catalog_sha256)
    catalog_used: str = "its costs and places"  # what of it, less --cost and --capacity's
    notes: list = field(default_factory=list)  # pipelines.score.model_notes
    warnings: list = field(default_factory=list)  # e.g. arms of the catalog never learnt

    def summary_lines(self) -> list[str]:
        allocation = self.allocation
        # A budget typed with too many zeros (1e300) is shown as a number, not 300 digits.
        budget = (
            "no budget limit"
            if allocation.budget is None
            else f"budget ${allocation.budget:,.0f}"
            if allocation.budget < 1e15
            else f"budget ${allocation.budget:.3g}"
        )
        # the rows flagged for crisis risk are in the plan's file but not planned for
        planned = (
            f"{self.rows - self.crisis:,} of {self.rows:,}" if self.crisis else f"{self.rows:,}"
        )
        lines = [
            f"planned {planned} people with {self.model_uri}"
            + (f" version {self.version}" if self.version else "")
            + (
                f" and intervention catalog {self.catalog_version}"
                + (f" (sha256 {self.catalog_sha256})" if self.catalog_sha256 else "")
                + f" ({self.catalog_used})"
                if self.catalog_version
                else ""
            )
            + f" -> {self.path}",
            f"{allocation.status}; spent ${allocation.total_cost:,.0f} of {budget}; expected "
            f"{allocation.expected_points_avoided:,.0f} EE points avoided in all "
            "(a sum of point estimates; each person's interval is in the file)",
        ]
        for arm, row in allocation.summary.iterrows():
            capacity = "no limit" if pd.isna(row["capacity"]) else f"{int(row['capacity'])}"
            lines.append(
                f"  {arm:<20} {int(row['people']):>6} people in {int(row['groups'])} group(s), "
                f"capacity {capacity}, ${row['cost']:,.0f}, {row['expected_points_avoided']:,.1f} points"
            )
        # why an arm shows 0 people beside free places, when no plan could give it anyone
        lines += [f"  note: {note}" for note in allocation.notes]
        lines.append(f"  confidential referral flagged for {self.referrals:,} severe profile(s)")
        if allocation.floors:
            lines.append(
                "  floors held: "
                + ", ".join(
                    f"{role} >= {share:.0%} given an arm"
                    for role, share in allocation.floors.items()
                )
            )
        if allocation.fairness is not None:
            lines.append(
                f"  fairness by group (all of it in {self.fairness_path}; groups under "
                f"{allocation.min_cell} people suppressed, the model card's min_cell):"
            )
            table = allocation.fairness[allocation.fairness["arm"] == "any"]
            for row in table.itertuples(index=False):
                if row.suppressed:
                    lines.append(f"    {row.attribute} {row.group}: suppressed (small group)")
                    continue
                lines.append(
                    f"    {row.attribute} {row.group}: {int(row.people):,} people, "
                    f"{row.share_allocated:.0%} given an arm ({row.share_eligible:.0%} eligible "
                    f"for one), {row.benefit_per_person:.2f} EE points avoided per person"
                )
        if self.complements:
            from recommender.explain import COMPLEMENT_NOTE

            lines.append(f"not planned here: {COMPLEMENT_NOTE}")
            lines += [
                f"  {c.name} ({c.level}): "
                + "; ".join(f"{e.citation} [{e.design}; {e.certainty}]" for e in c.evidence)
                for c in self.complements
            ]
        if self.crisis:
            lines.append(
                f"  crisis resources for {self.crisis:,} flagged profile(s), who were "
                "not planned for (see the referral column)"
            )
        lines += [f"  note: {note}" for note in self.notes]
        lines += [f"warning: {warning}" for warning in self.warnings]
        return lines


# What each plan option given as text takes: its command-line option, form and an example.
_TEXT_FORMS = {
    "--capacity": ("ARM=NUMBER", "coaching=20,peer_group=30"),
    "--cost": ("ARM=USD", "coaching=1200"),
    "--floor": ("ROLE=SHARE", "nurse=0.2,app=0.2"),
}


def _limits(option: str, value):
    # A mapping as it is; text as the command line gives it.
    if not isinstance(value, str):
        return value
    form, example = _TEXT_FORMS[option]
    return parse_limits(value, option=option, form=form, example=example)


def parse_limits(
    text: str | None,
    *,
    option: str,
    form: str = "ARM=NUMBER",
    example: str = "coaching=20,peer_group=30",
) -> dict[str, float]:
    """``"coaching=20,peer_group=30"`` -> ``{"coaching": 20.0, "peer_group": 30.0}``.

    ``form`` and ``example`` say what ``option`` takes when a part is not a name, ``=`` and a
    number (``--floor`` takes ``ROLE=SHARE``, ``nurse=0.2``, not arms).
    """
    if not text:
        return {}
    out = {}
    for part in text.split(","):
        arm, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError
            number = float(value)
        except ValueError:
            raise InputError(f"{option}: {part!r} is not {form} (e.g. {example})") from None
        if arm.strip() in out:  # the later would silently win: say which was meant instead
            raise InputError(
                f"{option}: {arm.strip()!r} is given twice ({arm.strip()}="
                f"{out[arm.strip()]:g} and {arm.strip()}={number:g}); accepted: each name once"
            )
        out[arm.strip()] = number
    return out


def plan_cohort(
    model: str,
    data,
    out,
    *,
    budget: float | None = None,
    capacity: Mapping[str, float] | str | None = None,
    cost: Mapping[str, float] | str | None = None,
    offered: list[str] | None = None,
    confident_only: bool = False,
    alpha: float | None = None,
    catalog_path=None,
    serve_config=None,
    time_limit: float = 60.0,
    floors: Mapping[str, float] | str | None = None,
) -> CohortPlan:
    """Score ``data`` with ``model``, allocate arms under the limits and write the plan.

    Parameters
    ----------
    model : str
        A registered model (``champion``, a version, or any URI the registry resolves).
    data : path
        Cohort file (CSV or Parquet) with the profile columns.
    out : path
        ``.csv`` or ``.parquet``: ``person_id``, ``allocated``, ``safety_level``, ``referral``
        (where to refer, or the crisis resources; empty when routine), the allocated arm's
        expected EE change and interval, and ``recommended`` (the best arm for the person if
        nothing were limited), so a program can see who was displaced by the limits. A row
        flagged in the optional ``crisis_risk`` column is neither scored nor planned for: no
        arm, and its ``referral`` holds the crisis resources.
    budget : float, optional
        Money available for the cohort.
    capacity, cost : mapping of arm to number, or text, optional
        Override the catalog's capacities (places) and costs per person; text as
        ``--capacity`` and ``--cost`` take it (``coaching=20,peer_group=30``), read with the
        file, so that a malformed one still gives the crisis rows their resources.
    offered : list of str, optional
        Arms the program offers this cycle (default: every arm of the catalog).
    confident_only : bool
        Allocate an arm only when its interval excludes no benefit.
    alpha : float, optional
        Intervals are two-sided ``1 - alpha``; default: the service's ``alpha``, so that
        ``confident_only`` plans a cohort as ``/allocate`` does.
    serve_config : path, optional
        The service's ``serve.yaml``, whose safety rules and ``alpha`` apply (default:
        ``$RECOMMENDER_SERVE_CONFIG``, else the project's, as the service).
    floors : mapping of role to share, or text as ``--floor`` takes it, optional
        At least this share of each named role's people is given an arm (held by the solver;
        an InputError says so when the budget and places cannot meet them all).

    The plan's fairness by role, gender and setting (shares eligible and allocated per arm,
    expected EE points avoided per person) is written beside it as ``<out>.fairness.csv``: the
    two are written together or not at all, and an earlier run's fairness file is removed
    when this plan has none (nobody planned). When no plan can be made once the file is read
    (rows that fail the contract, a model that cannot be found or loaded, a refused option, the
    solver out of time: the error says so),
    the rows flagged for crisis risk still get their resources,
    in ``<out>.crisis.csv`` (person_id, safety_level, referral), which the error names.
    """
    from pipelines.score import extra_features, model_notes, service_settings
    from recommender.catalog import load_catalog
    from recommender.cohort import check_table_output, read_cohort, validate_cohort, write_cohorts
    from recommender.policy import (
        check_plan_options,
        crisis_flags,
        plan_allocation,
        triage_table,
    )
    from recommender.model import arms_not_learnt, model_min_cell, served_under
    from recommender.registry import load_model, resolve_model

    check_table_output(out)  # before the model is loaded: an unwritable path is said at once
    refuse_writing_over(data, out, table="the plan", does="plans", kinds=("fairness", "crisis"))
    service = service_settings(serve_config)
    rules = service.safety
    alpha = service.alpha if alpha is None else alpha
    # The file first: whatever fails after it (the model, the contract, the solver), the rows
    # flagged for crisis risk still get their resources; a crisis answer needs no valid profile.
    frame = read_cohort(data)
    # a flag that cannot be read refuses the file, but its person gets the resources too
    possible = crisis_flags(frame, strict=False)
    with crisis_rows_kept(frame, possible, rules, out, nothing="no plan was written"):
        crisis = crisis_flags(frame, where=str(data))
        catalog = load_catalog(catalog_path)  # a catalog refused leaves the crisis rows theirs
        # Before the model is loaded, as the service does before it scores: each bad option
        # by name, with what is accepted (a refused option still gives the crisis rows their
        # resources, as /allocate's 422 does).
        unknown = [a for a in offered or [] if a not in catalog.treatment_arms]
        if unknown:
            raise InputError(
                f"offered: unknown arm(s) {sorted(set(unknown))}; accepted: arms the catalog "
                f"offers ({', '.join(catalog.treatment_arms)})"
            )
        capacity, cost, floors = (
            _limits(option, value) for option, value in zip(_TEXT_FORMS, (capacity, cost, floors))
        )
        check_plan_options(catalog, capacity=capacity, cost=cost, floors=floors, budget=budget)
        ref = resolve_model(model)
        # An arm the catalog renamed is planned under its new id with what the model learnt
        # under the former one, and said so.
        recommendation_model, renamed = served_under(
            load_model(ref.uri), catalog, version=ref.version
        )
        # An arm it offers that the model never learnt is never planned: said, not hidden.
        unlearnt = arms_not_learnt(recommendation_model, catalog, version=ref.version)
        report = validate_cohort(
            frame, training=False, extra_features=extra_features(recommendation_model)
        )
        if not report.ok:
            raise InputError(
                f"{data} does not meet the data contract:\n{report.format()}",
                problems=list(report.errors),
            )
        frame = frame.reset_index(drop=True)
        safety = triage_table(frame, rules, crisis)
        # Crisis rows never reach the model or the solver; the plan is for everyone else. The
        # model is given the file's row numbers, so a value it refuses is named by its row.
        everyone, frame = frame, frame.loc[~crisis]
        prediction = recommendation_model.predict(recommendation_model.encode(frame), alpha=alpha)
        frame = frame.reset_index(drop=True)
        cohort = plan_allocation(
            catalog,
            frame,
            prediction.effect,
            prediction.lower,
            prediction.upper,
            arms=prediction.arms,
            offered=offered,
            budget=budget,
            capacity=capacity,
            cost=cost,
            confident_only=confident_only,
            floors=floors,
            time_limit=time_limit,
            min_cell=model_min_cell(recommendation_model),
        )
    allocation = cohort.allocation

    planned = pd.DataFrame(
        {
            "allocated": cohort.allocated,
            "allocated_effect": cohort.figures[:, 0],
            "allocated_lower": cohort.figures[:, 1],
            "allocated_upper": cohort.figures[:, 2],
            "recommended": cohort.recommended,
        },
        index=everyone.index[~crisis],
    ).reindex(everyone.index)  # crisis rows: no arm, no figures
    plan = pd.DataFrame(
        {
            "person_id": everyone["person_id"].to_numpy(),
            "allocated": planned["allocated"].to_numpy(),
            "safety_level": safety["safety_level"].to_numpy(),
            "referral": safety["referral"].to_numpy(),
        }
    )
    for column in ("allocated_effect", "allocated_lower", "allocated_upper", "recommended"):
        plan[column] = planned[column].to_numpy()
    # Arms stay text when no row has one (a file of crisis rows only): a Parquet plan then has
    # the columns' types of every other plan, not nulls a reader's schema refuses.
    text = pd.StringDtype(na_value=float("nan"))
    plan[["allocated", "recommended"]] = plan[["allocated", "recommended"]].astype(text)
    # The plan and its fairness are written together or not at all; an earlier run's fairness
    # or crisis file is removed with them, so neither is read beside this plan.
    tables = {Path(out): plan}
    if allocation.fairness is not None:  # None: nobody was planned for (all crisis rows)
        tables[beside(out, "fairness")] = allocation.fairness
    # A plan the disk cannot hold still leaves the flagged rows their resources.
    with crisis_rows_kept(everyone, crisis, rules, out, nothing="no plan was written"):
        path, *written = write_cohorts(
            tables,
            stale=[p for p in (beside(out, "fairness"), beside(out, "crisis")) if p not in tables],
        )
    fairness_path = written[0] if written else None
    return CohortPlan(
        path=Path(path),
        rows=len(plan),
        model_uri=ref.uri,
        version=getattr(ref, "version", None),
        allocation=allocation,
        referrals=int((safety["safety_level"] == "referral").sum()),
        crisis=int(crisis.sum()),
        fairness_path=fairness_path,
        notes=model_notes(recommendation_model, renamed)
        + basis_notes(
            recommendation_model,
            {arm.id: arm.name for arm in catalog.arms},
            frame["role"].to_numpy(),
            cohort.allocated,
            catalog.control,
        ),
        complements=catalog.complements,
        catalog_version=catalog.version,
        catalog_sha256=catalog.sha256,
        catalog_used=catalog_used(catalog.treatment_arms, capacity=capacity, cost=cost),
        warnings=[] if unlearnt is None else [unlearnt],
    )


def basis_notes(model, names, roles, allocated, control) -> list[str]:
    """What the plan says of arms it gives people whose figure for their role was not learnt
    from the program's staff: carried over, or never (hardly) measured on their role. The
    words are those /allocate gives each such person (:func:`recommender.model.estimate_basis`),
    once per role and arm with how many were given it. An evidence-only model's figures are
    all published trials', which :func:`pipelines.score.model_notes` says once.

    ``roles`` and ``allocated``: one per planned person, in the same order.
    """
    from collections import Counter

    from recommender.model import estimate_basis

    metadata = getattr(model, "metadata", None) or {}
    if metadata.get("source") == "evidence":
        return []
    given = Counter((str(r), str(a)) for r, a in zip(roles, allocated) if a != control)
    notes = []
    for (role, arm), people in sorted(given.items()):
        said = estimate_basis(metadata, [arm], role, names)
        if said:
            notes.append(f"{arm} given to {people:,} of role {role}: {said}")
    return notes


def catalog_used(arms, *, capacity=None, cost=None) -> str:
    """What of the catalog a plan used: its costs and places, less those ``--cost`` and
    ``--capacity`` gave (``arms``: the catalog's treatment arms).

    Examples
    --------
    >>> catalog_used(["coaching", "peer_group"])
    'its costs and places'
    >>> catalog_used(["coaching", "peer_group"], capacity={"coaching": 20})
    "its costs; its places but --capacity's for coaching"
    >>> catalog_used(["coaching"], capacity={"coaching": 20}, cost={"coaching": 5})
    'the costs --cost gave; the places --capacity gave'
    """
    parts = []
    for what, given, option in (("costs", cost, "--cost"), ("places", capacity, "--capacity")):
        given = list(given or {})
        if not given:
            parts.append(f"its {what}")
        elif set(arms) <= set(given):
            parts.append(f"the {what} {option} gave")
        else:
            parts.append(f"its {what} but {option}'s for {', '.join(given)}")
    if parts == ["its costs", "its places"]:
        return "its costs and places"
    return "; ".join(parts)
