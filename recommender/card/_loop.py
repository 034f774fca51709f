"""What the card says of a model retrained from the service's own log: the log, the arms it
could not learn and carried over, and what the evaluation's tables leave out because of them."""

from __future__ import annotations

from recommender.card._format import fmt, interval_level

__all__ = ["carried_arms", "carried_note", "loop_blocks", "small_arm_blocks"]


def loop_blocks(loop):
    """What a model trained from the service's own log must say about that log."""
    from recommender.model import formerly

    if not loop:
        return []
    without = loop.get("arms_without_overlap") or []
    rows = [
        (
            "Treatment",
            "the arm the service recommended (intention to treat); propensity = "
            "its logged probability",
        ),
        ("Outcomes recorded up to (UTC)", loop.get("outcomes_recorded_through")),
        # no command retrains a log's model: what it read, so two runs can be told apart
        (
            "Newest outcome read (its id in the store's outcomes export)",
            # an id to look up, not a count: no thousands separator
            None if loop.get("last_outcome_id") is None else str(loop["last_outcome_id"]),
        ),
        ("Training table (rows kept, before the split)", _table(loop)),
        (
            "Rows served by each model version",
            ", ".join(
                f"version {version}: {rows:,}"
                for version, rows in loop["served_by_version"].items()
            )
            if loop.get("served_by_version")
            else None,
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
        ("Logged rows per arm", _per_arm(loop.get("rows_per_arm"))),
        ("Rows set aside (arms not learnt; left out of Rows and Rows per arm)", _set_aside(loop)),
        (
            "Rows left out (an earlier release logged them; the current data contract refuses "
            "them, so they are neither trained on nor valued)",
            _left_out(loop.get("contract_left_out")),
        ),
        (
            "Arms carried over (previous estimate kept until the log can support learning it)",
            "; ".join(
                f"{formerly(c['arm'], c.get('formerly'))}: {c['rows']:,} logged rows, {c['min_rows']:,} needed; "
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


def _table(loop) -> str | None:
    """The training table's rows and digest (a card from before they were recorded: none)."""
    if loop.get("table_sha256") is None:
        return None
    return f"{loop['table_rows']:,} rows, SHA-256 {loop['table_sha256']}"


def _per_arm(rows_per_arm) -> str | None:
    if not rows_per_arm:
        return None
    return ", ".join(f"{arm}: {rows:,}" for arm, rows in rows_per_arm.items())


def _set_aside(loop) -> str | None:
    """The log's rows of the arms not learnt, which the card's Rows and Rows per arm leave
    out: without it, 2,396 rows stood beside "2,500 served recommendations" unexplained."""
    per_arm = loop.get("rows_per_arm")
    without = loop.get("arms_without_overlap") or []
    if not per_arm or not without:
        return None
    rows = {arm: int(per_arm.get(arm, 0)) for arm in without}
    total = sum(rows.values())
    return f"{total:,} of {loop.get('n_rows', sum(per_arm.values())):,}" + (
        " (" + ", ".join(f"{arm}: {n:,}" for arm, n in rows.items()) + ")" if total else ""
    )


def _left_out(left_out) -> str | None:
    """The logged rows the data contract refuses, per rule (counts only: no row is named)."""
    if not left_out:
        return None
    rules = "; ".join(
        f"{r['rows']:,} {r['reads']} (rule {r['rule']})" for r in left_out.get("rules") or []
    )
    return f"{left_out['rows']:,} of {left_out['read']:,} read" + (f": {rules}" if rules else "")


def carried_arms(facts) -> list[str]:
    data = facts.get("training_data") or {}
    carry = data.get("loop") or data.get("small_arms") or {}
    return [c["arm"] for c in carry.get("carried_arms") or []]


def small_arm_blocks(small_arms) -> list:
    """A file's arms too small to learn: carried from the published trials, or left out."""
    if not small_arms:
        return []
    blocks = []
    carried = small_arms.get("carried_arms") or []
    if carried:
        blocks.append(
            (
                "p",
                "Carried over, not learnt (too few rows in the training data): "
                + "; ".join(
                    f"{c['arm']}: {c['rows']:,} rows, {c['min_rows']:,} needed; estimate from "
                    f"{c['from']}" + _cited(c.get("citations"))
                    for c in carried
                )
                + ". These arms' figures are the same for everyone in a role; they are "
                "ranked and offered beside the learnt arms, and their rows were left out.",
            )
        )
    if small_arms.get("arms_not_carried"):
        blocks.append(
            (
                "p",
                "Left out (too few rows to learn and no published estimate to carry; the "
                "model never recommends them): " + ", ".join(small_arms["arms_not_carried"]),
            )
        )
    return blocks


def _cited(citations) -> str:
    if not citations:
        return ""
    return " (" + "; ".join(f"{role}: {cited}" for role, cited in citations.items()) + ")"


def carried_note(facts) -> str | None:
    """What the evaluation's tables leave out when the model carries arms it did not learn."""
    carried = carried_arms(facts)
    if not carried:
        return None
    e = facts.get("evaluation") or {}
    learnt = [row[0] for row in (e.get("average_effects") or {}).get("rows") or []]
    mix = {row[0]: row[1] for row in (facts.get("recommendation_mix") or {}).get("rows") or []}
    picked = sum(int(mix.get(arm) or 0) for arm in carried)
    secondary = e.get("secondary") or {}
    rows = [dict(zip(secondary.get("columns") or [], row)) for row in secondary.get("rows") or []]
    whole = next((row for row in rows if row.get("outcome") == "ee"), None)
    text = (
        "The tables below measure only the learnt arms ("
        + ", ".join(learnt)
        + "): the arms carried over, not learnt here ("
        + ", ".join(carried)
        + ") have no rows here to measure them by, so the learned policy valued below "
        "chooses among the learnt arms. "
    )
    if whole and whole.get("points_improved") is not None:
        text += (
            f"The model's whole policy, which recommends a carried arm to {picked:,} of "
            f"the {fmt(e.get('n'))} held-out people (valued by that arm's carried "
            f"estimate), avoids {fmt(whole['points_improved'], 2)} EE points per person "
            f"({interval_level(facts)} CI {fmt(whole.get('lower'), 2)} to {fmt(whole.get('upper'), 2)}; "
            "the ee row of the secondary outcomes table); the gate judged that policy."
        )
    return text
