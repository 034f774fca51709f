"""The off-policy values of registered models' best-arm policies on the service's log
(``recommender evaluate-policy``): the champion's and the versions asked for, each valued by DR,
IPS and SNIPS on the logged rows none of them was trained on (:func:`evaluate_policies_on_log`),
a version given as a number or an alias and refused at once when the registry holds no such one
(:func:`_registered_version`).

Importable from :mod:`pipelines.train`, as the CLI and the tests import it.
"""

from __future__ import annotations

from recommender.errors import InputError

__all__ = ["evaluate_policies_on_log"]


def evaluate_policies_on_log(config: dict, catalog, *, versions=()) -> dict | None:
    """Off-policy values of the champion's (and ``versions``') best-arm policies on the log.

    None when the service's log holds no outcome yet. Values are EE change against usual care
    for all per person (lower is better), by DR, IPS and SNIPS, with ``1 - alpha`` intervals and
    the effective number of rows behind their weights; ``notes`` say which rows were compared,
    per policy where the log could not have served its arms, where its weights are extreme,
    and whether personalizing beats the best single arm (``note``: the same, joined).
    """
    from pipelines._from_log import log_policy_frame, off_policy_notes, off_policy_table
    from pipelines._log_contract import left_out_note
    from pipelines._train_key import comparison_rows
    from recommender.model import served_under
    from recommender.registry import aliases, load_model

    name = config["registry"]["model_name"]
    # Checked before the log is valued (which takes a while): a mistyped version fails at once.
    versions = [_registered_version(name, v) for v in versions]
    logged = log_policy_frame(config, catalog, required=True)
    if logged is None:
        return None
    frame, scores, change = logged
    left_out = left_out_note(frame)  # said before the comparison takes rows out of the frame
    wanted = []
    champion = aliases(name).get("champion")
    if champion is not None:
        wanted.append((f"champion (version {champion})", str(champion)))
    wanted += [(f"version {v}", v) for v in dict.fromkeys(versions) if v != str(champion)]
    models = {}
    for label, version in wanted:
        try:
            # as the service serves it: an arm the catalog renamed, under its new id
            models[label], _ = served_under(load_model(f"models:/{name}/{version}"), catalog)
        except InputError as error:  # say which model: the others may be fine
            raise InputError(f"{label}: {error}", problems=error.problems) from None
    # A model valued on the people it was trained on is flattered: all are valued on the rows
    # none of them has seen, when enough remain (the note says what was done).
    rows, note = comparison_rows(models, frame["person_id"], logged=True)
    frame = frame[rows].reset_index(drop=True)
    scores, change = scores[rows].reset_index(drop=True), change[rows]
    values, notes = [], [n for n in (left_out, note) if n]
    for label, model in models.items():
        settings = dict(control=catalog.control, alpha=config["evaluation"]["alpha"], label=label)
        try:
            table = off_policy_table(model, frame, scores, change, **settings)
            notes += off_policy_notes(model, frame, scores, table, **settings)
        except InputError as error:  # say which model: the others may be fine
            raise InputError(f"{label}: {error}", problems=error.problems) from None
        for row in table:
            values.append(
                {
                    "policy": row[0],
                    "estimator": row[1],
                    "estimate": row[2],
                    "lower": row[3],
                    "upper": row[4],
                    "rows": row[5],
                    "effective_rows": row[6],
                    "unmeasured_rows": row[7],
                }
            )
    return {
        "rows": int(len(frame)),
        "logged_rows": int(len(rows)),
        "note": "; ".join(notes),
        "notes": notes,
        "values": values,
    }


def _registered_version(name: str, given) -> str:
    """The version number of ``given``, a version number or an alias of model ``name``."""
    from recommender.registry import resolve_model, shown_location, tracking_uri

    text = str(given).strip()
    try:
        ref = resolve_model(
            f"models:/{name}/{text}" if text.isdigit() else f"models:/{name}@{text}"
        )
    except InputError:
        ref = None
    if ref is None or ref.version is None:  # unknown, or no version or alias at all ("a/b")
        raise InputError(
            f"version {given!r} is not a registered version or alias of {name} in the store "
            f"at {shown_location(tracking_uri())}; accepted: "
            "a version number or alias of the registry (e.g. 3, champion, challenger)"
        )
    return ref.version
