"""The promotion log: every alias change, who made it, why, and the policy values behind it.

MLflow keeps the current alias of a registered model but no history, so each change is written
twice: as a tag on the model version (``promotion.<time>.<alias>``, where a remote registry
keeps it for everyone) and as a JSON line in ``<models_dir>/promotions.jsonl`` that an auditor
can read with any tool.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from recommender._json import json_safe
from recommender.paths import models_dir

__all__ = [
    "PromotionEvent",
    "promotion_log_path",
    "append_events",
    "read_promotion_log",
    "current_actor",
    "TAG_PREFIX",
]

TAG_PREFIX = "promotion."


@dataclass(frozen=True)
class PromotionEvent:
    """One alias change.

    Attributes
    ----------
    time : str
        UTC, ISO 8601 with microseconds (sorts as text).
    model : str
        Registered model name.
    alias : str
        The alias that moved (``champion``, ``challenger``).
    version : str
        The version the alias now points to.
    previous_version : str or None
        The version it pointed to before, if any.
    previous_aliases : list of str
        Aliases ``version`` held before the change (e.g. ``["challenger"]`` for a promotion).
    kind : str
        ``gate`` (a training run), ``promote`` or ``rollback`` (a person).
    actor : str
    reason : str
    run_id : str or None
        The training run of ``version``.
    policy : dict
        Policy values behind the decision (challenger, champion, difference, with intervals).
    forced : bool
        A person made the version the champion with ``--force``: over a failed promotion gate
        (``policy`` then holds the gate's verdict) or over ``overrides``.
    overrides : list of dict
        What else ``--force`` overrode, each ``{"code", "statement"}``: ``catalog`` (trained
        under another intervention catalog than the installed one), ``request_fields`` (needs
        request fields the champion it replaced did not).
    recorded_late : str or None
        When the record was written, if not with the move: the process that moved the alias
        was stopped before it recorded the change, and a later command completed the record.
    """

    time: str
    model: str
    alias: str
    version: str
    previous_version: str | None
    kind: str
    actor: str
    reason: str
    previous_aliases: list = field(default_factory=list)
    run_id: str | None = None
    policy: dict = field(default_factory=dict)
    forced: bool = False
    overrides: list = field(default_factory=list)
    recorded_late: str | None = None

    @classmethod
    def now(cls, **fields) -> PromotionEvent:
        return cls(time=datetime.now(timezone.utc).isoformat(timespec="microseconds"), **fields)

    def to_dict(self) -> dict:
        # Strict JSON: a gate valued on no rows (the day-one evidence-only model) has NaN
        # figures, which the log and the tags held as NaN, and /model_card.json could not send.
        # Events read back from an older release's log or tags are made strict here too.
        return json_safe(asdict(self))

    @property
    def forced_over(self) -> list[tuple[str, str]]:
        """What ``--force`` overrode, ``(code, clause)`` each: ``gate``, ``catalog``,
        ``request_fields`` (empty when not forced; an event of an earlier release, forced
        with no overrides recorded, was forced over the gate)."""
        if not self.forced:
            return []
        over = []
        if self.policy.get("gate_passed") is False or not self.overrides:
            verdict = self.policy.get("gate_reason") or "no reason recorded"
            over.append(("gate", f"a failed promotion gate ({verdict})"))
        return over + [(str(o.get("code")), str(o.get("statement"))) for o in self.overrides]

    @property
    def tag_key(self) -> str:
        # MLflow tag keys accept letters, digits and "_-. /:"; the time keeps keys unique.
        return f"{TAG_PREFIX}{self.time.replace('+00:00', 'Z')}.{self.alias}"


def current_actor() -> str:
    """Who is acting: ``RECOMMENDER_ACTOR`` if set, else the login name."""
    actor = os.environ.get("RECOMMENDER_ACTOR")
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def promotion_log_path() -> Path:
    """``<models_dir>/promotions.jsonl``."""
    return models_dir() / "promotions.jsonl"


def append_events(events) -> Path:
    """Append events to the JSON-lines log in one write; returns the log's path."""
    path = promotion_log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(e.to_dict(), sort_keys=True) + "\n" for e in events)
    with path.open("a", encoding="utf-8") as log:
        log.write(lines)
    return path


def read_promotion_log(path: Path | None = None) -> list[PromotionEvent]:
    """The events of the JSON-lines log, oldest first (empty when there is no log)."""
    path = promotion_log_path() if path is None else Path(path)
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            events.append(PromotionEvent(**json.loads(line)))
    return events
