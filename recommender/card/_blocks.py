"""The card's content as blocks (paragraph, list, table, rules, image), one list per section.

Building the content once and rendering it twice keeps the Markdown and the HTML card saying
exactly the same things.
"""

from __future__ import annotations

from recommender.card._fairness import fairness_blocks
from recommender.card._sections import DEFAULT_TEXT, SECTIONS

__all__ = ["card_blocks", "fmt", "provenance_warning"]

_MISSING = "not available"


def fmt(value, digits: int = 3) -> str:
    """A cell as text: numbers to ``digits`` decimals, None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "—"
        return f"{value:.{digits}f}"
    return str(value)


def provenance_warning(facts: dict) -> str | None:
    """The warning a reader must see before anything else: the data were simulated."""
    if "simulated" in str((facts.get("training_data") or {}).get("source", "")):
        return (
            "Trained on SIMULATED data: this version demonstrates the method and must not "
            "be used to advise real clinicians."
        )
    return None


def _interval(d: dict | None, level: str) -> str:
    if not d or d.get("estimate") is None:
        return _MISSING
    lo, hi = d.get("lower"), d.get("upper")
    if lo is None or hi is None:
        return fmt(d["estimate"], 2)
    return f"{fmt(d['estimate'], 2)} ({level} CI {fmt(lo, 2)} to {fmt(hi, 2)})"


def _level(facts) -> str:
    alpha = (facts.get("evaluation") or {}).get("alpha", 0.1) or 0.1
    return f"{100 * (1 - alpha):.0f}%"


def _model_details(facts):
    m = facts.get("model") or {}
    gate = m.get("gate") or {}
    rows = [
        ("Registered model", m.get("name")),
        ("Version", m.get("version") or "assigned at registration"),
        ("Aliases at registration", ", ".join(m.get("aliases") or []) or "—"),
        ("Created (UTC)", m.get("created")),
        ("MLflow run id", m.get("run_id")),
        ("MLflow experiment", m.get("experiment")),
        ("Git commit", m.get("git_commit")),
        ("Training data SHA-256", m.get("data_sha256")),
        ("Intervention catalog version", m.get("catalog_version")),
        (
            "Learners (outcome: learner)",
            ", ".join(f"{k}: {v}" for k, v in (m.get("learners") or {}).items()) or "—",
        ),
        ("Seed", m.get("seed")),
        ("Previous champion", m.get("previous_champion") or "none"),
        (
            "Promotion gate",
            ("passed" if gate.get("passed") else "not passed")
            + (f": {gate['reason']}" if gate.get("reason") else "")
            if gate
            else "—",
        ),
    ]
    blocks = [
        (
            "p",
            m.get("description")
            or (
                "A multi-arm uplift model: for each clinician it estimates the expected change in "
                "burnout subscale scores under every intervention in the catalog versus usual care, "
                "with an interval, and recommends the intervention expected to lower emotional "
                "exhaustion most."
            ),
        )
    ]
    blocks.append(
        ("table", {"columns": ["field", "value"], "rows": [[k, fmt(v)] for k, v in rows]}, None)
    )
    versions = m.get("package_versions") or {}
    if versions:
        blocks.append(
            (
                "table",
                {
                    "columns": ["package", "version"],
                    "rows": [[k, v] for k, v in sorted(versions.items())],
                },
                "Package versions",
            )
        )
    return blocks


def _intended_use(facts):
    use = {**DEFAULT_TEXT["intended_use"], **(facts.get("intended_use") or {})}
    return [
        ("p", use["summary"]),
        ("h3", "Intended users"),
        ("list", use["users"]),
        ("h3", "Intended uses"),
        ("list", use["uses"]),
    ]


def _out_of_scope(facts):
    items = facts.get("out_of_scope") or DEFAULT_TEXT["out_of_scope"]
    return [("p", "The model must not be used for:"), ("list", items)]


def _training_data(facts):
    d = facts.get("training_data") or {}
    rows = [
        ("Source", d.get("source")),
        ("Description", d.get("description")),
        ("Design", d.get("design")),
        ("Propensities", d.get("propensity")),
        ("Rows", d.get("n_rows")),
        ("Training rows", d.get("n_train")),
        ("Held-out rows", d.get("n_holdout")),
        ("Held-out share", d.get("holdout_share")),
        ("Split", d.get("split")),
        ("Outcomes", d.get("outcomes")),
    ]
    blocks = [
        (
            "table",
            {
                "columns": ["field", "value"],
                "rows": [[k, fmt(v)] for k, v in rows if v is not None],
            },
            None,
        )
    ]
    if d.get("arm_counts"):
        blocks.append(("table", d["arm_counts"], "Rows per arm"))
    blocks += _loop_blocks(d.get("loop"))
    return blocks


def _loop_blocks(loop):
    """What a model trained from the service's own log must say about that log."""
    if not loop:
        return []
    without = loop.get("arms_without_overlap") or []
    rows = [
        (
            "Treatment",
            "the arm the service recommended (intention to treat); propensity = "
            "its logged probability",
        ),
        ("Exploration in serve.yaml at training", loop.get("exploration")),
        ("Policies in the log", ", ".join(loop.get("policies") or [])),
        (
            "Rows served with probability 1",
            f"{loop.get('served_with_probability_one', 0):,} of "
            f"{loop.get('n_rows', 0):,} (they inform only the "
            "arm they got)",
        ),
        (
            "Arms without overlap (not learnt)",
            ", ".join(without) + f" (fewer than {loop.get('min_arm_rows')} logged rows)"
            if without
            else "none",
        ),
        (
            "Arms carried over (previous estimate kept until the log can support learning it)",
            "; ".join(
                f"{c['arm']}: {c['rows']:,} logged rows, {c['min_rows']:,} needed; "
                f"estimate from {c['from']}"
                for c in loop["carried_arms"]
            )
            if loop.get("carried_arms")
            else ("none" if "carried_arms" in loop else None),
        ),
        (
            "Arms left out (no earlier estimate to carry)",
            ", ".join(loop["arms_not_carried"]) if loop.get("arms_not_carried") else None,
        ),
        ("Share who took the recommended arm", fmt(loop.get("followed_share"), 3)),
    ]
    blocks = [
        (
            "table",
            {
                "columns": ["learning loop", "value"],
                "rows": [[k, fmt(v)] for k, v in rows if v is not None],
            },
            None,
        )
    ]
    if loop.get("uptake"):
        blocks.append(
            ("table", loop["uptake"], "Uptake: arm recommended (rows) against arm taken (columns)")
        )
    if loop.get("off_policy"):
        blocks.append(
            (
                "table",
                loop["off_policy"],
                "Off-policy estimates on the log (EE change per person; lower is better)",
            )
        )
        blocks += [("p", f"{n[0].upper()}{n[1:]}.") for n in loop["off_policy"].get("notes", [])]
    return blocks


def _evaluation(facts):
    e = facts.get("evaluation") or {}
    level = _level(facts)
    blocks = []
    if e.get("statement"):
        blocks.append(("strong", e["statement"]))
    blocks.append(
        (
            "p",
            f"All figures are on the held-out part ({fmt(e.get('n'))} people), "
            "which the model never saw. Policy values are mean Emotional "
            "Exhaustion points avoided per person compared with usual care for all "
            "(higher is better), estimated doubly robustly, with "
            f"{level} confidence intervals.",
        )
    )
    for key, caption in (
        (
            "policy_values",
            "Policy value: learned policy, each one-arm-for-all policy and random assignment",
        ),
        (
            "average_effects",
            "Average effect of each arm versus usual care (EE points; negative = less exhaustion)",
        ),
        ("qini", "Qini coefficient and AUUC per arm"),
        (
            "calibration",
            "Calibration slope of predicted against doubly "
            "robust effects (1 = calibrated, 0 = no information)",
        ),
        ("secondary", "Secondary outcomes under the learned policy"),
        ("oracle", "Against the simulator's true effects (oracle)"),
    ):
        if e.get(key):
            blocks.append(("table", e[key], caption))
        elif key == "oracle":
            blocks.append(
                (
                    "p",
                    "No oracle: the data are not simulated, so PEHE and coverage "
                    "cannot be measured.",
                )
            )
    for name in e.get("plots") or []:
        blocks.append(("img", name, (facts.get("plots") or {}).get(name, {}).get("caption", name)))
    if e.get("notes"):
        blocks.append(("h3", "How the numbers were obtained"))
        blocks.append(("list", e["notes"]))
    return blocks


def _subgroups(facts):
    s = facts.get("subgroups") or {}
    min_cell = s.get("min_cell", 11)
    blocks = [
        (
            "p",
            f"Recommendations and the learned policy's value by role, gender, age band, "
            f"setting and role × gender on the held-out part. Cells with fewer than "
            f"{min_cell} people are suppressed (every figure blanked, size included).",
        )
    ]
    if s.get("table"):
        blocks += _subgroup_tables(s["table"])
    else:
        blocks.append(("p", _MISSING))
    for name in s.get("plots") or []:
        blocks.append(("img", name, (facts.get("plots") or {}).get(name, {}).get("caption", name)))
    return blocks


def _subgroup_tables(tbl: dict) -> list:
    # One table of 14 columns is wider than a page: the recommendation shares (as whole
    # percentages) and the policy values (with their interval in one cell) are shown apart.
    columns, rows = tbl.get("columns") or [], tbl.get("rows") or []
    at = {c: i for i, c in enumerate(columns)}
    shares = [c for c in columns if c.startswith("share_")]
    if not {"grouping", "cell", "n", "policy_value"} <= set(at) or not shares:
        return [("table", tbl, "Subgroup and intersectional table")]

    def cell(row):
        return [row[at["grouping"]], row[at["cell"]], row[at["n"]]]

    def suppressed(row):  # a suppressed cell shows nothing but the word
        return not isinstance(row[at["n"]], (int, float))

    def percent(value):
        if not isinstance(value, (int, float)) or value != value:
            return fmt(value)
        return f"{100 * value:.0f}%"

    share_rows = [cell(r) + [percent(r[at[c]]) for c in shares] for r in rows]
    value_rows = []
    for r in rows:
        if suppressed(r):
            value_rows.append(cell(r) + [r[at["n"]]] * 3)
            continue
        value = r[at["policy_value"]]
        lower, upper = (r[at[k]] if k in at else None for k in ("lower", "upper"))
        interval = (
            f"{fmt(lower, 2)} to {fmt(upper, 2)}"
            if lower is not None and upper is not None
            else "—"
        )
        effect = r[at["mean_predicted_effect"]] if "mean_predicted_effect" in at else None
        value_rows.append(cell(r) + [fmt(effect, 2), fmt(value, 2), interval])
    return [
        (
            "table",
            {
                "columns": [
                    "grouping",
                    "cell",
                    "n",
                    *(c[len("share_") :].replace("_", " ") for c in shares),
                ],
                "rows": share_rows,
            },
            "Share of each subgroup recommended each intervention",
        ),
        (
            "table",
            {
                "columns": [
                    "grouping",
                    "cell",
                    "n",
                    "mean predicted EE effect",
                    "policy value",
                    "interval",
                ],
                "rows": value_rows,
            },
            "Learned policy's value per subgroup (EE points avoided per person)",
        ),
    ]


def _mix(facts):
    mix = facts.get("recommendation_mix")
    if not mix:
        return [("p", _MISSING)]
    return [
        ("p", "How often each intervention is recommended on the held-out part."),
        ("table", mix, None),
    ]


def _policy_summary(facts):
    p = facts.get("policy_summary") or {}
    if not p.get("rules"):
        return [("p", _MISSING)]
    return [
        (
            "p",
            f"A decision tree of depth {p.get('max_depth')} fitted to the model's "
            f"recommendations on {fmt(p.get('n'))} people reproduces them for "
            f"{100 * (p.get('fidelity') or 0):.1f}% of people (its fidelity). It is a "
            "readable summary of the policy, not the model.",
        ),
        ("pre", p["rules"]),
    ]


def _evidence_line(i) -> str:
    """One record: citation, design and certainty first, then the finding as reported."""
    certainty = str(i.get("certainty")).rstrip(".")
    line = (
        f"{i.get('citation')} [{i.get('design')}; certainty: {certainty}]: "
        f"{i.get('effect')} ({i.get('population')}; {i.get('outcome')})"
    )
    if i.get("effect_points") is not None:
        low, high = (i.get("effect_points_ci") or [None, None])[:2]
        line += (
            f". Taken as {i['effect_points']:+g} EE points against usual care "
            f"({low:+g} to {high:+g}): {str(i.get('conversion')).rstrip('.')}"
        )
    if i.get("note"):
        line += f". {i['note']}"
    return line


def _evidence(facts):
    blocks = [
        (
            "p",
            "What the published literature says about each intervention, from the "
            "intervention catalog (docs/evidence.md has every field). The model's own "
            "estimates are in the evaluation section; these figures are the prior "
            "evidence, not outputs of this model. Each line gives the design and how "
            "certain the finding is (GRADE where a review rated it).",
        )
    ]
    for arm in facts.get("evidence") or []:
        blocks.append(("h3", f"{arm.get('name')} ({arm.get('arm')})"))
        if arm.get("description"):
            blocks.append(("p", arm["description"]))
        items = [_evidence_line(i) for i in arm.get("items") or []]
        blocks.append(("list", items or ["no published evidence recorded"]))
    complements = facts.get("complements") or []
    if complements:
        blocks.append(("h3", "What individual interventions do not replace"))
        blocks.append(("p", complements[0].get("note") or ""))
        for c in complements:
            lines = [
                f"{e.get('citation')} [{e.get('design')}; certainty: "
                f"{str(e.get('certainty')).rstrip('.')}]: {e.get('effect')}"
                for e in c.get("evidence") or []
            ]
            blocks.append(("p", f"{c.get('name')} ({c.get('level')}): {c.get('description')}"))
            blocks.append(("list", lines or ["no published evidence recorded"]))
    return blocks


def _ethics(facts):
    return [("list", facts.get("ethics") or DEFAULT_TEXT["ethics"])]


def _caveats(facts):
    return [("list", facts.get("caveats") or DEFAULT_TEXT["caveats"])]


def _reporting(facts):
    r = {**DEFAULT_TEXT["reporting"], **(facts.get("reporting") or {})}
    return [("p", r["how"]), ("p", f"Contact: {r['contact']}")]


_BUILDERS = {
    "model-details": _model_details,
    "intended-use": _intended_use,
    "out-of-scope": _out_of_scope,
    "training-data": _training_data,
    "evaluation": _evaluation,
    "subgroups": _subgroups,
    "fairness": fairness_blocks,
    "recommendation-mix": _mix,
    "policy-summary": _policy_summary,
    "evidence": _evidence,
    "ethics": _ethics,
    "caveats": _caveats,
    "reporting": _reporting,
}


def card_blocks(facts: dict) -> list[tuple[str, str, list]]:
    """``(section id, title, blocks)`` for every section, in order."""
    return [(sid, title, _BUILDERS[sid](facts)) for sid, title in SECTIONS]
