"""The pages beside the API: the served model's card (HTML and JSON) and the audit log as CSV.

Their routes are :class:`~recommender.service.service.Recommender`'s (on the small FastAPI app
mounted under the service); what they answer is made here, without BentoML.
"""

from __future__ import annotations

import errno
import logging

from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from recommender.errors import InputError
from recommender.service._audit_export import parse_since
from recommender.service._outcome_log import export_of
from recommender.service._card import read_card
from recommender.service._readiness import StaleModel

__all__ = ["audit_export_response", "model_card_facts", "model_card_page"]

log = logging.getLogger("recommender.service")


def model_card_page(
    config,
    version: str | None,
    load_error: str | None,
    stale: StaleModel | None = None,
    catalog_note: str | None = None,
    *,
    catalog=None,
) -> Response:
    """The card of the served ``version`` as HTML, with the exploration policy served now
    (``version`` ``None``: no model is loaded, for ``load_error``), the intervention catalog in
    force (``catalog``: its version and digest), when ``stale`` that the announced champion
    could not be loaded and why, and what is amiss with the version served
    (:func:`serving_concerns`)."""
    if version is None:
        return _no_card(load_error)
    html = read_card(config.models_dir, version, "card.html")
    if html is None:
        return _missing_card(version)
    # The card was written at training; the exploration policy is the service's own.
    import html as markup

    held = registry_aliases()
    now = current_aliases(version, held)
    serving = (
        f'<p id="serving-policy"><strong>As served now:</strong> '
        f"{markup.escape(config.exploration.describe())}</p>"
        f'<p id="current-aliases"><strong>Aliases now:</strong> '
        f"{markup.escape(_UNREAD_ALIASES if now is None else ', '.join(now) or 'none')}</p>"
        f'<p id="champion-record"><strong>How it became champion:</strong> '
        f"{markup.escape(champion_record(version)['statement'])}</p>"
    )
    if catalog is not None:
        serving += (
            f'<p id="catalog-in-force"><strong>Intervention catalog in force:</strong> '
            f"version {markup.escape(catalog.version)}, sha256 "
            f"{markup.escape(str(catalog.sha256))}</p>"
        )
    replaced = replaced_statement(version, held)
    if replaced is not None:
        serving += (
            f'<p id="champion-replaced" class="warning"><strong>No longer the champion:</strong> '
            f"{markup.escape(replaced)}</p>"
        )
    if stale is not None:
        serving += (
            f'<p id="stale-model" class="warning"><strong>Not the announced champion:</strong> this worker '
            f"serves {markup.escape(stale.statement())} (since {markup.escape(stale.since)}): "
            f"{markup.escape(stale.cause)}</p>"
        )
    for concern in serving_concerns(version, catalog_note):
        serving += (
            '<p class="warning serving-concern"><strong>Warning:</strong> '
            f"{markup.escape(concern)}</p>"
        )
    # after the title and the card's own warning (simulated data), which come first
    at = html.find("<nav ")
    if at < 0:
        at = html.find("</h1>") + len("</h1>") if "</h1>" in html else 0
    return HTMLResponse(html[:at] + serving + html[at:])


def model_card_facts(
    config,
    version: str | None,
    load_error: str | None,
    stale: StaleModel | None = None,
    catalog_note: str | None = None,
    *,
    catalog=None,
) -> Response:
    """The card of the served ``version`` as JSON, with the exploration policy served now,
    ``serving.catalog``: the intervention catalog in force (``version``, ``sha256``; the
    card's own ``catalog_version`` is the one the model was trained under),
    ``serving.stale``: ``null``, or the announced champion this worker could not load and why
    (the loader's message, naming the missing file; the route needs a key, unlike /readyz),
    and ``serving.concerns`` (:func:`serving_concerns`)."""
    if version is None:
        return _no_card(load_error)
    text = read_card(config.models_dir, version, "card.json")
    if text is None:
        return _missing_card(version)
    import json

    facts = json.loads(text)
    model = facts.get("model")
    if isinstance(model, dict) and "aliases" in model:
        # The card's aliases are those the version got when it was registered; a promotion or
        # a rollback since has moved them. Labelled so, in place, and the current ones beside.
        facts["model"] = {
            ("aliases_at_registration" if key == "aliases" else key): value
            for key, value in model.items()
        }
    rule = config.exploration
    held = registry_aliases()
    facts["serving"] = {
        "exploration": {
            "policy": rule.policy,
            "epsilon": rule.epsilon,
            "cycle": rule.cycle,
            "usual_care_share": rule.usual_care_share,
            "max_cost": rule.max_cost,
            "description": rule.describe(),
        },
        "champion": champion_record(version),
        "catalog": None
        if catalog is None
        else {"version": catalog.version, "sha256": catalog.sha256},
        "aliases": current_aliases(version, held),
        "replaced": replaced_statement(version, held),
        "stale": None if stale is None else stale.facts(),
        "concerns": serving_concerns(version, catalog_note),
    }
    return JSONResponse(facts)


def serving_concerns(version: str, catalog_note: str | None) -> list[str]:
    """What is amiss with the served ``version``, one sentence each: trained under another
    catalog than the installed one (``catalog_note``, the engine's), its training run deleted
    from the registry (read now; a registry that cannot be read adds nothing here, the card
    says so elsewhere)."""
    said = [] if catalog_note is None else [catalog_note]
    try:
        from recommender.registry import MODEL_NAME, client, run_concern

        deleted = run_concern(MODEL_NAME, version, mlflow_client=client(existing=True))
    except Exception as error:  # noqa: BLE001 - the card is still shown
        log.warning("the training run of version %s could not be read: %s", version, error)
        deleted = None
    return said if deleted is None else [*said, deleted]


_UNREAD_ALIASES = "not known: the registry could not be read"


def registry_aliases() -> dict[str, str] | None:
    """The registry's ``alias -> version`` now (``None``: the registry could not be read,
    which does not withhold the card).

    Read when the card is asked for, never on the way to a recommendation.
    """
    try:
        from recommender.registry import aliases

        return aliases()
    except Exception as error:  # noqa: BLE001 - said on the card, which is still shown
        log.warning("the registry's aliases could not be read: %s", error)
        return None


def current_aliases(version: str, held: dict[str, str] | None) -> list[str] | None:
    """The aliases ``held`` (:func:`registry_aliases`) gives the served ``version``, sorted."""
    if held is None:
        return None
    return sorted(alias for alias, holder in held.items() if holder == str(version))


def replaced_statement(version: str, held: dict[str, str] | None) -> str | None:
    """Said when the registry's champion is no longer the served ``version``: a ``promote``
    or ``rollback`` moves the alias, and the service keeps answering with the version it
    loaded until a ``/reload`` (``None``: it is still the champion, or not known)."""
    if held is None or held.get("champion") == str(version):
        return None
    champion = held.get("champion")
    if champion is None:
        return (
            f"no version holds the registry's champion alias now; this service still answers "
            f"with version {version}, and every answer names it"
        )
    return (
        f"the registry's champion is now version {champion}; this service still answers with "
        f"version {version}, and every answer names it, until POST /reload (or a restart) "
        f"serves version {champion}"
    )


def champion_record(version: str) -> dict:
    """How the served ``version`` became the champion, as the registry recorded it:
    ``{"event": the promotion log's entry or None, "statement": the same in words}``.

    The card was written when the version was trained: that a person promoted it later, over
    the gate's verdict (``promote --force``) or not, or rolled back to it, only the registry
    knows. A registry that cannot be read does not withhold the card; it is said instead.
    """
    try:
        from recommender.registry import champion_event

        event = champion_event(version)
    except Exception as error:  # noqa: BLE001 - said on the card, which is still shown
        log.warning("the registry's record of version %s could not be read: %s", version, error)
        return {
            "event": None,
            "statement": f"not known: the registry could not be read ({type(error).__name__}); "
            "the promotion log (promotions.jsonl beside the models) records it",
        }
    if event is None:
        return {
            "event": None,
            "statement": "no promotion of this version is recorded: the champion alias was "
            "moved outside `recommender train`, `promote` and `rollback`",
        }
    when = event.time[:16].replace("T", " ") + " UTC"
    if event.kind == "gate":
        statement = f"{when}, by its training run, on the promotion gate's verdict: {event.reason}"
    else:
        did = "promoted by" if event.kind == "promote" else "rolled back to by"
        statement = f"{when}, {did} {event.actor}: {event.reason}"
    for code, clause in event.forced_over:
        if code == "gate":
            verdict = event.policy.get("gate_reason") or "no reason recorded"
            statement += (
                f". It had FAILED the promotion gate, which this card reports ({verdict}); the "
                "person promoted it all the same (promote --force)"
            )
        else:
            statement += f". Made the champion with --force over this: {clause}"
    if event.recorded_late:
        statement += f" (recorded late: {event.recorded_late})"
    return {"event": event.to_dict(), "statement": statement}


def audit_export_response(
    audit, since: str | None, *, table: str = "recommendations", closed: str | None = None
) -> Response:
    """The audit log (from ``since`` on, an ISO 8601 date or time) as CSV: the answers
    (``table`` ``recommendations``) or every outcome row, corrections and the rows they replaced
    (``outcomes``); ``audit`` ``None``: no store is open, for the reason ``closed``."""
    try:
        start = None if since is None else parse_since(since)
        export = export_of(table)
    except InputError as error:
        return JSONResponse({"error": str(error), "problems": error.problems}, status_code=422)
    if audit is None:
        return JSONResponse(
            {"error": closed or "the audit store is not open; please retry", "problems": []},
            status_code=503,
        )
    # Read whole into a spool (memory up to a few MiB, then a temporary file) and only then
    # answered: a store that fails midway gets a 503, never a 200 cut short that an auditor
    # could take for the whole log, and the store's read ends before a slow client has read
    # anything (a long read holds SQLite's WAL from being checkpointed). Years of records
    # (several GB) are never held in the service's memory.
    import tempfile
    from contextlib import closing

    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)
    answer = None
    try:
        try:
            with closing(export(audit, start)) as pieces:
                for piece in pieces:
                    spool.write(piece.encode("utf-8"))
        except Exception as error:  # noqa: BLE001 - the store's failure is not the caller's
            log.exception("audit export failed")
            full = isinstance(error, OSError) and error.errno == errno.ENOSPC
            cause = (
                "no space left on the service's temporary disk" if full else type(error).__name__
            )
            return JSONResponse(
                {
                    "error": f"the audit store could not be read ({cause}); please retry",
                    "problems": [],
                },
                status_code=503,
            )
        spool.seek(0)
        answer = StreamingResponse(_blocks(spool), media_type="text/csv")
        return answer
    finally:
        # Until the response takes it over, the spool (maybe a temporary file of GBs) is ours
        # to close, whatever ended the read: a cancelled request or a KeyboardInterrupt too.
        if answer is None:
            spool.close()


# What an export keeps in memory before it spills to a temporary file, and the size of the
# pieces it is sent in.
_SPOOL_IN_MEMORY = 8 << 20
_BLOCK = 1 << 20


def _blocks(spool):
    """``spool``'s bytes, a block at a time; closed (its temporary file removed) however the
    response ends, a client gone midway included."""
    try:
        while block := spool.read(_BLOCK):
            yield block
    finally:
        spool.close()


def _no_card(cause: str | None) -> JSONResponse:
    return JSONResponse(
        {"error": f"{cause}; no model card to show", "problems": []}, status_code=503
    )


def _missing_card(version: str) -> JSONResponse:
    return JSONResponse(
        {"error": f"no model card found for version {version}", "problems": []}, status_code=404
    )
