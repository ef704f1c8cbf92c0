"""One background update step: ask the feed for a newer champion, verify it, install it, switch to it.

Synchronous and Qt-free (``desktop_app.ui.update_controller`` runs it off the GUI thread). A new
version is only installed into the store after it has passed every check — TUF signatures and
hashes (``FeedClient``), the card's file hashes (``ModelPackage``), and loading in onnxruntime with
the card's reference probabilities reproduced (``Engine``) — and only activated once it has also
loaded from its store folder. Only the files of the variant the app runs are downloaded; a variant
switched to later has its model file fetched by the next check (``_complete_active``). Whatever goes
wrong, the store is left as it was and the outcome says why: the app carries on with the model it has.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
from pathlib import Path

from contract.package import CARD
from desktop_app.engine import Engine, EngineError
from desktop_app.models import ModelStore, StoreError
from feed.client import DISK_FULL, FeedClient, FeedClientError, FeedUnreachable, UpdateRefused

logger = logging.getLogger(__name__)


class Status(enum.Enum):
    NOT_CONFIGURED = "not configured"  # no feed URL or no trusted root: updates are off
    UP_TO_DATE = "up to date"
    UPDATED = "updated"  # ``engine`` is the new, active model
    OFFLINE = "offline"  # feed unreachable: try again later
    REFUSED = "refused"  # the feed's offer failed verification (or could not be installed)


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: Status
    version: int | None = None  # the store's active version after this step
    reason: str = ""  # one line for the user (tooltip, log); empty when all went well
    engine: Engine | None = None  # the new model, loaded and self-checked (UPDATED only)
    rolled_back: int | None = None  # the feed's champion, a version this PC rolled back from (UP_TO_DATE)


class ModelUpdater:
    """Checks ``feed_url`` (trusted through ``trusted_root``) and keeps ``store`` on its newest champion."""

    def __init__(
        self,
        store: ModelStore,
        feed_url: str,
        trusted_root: str | os.PathLike | None,
        cache_dir: str | os.PathLike,
        variant: str = "fp32",
        proxy: str | None = None,
        timeout: float = 5.0,
    ):
        self.store, self.feed_url, self.variant, self.proxy, self.timeout = store, feed_url, variant, proxy, timeout
        self.trusted_root = Path(trusted_root) if trusted_root else None
        self.cache_dir = Path(cache_dir)

    @classmethod
    def from_settings(cls, settings, store: ModelStore | None = None) -> ModelUpdater:
        """The updater the app's settings describe (the store defaults to the per-user one)."""
        paths = settings.paths()
        store = store or ModelStore.from_settings(settings)
        return cls(
            store,
            settings.feed_url,
            settings.trusted_root or None,
            paths.feed_cache,
            settings.variant,
            settings.proxy or None,
        )

    def not_configured_reason(self) -> str:
        """Why updates are off, or "" when they are on."""
        if not self.feed_url:
            return "No model feed is configured (feed_url)"
        if self.trusted_root is None:
            return "The feed's trusted root.json is not configured (trusted_root)"
        return ""

    def update_once(self) -> Outcome:
        """Check the feed once; download, verify, install and activate a newer champion if there is one."""
        off = self.not_configured_reason()
        if off:
            return Outcome(Status.NOT_CONFIGURED, self.store.active_version(), off)
        try:
            client = FeedClient(self.trusted_root, self.feed_url, self.cache_dir, self.timeout, self.proxy)
            known = self.store.newest_known()
            offer = client.check(known)
            if offer is None:
                logger.info("Model feed %s: nothing newer than version %s", self.feed_url, known)
                return self._repair(client, known) or self._complete_active(client) or self._up_to_date(client, known)
            logger.info(
                "Model feed %s offers version %d (%d bytes as %s); downloading",
                self.feed_url,
                offer.version,
                offer.size_for(self.variant),
                self.variant,
            )
            return self._switch_to(client.download(known, self.variant))
        except FeedUnreachable as e:
            return self._failed(Status.OFFLINE, str(e))
        except UpdateRefused as e:
            return self._failed(Status.REFUSED, str(e))
        except FeedClientError as e:  # the trusted root or the proxy setting is unusable
            return self._failed(Status.NOT_CONFIGURED, str(e))

    def _up_to_date(self, client: FeedClient, known: int | None) -> Outcome:
        """Nothing newer; said plainly when the feed's champion is a version this PC rolled back from
        (before, "up to date" while the feed served it and the app ran an older one)."""
        active = self.store.active_version()
        if known is not None and known != active and self.store.is_skipped(known):
            offer = client.check(None)
            if offer is not None and offer.version == known:
                reason = (
                    f"The feed's model is version {known}, which was rolled back on this computer: the app keeps "
                    f"version {active}. To take version {known} again: Model › Allow version {known} again "
                    f"(or `pneumo-desktop update --allow {known}`)"
                )
                return Outcome(Status.UP_TO_DATE, active, reason, rolled_back=known)
        return Outcome(Status.UP_TO_DATE, active)

    def allow_again(self, version: int) -> Outcome:
        """Undo a rollback from ``version``: use it again (installed: at once; else from the feed)."""
        self.store.allow(version)
        if version not in self.store.installed():
            return self.update_once()
        try:
            engine = Engine(self.store.path(version), self.variant, site=self.store.site)
            self.store.activate(version)
        except (StoreError, EngineError, OSError) as e:
            return self._failed(Status.REFUSED, f"Cannot use model version {version} again: {e}")
        logger.info("Model version %d allowed again and active", version)
        return Outcome(Status.UPDATED, version, engine=engine)

    def _repair(self, client: FeedClient, version: int | None) -> Outcome | None:
        """The installed copy of the feed's champion ``version`` is damaged on disk (the app fell back to
        an older model): download it again and reinstall it over the damaged copy. None when it is
        sound, not installed, or rolled back from (a rejected model is not repaired)."""
        if version is None or self.store.is_skipped(version):
            return None
        damage = self.store.damage(version)
        if not damage:
            return None
        logger.warning("Installed model version %d is damaged (%s); downloading it again", version, damage)
        return self._switch_to(client.download(None, self.variant))

    def _complete_active(self, client: FeedClient) -> Outcome | None:
        """The active model lacks the file of the variant now set (it was downloaded as the other one):
        fetch that file from the feed and return the model reopened as ``variant``; None when nothing lacks."""
        active = self.store.active_version()
        if active is None or not self.store.missing(active, self.variant):
            return None
        folder = self.store.path(active)
        logger.info("Model version %d has no %s file yet; fetching it from %s", active, self.variant, self.feed_url)
        downloaded = client.download_version(active, folder / CARD, self.variant)
        try:
            self.store.install(downloaded, self.variant)
            engine = Engine(self.store.path(active), self.variant, site=self.store.site)
        except (StoreError, EngineError, OSError) as e:
            return self._failed(Status.REFUSED, f"Cannot add the {self.variant} file of model version {active}: {e}")
        logger.info("Model version %d now runs as %s", active, self.variant)
        return Outcome(Status.UPDATED, active, engine=engine)

    def _switch_to(self, downloaded: Path) -> Outcome:
        try:
            Engine(downloaded, self.variant)  # refused here, the package never reaches the store
        except EngineError as e:
            return self._failed(Status.REFUSED, str(e))
        previous = self.store.active_version()
        try:
            version = self.store.install(downloaded, self.variant)  # activate() puts ``previous`` on the history
        except OSError as e:
            full = " (the disk is full: free some space, the next check tries again)" if e.errno in DISK_FULL else ""
            return self._failed(Status.REFUSED, f"Cannot install the new model: {e.strerror or e}{full}")
        except StoreError as e:
            return self._failed(Status.REFUSED, f"Cannot install the new model: {e}")
        try:
            # what the app will run: the store's copy
            engine = Engine(self.store.path(version), self.variant, site=self.store.site)
            self.store.activate(version)
        except (StoreError, EngineError, OSError) as e:
            try:
                self.store.skip(version)  # installed but unusable: never picked as "newest" later
            except OSError:
                logger.exception("Cannot mark model version %d as unusable", version)
            return self._failed(Status.REFUSED, f"Cannot install the new model: {e}")
        logger.info("Switched from model version %s to %d", previous, version)
        return Outcome(Status.UPDATED, version, engine=engine)

    def roll_back(self) -> Engine:
        """Load the previous model and, only once it passed its checks, make it active again.

        The version rolled back from is skipped by later checks (``ModelStore.rollback``): the
        feed has to offer something newer before the app switches again. Raises ``StoreError``
        (no previous model) or ``EngineError`` (it fails its checks; nothing changed).
        """
        previous = self.store.previous_version()
        if previous is None:
            raise StoreError("There is no previous model to roll back to")
        engine = Engine(self.store.path(previous), self.variant, site=self.store.site)
        current = self.store.active_version()
        self.store.rollback()  # switches to previous_version(), which nothing else changes meanwhile
        logger.info("Rolled back from model version %s to %d", current, previous)
        return engine

    def _failed(self, status: Status, reason: str) -> Outcome:
        reason = reason.splitlines()[0] if reason else status.value
        logger.warning("Model update %s: %s", status.value, reason)
        return Outcome(status, self.store.active_version(), reason)
