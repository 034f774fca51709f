"""The card's content as blocks (paragraph, list, table, rules, image), one list per section.

Building the content once and rendering it twice keeps the Markdown and the HTML card saying
exactly the same things.
"""

from __future__ import annotations

from recommender.card._fairness import fairness_blocks
from recommender.card._format import fmt, interval_level, why_missing
from recommender.card._plot_text import plot_block
from recommender.card._loop import carried_note, loop_blocks, small_arm_blocks
from recommender.card._model_blocks import model_details
from recommender.card._sections import DEFAULT_TEXT, SECTIONS
from recommender.card._subgroup_blocks import subgroup_blocks

__all__ = ["card_blocks", "card_warnings", "fmt", "provenance_warning"]


def provenance_warning(facts: dict) -> str | None:
    """The warning a reader must see before anything else: the data were simulated."""
    if "simulated" in str((facts.get("training_data") or {}).get("source", "")):
        return (
            "Trained on SIMULATED data: this version demonstrates the method and must not "
            "be used to advise real clinicians."
        )
    return None


def gate_warning(facts: dict) -> str | None:
    """A version whose gate failed says so first: its card is read (``recommender card
    --model N``, a forced promotion's served card) as often as the champion's."""
    gate = (facts.get("model") or {}).get("gate") or {}
    if not gate or gate.get("passed", True):
        return None
    reason = str(gate.get("reason") or "no reason recorded").rstrip(".")
    return (
        f"This version FAILED the promotion gate when it was registered ({reason}): it was "
        "registered as challenger, not champion, and is served only if a person promotes it."
    )


def card_warnings(facts: dict) -> list[str]:
    """What a reader must see before anything else, in order (none for most cards)."""
    return [w for w in (provenance_warning(facts), gate_warning(facts)) if w]


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


def _holdout_share(d):
    """The share asked for, and the share held out where they differ: a split by person (a
    log) or stratified by arm reaches the asked share only roughly (820 of 2,809 rows for 0.3)."""
    asked, train, held = d.get("holdout_share"), d.get("n_train"), d.get("n_holdout")
    if asked is None or train is None or held is None or not train + held:
        return asked
    rows = train + held
    got = held / rows
    if fmt(got) == fmt(asked):
        return asked
    return f"{fmt(asked)} asked; {fmt(got)} held out ({fmt(held)} of {fmt(rows)} rows)"


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
        ("Held-out share", _holdout_share(d)),
        ("Split", d.get("split")),
        ("Outcomes", d.get("outcomes")),
        *_reproduction_rows(d.get("reproduction")),
    ]
    blocks = [
        (
            "table",
            {
                "columns": ["field", "value"],
                "rows": [[k, fmt(v)] for k, v in rows if v is not None],
            },
            "Where the training data came from and how it was split",
        )
    ]
    config_yaml = (d.get("reproduction") or {}).get("config_yaml")
    if config_yaml:  # the settings themselves, not only their digest
        blocks += [
            ("p", "The training config as logged (config/train.yaml):"),
            ("pre", config_yaml),
        ]
    if d.get("arm_counts"):
        blocks.append(("table", d["arm_counts"], "Rows per arm"))
    blocks += small_arm_blocks(d.get("small_arms"))
    blocks += _outside_blocks(d.get("outside"))
    blocks += loop_blocks(d.get("loop"))
    return blocks


def _reproduction_rows(reproduction) -> list:
    """What retrains this version, with the digests of what it reads (nothing for a card
    from before they were recorded)."""
    if not reproduction:
        return []
    return [
        ("Config SHA-256 (run artifact config/train.yaml)", reproduction.get("config_sha256")),
        ("Catalog file SHA-256", reproduction.get("catalog_sha256")),
        ("Reproduce with", reproduction.get("command") or "no single command"),
        ("Reproduction reads", reproduction.get("how")),
    ]


def _outside_blocks(outside) -> list:
    """Held-out rows outside the training data: where answers say their effects are
    extrapolated (nothing for a card without the count, or a model that records no support)."""
    if not outside:
        return []
    text = (
        f"{outside['outside']:,} of {outside['rows']:,} held-out rows lie outside the training "
        "data in at least one field (a number beyond the training rows' range, or a level "
        "fewer training rows had than the subgroup tables' minimum cell, among everyone or "
        "among the people of the row's role); the service and the "
        "scored files name those fields and say the effects there are extrapolated."
    )
    blocks = [("p", text)]
    if outside["fields"]["rows"]:
        blocks.append(("table", outside["fields"], "Held-out rows outside the training data"))
    return blocks


def _evaluation(facts):
    e = facts.get("evaluation") or {}
    level = interval_level(facts)
    blocks = []
    if e.get("statement"):
        blocks.append(("strong", e["statement"]))
    blocks.append(
        (
            "p",
            e.get("basis")  # a model with no held-out part says what its figures are instead
            or f"All figures are on the held-out part ({fmt(e.get('n'))} people), "
            "which the model never saw. Policy values are mean Emotional "
            "Exhaustion points avoided per person compared with usual care for all "
            "(higher is better), estimated doubly robustly, with "
            f"{level} confidence intervals.",
        )
    )
    carried = carried_note(facts)
    if carried:
        blocks.append(("p", carried))
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
        (
            "oracle",
            "Against the simulator's true effects (oracle): PEHE, bias, the share of "
            "people whose true effect lies inside their interval (coverage) and the mean "
            "interval width, computed on these held-out people's true effects, so no interval",
        ),
    ):
        if e.get(key):
            blocks.append(("table", e[key], caption))
            if key == "oracle" and _oracle_summary(e):
                blocks.append(("p", _oracle_summary(e)))
        elif key == "oracle":
            blocks.append(
                (
                    "p",
                    e.get("no_oracle")
                    or "No oracle: the data are not simulated, so PEHE and coverage "
                    "cannot be measured.",
                )
            )
    one = _one_effect_note(facts)
    if one:
        blocks.append(("p", one))
    for name in e.get("plots") or []:
        blocks.append(plot_block(name, facts))
    if e.get("notes"):
        blocks.append(("h3", "How the numbers were obtained"))
        blocks.append(("list", e["notes"]))
    return blocks


def _oracle_summary(e: dict) -> str | None:
    """The oracle's one-number figures of card.json, which the tables do not give."""
    o = e.get("oracle_summary") or {}
    if o.get("true_value_learned") is None or o.get("true_value_oracle") is None:
        return None
    said = [
        f"True value of the learned policy: {fmt(o['true_value_learned'], 2)} EE points "
        f"avoided per person, against {fmt(o['true_value_oracle'], 2)} for the oracle"
        + (
            f" ({100 * o['share_of_oracle']:.1f}% of it; regret {fmt(o['regret'], 2)} points)"
            if o.get("share_of_oracle") is not None and o.get("regret") is not None
            else ""
        )
    ]
    if o.get("coverage_mean") is not None and o.get("mean_width") is not None:
        said.append(
            f"over all arms, {100 * o['coverage_mean']:.1f}% of people's true effects lie "
            f"inside their interval (mean width {fmt(o['mean_width'], 2)} points)"
        )
    if o.get("pehe_mean") is not None:
        said.append(f"PEHE averaged over arms {fmt(o['pehe_mean'], 3)}")
    return "; ".join(said) + "."


def _one_effect_note(facts) -> str | None:
    """Why the Qini and calibration of an arm with one effect for everyone say nothing."""
    measured = {
        row[0] for row in ((facts.get("evaluation") or {}).get("qini") or {}).get("rows") or []
    }
    arms = [a for a in (facts.get("model") or {}).get("one_effect_arms") or [] if a in measured]
    if not arms:
        return None
    return (
        f"The model gives {', '.join(arms)} one effect for everyone (it found no measurable "
        "benefit in personalising "
        + ("it" if len(arms) == 1 else "them")
        + "): it ranks no one for "
        + ("that arm" if len(arms) == 1 else "those arms")
        + ", so the Qini is 0 and the calibration slope is not defined (—). Whom an arm "
        "suits is measured only for the arms it personalises."
    )


def _mix(facts):
    mix = facts.get("recommendation_mix")
    if not mix or not mix.get("rows"):
        return [("p", why_missing(mix))]
    return [
        ("p", "How often each intervention is recommended on the held-out part."),
        ("table", mix, "People and share of the held-out part recommended each intervention"),
    ]


def _policy_summary(facts):
    p = facts.get("policy_summary") or {}
    if not p.get("rules"):
        return [("p", why_missing(p))]
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
        # as the catalog gives them: -1.0 stays -1.0 (":+g" printed -1 beside a "-1.0")
        line += (
            f". Taken as {i['effect_points']:+} EE points against usual care "
            f"({low:+} to {high:+}): {str(i.get('conversion')).rstrip('.')}"
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
    conversions = [
        str(i.get("conversion")) for a in facts.get("evidence") or [] for i in a["items"]
    ]
    if any("see the header" in c for c in conversions):
        from recommender.catalog import CONVERSION_NOTE

        blocks.append(("p", CONVERSION_NOTE))
    for arm in facts.get("evidence") or []:
        blocks.append(("h3", f"{arm.get('name')} ({arm.get('arm')})"))
        if arm.get("description"):
            blocks.append(("p", arm["description"]))
        if arm.get("cost"):
            blocks.append(
                ("p", f"Cost: {arm['cost']}. Places per cycle: {arm.get('capacity_text')}.")
            )
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
    if facts.get("ethics"):
        return [("list", facts["ethics"])]
    from recommender.evaluation import MIN_CELL

    # the minimum cell is the run's (card.min_cell in train.yaml), not always 11
    min_cell = (facts.get("subgroups") or {}).get("min_cell") or MIN_CELL
    return [("list", [item.format(min_cell=min_cell) for item in DEFAULT_TEXT["ethics"]])]


def _caveats(facts):
    return [("list", facts.get("caveats") or DEFAULT_TEXT["caveats"])]


def _reporting(facts):
    r = {**DEFAULT_TEXT["reporting"], **(facts.get("reporting") or {})}
    return [("p", r["how"]), ("p", f"Contact: {r['contact']}")]


_BUILDERS = {
    "model-details": model_details,
    "intended-use": _intended_use,
    "out-of-scope": _out_of_scope,
    "training-data": _training_data,
    "evaluation": _evaluation,
    "subgroups": subgroup_blocks,
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
