"""Whether the audit store can take records, for ``/readyz``: a replica whose store is down or
read-only gives crisis answers only, so a load balancer should send ordinary requests elsewhere.

One short query at a time (``SELECT 1``; on PostgreSQL ``SHOW transaction_read_only``, since a
standby or a database set read-only answers queries but refuses every record), its result kept
for :data:`CHECK_EVERY` seconds and waited for :data:`CHECK_WAIT` seconds at most: a readiness
probe neither queries the store on every call nor waits long for a server that does not answer
(a store silent past the wait is not ready; its check goes on and decides the next probes).
"""

from __future__ import annotations

import logging
import threading
import time

import sqlalchemy as sa

__all__ = ["StoreCheck", "CHECK_EVERY", "CHECK_WAIT"]

log = logging.getLogger("recommender.service")

# Seconds a check's result stands for (readiness probes come every few seconds).
CHECK_EVERY = 2.0
# Seconds a readiness probe waits for a check at most.
CHECK_WAIT = 1.0


class StoreCheck:
    """Whether ``engine``'s database answered its latest check (see the module's text)."""

    def __init__(self, engine: sa.Engine, *, shown: str):
        self._engine = engine
        self._shown = shown  # the store's URL without its password, for the log
        self._lock = threading.Lock()
        self._answered = True  # it has just been opened
        self._checked_at: float | None = None
        self._running: threading.Event | None = None

    def answers(self) -> bool:
        """True when the store answered its latest check; starts one when that is older than
        :data:`CHECK_EVERY` seconds and waits :data:`CHECK_WAIT` seconds for it at most."""
        with self._lock:
            running = self._running
            due = self._checked_at is None or time.monotonic() - self._checked_at >= CHECK_EVERY
            if running is None and due:
                running = self._running = threading.Event()
                threading.Thread(
                    target=self._check, args=(running,), name="audit-store-check", daemon=True
                ).start()
        if running is not None and not running.wait(CHECK_WAIT):
            return False  # silent past the wait: not ready while it is
        return self._answered

    def _check(self, done: threading.Event) -> None:
        try:
            with self._engine.connect() as connection:
                if connection.dialect.name == "postgresql":
                    # A server that answers but takes no writes (a standby after a failover, a
                    # database set read-only) fails every ordinary answer just the same.
                    read_only = connection.exec_driver_sql("SHOW transaction_read_only").scalar()
                    answered, cause = read_only != "on", "it is read-only"
                else:
                    connection.exec_driver_sql("SELECT 1")
                    answered, cause = True, None
        except Exception as error:  # noqa: BLE001 - any failure: ordinary answers would fail
            answered, cause = False, f"{type(error).__name__}"
        with self._lock:
            changed = answered != self._answered
            self._answered = answered
            self._checked_at = time.monotonic()
            self._running = None
        done.set()
        if changed and answered:
            log.info("the audit store %s takes records again: ready", self._shown)
        elif changed:
            log.warning(
                "the audit store %s cannot take records (%s): not ready; only crisis "
                "answers can be given until it can",
                self._shown,
                cause,
            )
