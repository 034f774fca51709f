"""A worker's reload watcher: every ``reload_poll_seconds`` it follows the /reloads other
workers announce in the audit store, opens the store while none is open, and tries the
champion again while none is served; a version announced that cannot be loaded here leaves the
worker serving its own, ``stale``. A part of :class:`~recommender.service._serving.Serving`
(its base class), whose store, engine and swaps it uses; its clock is this module's ``time``.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone

from recommender.errors import ModelUnavailable
from recommender.service._catalog_file import file_digest
from recommender.service._readiness import StaleModel
from recommender.service._unservable import Unservable, _no_model_reason

__all__ = ["ReloadWatcher", "CHAMPION_RETRY_MAX_SECONDS"]

log = logging.getLogger("recommender.service")


# A worker serving no model (the registry down at start, no champion yet, a broken catalog), or
# one that could not load the version a /reload announced, tries again by itself: first after
# reload_poll_seconds, then twice as long after each failure, up to this many seconds between
# tries (a damaged model is not downloaded and unpickled every few seconds by every worker).
CHAMPION_RETRY_MAX_SECONDS = 300.0


class ReloadWatcher:
    """Follows the /reloads of other workers and retries a missing champion (see the module's
    docstring); mixed into :class:`~recommender.service._serving.Serving`."""

    def _start_watching(self) -> None:
        """Start the watcher's thread; the champion's first retry is due after
        ``reload_poll_seconds``."""
        self._champion_wait = self.config.reload_poll_seconds
        self._champion_retry_at = time.monotonic() + self._champion_wait
        self._stopping = threading.Event()
        threading.Thread(target=self._follow_reloads, name="follow-reloads", daemon=True).start()

    def _latest_reload_id(self) -> int:
        if self.audit is None:  # the watcher follows from the store's opening on
            return 0
        try:
            latest = self.audit.latest_reload()
        except Exception:  # noqa: BLE001 - the store may be down now; the watcher retries
            log.warning("could not read the reload records; following from now on")
            return 0
        return latest[0] if latest else 0

    def _follow_reloads(self) -> None:
        """The watcher: :meth:`_follow_once` every ``reload_poll_seconds`` until shutdown."""
        while not self._stopping.wait(self.config.reload_poll_seconds):
            self._follow_once()

    def _follow_once(self) -> None:
        """Load the champion when another worker (or replica) has announced a /reload.

        One query on the audit store (or, while none is open, one try to open it:
        :meth:`_open_store`); a failed query is logged once until it succeeds again. A version
        announced that cannot be loaded here leaves this worker serving what it has, ``stale``
        (:meth:`_fell_behind`), and is tried again as a missing champion is. A worker serving
        no model tries the champion again first (:meth:`_retry_champion`).
        """
        self._retry_champion()
        if not self._open_store():  # no store yet: no reload can be announced
            return
        try:
            # Read under the reload lock: a /reload of this worker running meanwhile has then
            # swapped and announced its version, which is the latest; read before it, another
            # worker's older announcement was loaded after it and served until the next poll.
            with self._reload_lock:
                latest = self.audit.latest_reload()
                if latest is not None and latest[0] > self._reload_seen:
                    self._follow(*latest)
        except Exception as error:  # noqa: BLE001 - never let the watcher die
            failure = type(error).__name__
            if failure != self._follow_failure:  # a store down: once, not every poll
                log.exception(
                    "following a /reload failed; still serving version %s",
                    None if self.engine is None else self.engine.version,
                )
            self._follow_failure = failure
        else:
            self._follow_failure = None

    def _follow(self, announcement: int, version: str) -> None:
        """Serve ``version``, which /reload record ``announcement`` put in service elsewhere,
        under the catalog file as it is now (a /reload of the same version may have been for
        an edited catalog)."""
        engine = self.engine
        if engine is not None and version == engine.version:
            if file_digest() == engine.catalog.sha256:
                self._reload_seen, self.stale = announcement, None
                return
            try:
                self._swap_in_catalog(engine)
            except Exception as error:  # noqa: BLE001 - the served catalog stays; said, retried
                self._fell_behind(announcement, version, error)
                return
            log.info(
                "followed a /reload: version %s under catalog %s (sha256 %s)",
                version,
                self.catalog.version,
                self.catalog.sha256,
            )
            self._reload_seen, self.stale = announcement, None
            return
        if announcement == self._stale_announcement and time.monotonic() < self._champion_retry_at:
            return  # failed before: tried again when due, or at once on a newer /reload
        # The version the reload served, not the champion of now: moved since (a promotion, a
        # training run), it would leave the workers serving two.
        try:
            previous, engine = self._swap_in_champion(version)
        except Exception as error:  # noqa: BLE001 - the served model stays; said, tried again
            self._fell_behind(announcement, version, error)
            return
        log.info("followed a /reload: version %s -> %s", previous, engine.version)
        self._reload_seen = announcement

    def _fell_behind(self, announcement: int, version: str, error: Exception) -> None:
        """Keep serving after ``version``, announced by a /reload, failed to load; say so.

        Logged when the version or the cause changes, naming the version and the cause (a
        missing file by its path); ``stale`` then tells /readyz (200, no file named) and the
        card. Tried again after ``reload_poll_seconds``, then less and less often.
        """
        known = isinstance(error, (Unservable, ModelUnavailable))
        cause = str(error) if known else f"{type(error).__name__}: {error}"
        first = announcement != self._stale_announcement
        self._stale_announcement = announcement
        engine, before = self.engine, self.stale
        if engine is None:  # no model to be stale with: the champion's retries go on as they are
            if first:
                log.error(
                    "version %s, announced by a /reload, could not be loaded: %s", version, cause
                )
            return
        wait = self.config.reload_poll_seconds if first else 2 * self._champion_wait
        self._champion_wait = min(wait, CHAMPION_RETRY_MAX_SECONDS)
        self._champion_retry_at = time.monotonic() + self._champion_wait
        # The version it serves: what the /reload changed, and this worker could not read, is
        # the catalog file.
        catalogs = (None, None)
        if version == engine.version:
            served, now = engine.catalog, file_digest()
            catalogs = (
                f"{served.version} (sha256 {served.sha256})",
                "unreadable" if now is None else f"sha256 {now}",
            )
        if before is None or (before.champion, before.cause) != (version, cause):
            if catalogs[0] is not None:
                log.error(
                    "the catalog file, which a /reload of version %s put in force, could not "
                    "be read: %s; still serving version %s under intervention catalog %s "
                    "(/readyz says stale), reading it again every %g s and at the next /reload",
                    version,
                    cause,
                    engine.version,
                    catalogs[0],
                    self.config.reload_poll_seconds,
                    exc_info=error if not known else None,
                )
            else:
                log.error(
                    "version %s, which a /reload announced as the champion, could not be "
                    "loaded: %s; still serving version %s (/readyz says stale), trying version "
                    "%s again in %g s or at the next /reload",
                    version,
                    cause,
                    engine.version,
                    version,
                    self._champion_wait,
                    exc_info=error if not known else None,
                )
        since = (
            before.since
            if before is not None and before.champion == version
            else datetime.now(timezone.utc).isoformat(timespec="seconds")
        )
        self.stale = StaleModel(
            engine.version, version, _no_model_reason(error), cause, since, *catalogs
        )

    def _retry_champion(self) -> None:
        """While no model is served, load the registry's champion when its next try is due.

        A registry that was down at start, a champion registered since, a catalog fixed since:
        the worker serves every answer again without a /reload. Each failure doubles the wait
        (up to :data:`CHAMPION_RETRY_MAX_SECONDS`) and is logged when its cause changes.
        """
        if self.engine is not None or time.monotonic() < self._champion_retry_at:
            return
        try:
            _, engine = self._swap_in_champion()
        except Exception as error:  # noqa: BLE001 - crisis answers go on; tried again later
            self._champion_wait = min(2 * self._champion_wait, CHAMPION_RETRY_MAX_SECONDS)
            self._champion_retry_at = time.monotonic() + self._champion_wait
            cause = (
                str(error)
                if isinstance(error, Unservable)
                else f"no model is loaded ({type(error).__name__}: {error})"
            )
            if cause != self.load_error:
                log.warning("%s; trying again in %g s", cause, self._champion_wait)
            self.load_error, self.load_reason = cause, _no_model_reason(error)
            return
        log.info("the champion is loaded now: serving model version %s", engine.version)
