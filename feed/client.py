"""The model feed, client side: what the desktop app uses to find and fetch a newer champion.

Every byte comes through python-tuf's ``Updater``, which checks signatures against the trusted
``root.json`` shipped by the installer and refuses tampered files, rollbacks, stale (frozen)
metadata, mix-and-match and endless data. On top of that the package is checked against its
card (``ModelPackage.load``) and a champion older than the installed model is refused.

No torch, mlflow, airflow or ``hub`` here: this runs in the clinic install.

Longer than most modules: the checks on top of TUF (card, size cap, free space, pace) and the
one-line messages for every way a feed can fail belong to one client; none is long.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import tuf
import urllib3
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import TargetFile
from tuf.ngclient import Updater, Urllib3Fetcher

from contract.package import CARD, MAX_PACKAGE_BYTES, ModelPackage, PackageError, files_for, sha256_of
from feed import CHAMPION

logger = logging.getLogger(__name__)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left, or over the user's quota


class _QuietRetries(logging.Filter):
    """urllib3 logs a WARNING for each retry of a failed connection ("Retrying (Retry(total=2…" three
    times for a feed host that does not resolve); the client ends with one ``FeedUnreachable`` that
    says it, so those lines only bury it (self-test, ``install.sh --verify``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING and str(record.msg).startswith("Retrying ("))


logging.getLogger("urllib3.connectionpool").addFilter(_QuietRetries())


class FeedClientError(RuntimeError):
    """Base class: no update happened; the message says why."""


class FeedUnreachable(FeedClientError):
    """The feed could not be reached (offline, server down, wrong URL): try again later."""


class UpdateRefused(FeedClientError):
    """The feed answered but what it offered failed verification: nothing was installed."""


@dataclasses.dataclass(frozen=True)
class Offer:
    """The feed's current champion, from signed metadata (nothing downloaded but champion.json)."""

    version: int
    files: tuple[str, ...]
    size: int  # bytes of every file
    card_sha256: str
    metrics: dict
    threshold: float
    sizes: dict = dataclasses.field(default_factory=dict)  # file name -> signed length

    def size_for(self, variant: str | None = None) -> int:
        """Bytes an app running ``variant`` downloads (``files_for``; ``None``: the whole package)."""
        return sum(self.sizes[n] for n in files_for(self.files, variant))


def _number(value: object) -> object:
    """Custom TUF metadata carries floats as decimal strings (canonical JSON has no floats)."""
    return float(value) if isinstance(value, str) else value


def _plain_name(name: object) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and Path(name).name == name and "\\" not in name


def redact_url(url: str | None) -> str:
    """``url`` without the password of its user info (``http://user:***@proxy:3128``): for messages and logs."""
    if not url:
        return ""
    try:
        parts = urllib3.util.parse_url(url)
    except (ValueError, urllib3.exceptions.HTTPError):
        return "<invalid URL>"
    if not parts.auth:
        return url
    user = parts.auth.split(":", 1)[0]
    return parts._replace(auth=f"{user}:***" if ":" in parts.auth else user).url


@dataclasses.dataclass(frozen=True)
class Pace:
    """How slow a download may be before it is given up (slow-retrieval attacks, dead links).

    Every request (metadata or model file) must average ``min_rate`` bytes/s once ``grace`` seconds
    have passed, and finish within ``max_seconds``. The defaults pass a 64 kbit/s clinic link
    (8 KB/s) and stop a server that drips a file at a byte a second within half a minute.
    """

    min_rate: float = 4096.0
    grace: float = 30.0
    max_seconds: float = 3600.0


class _TooSlow(tuf_errors.SlowRetrievalError):
    """A download that did not keep its ``Pace`` (tuf's own SlowRetrievalError also means "refused")."""


class _PacedFetcher(Urllib3Fetcher):
    """``Urllib3Fetcher`` whose body reads return what has arrived (``read1``) so that the pace is
    checked as the bytes come, not after a whole chunk (a chunk at a byte a second is hours)."""

    pace = Pace()

    def _chunks(self, response) -> Iterator[bytes]:
        start, received = time.monotonic(), 0
        try:
            while chunk := response.read1(self.chunk_size):
                received += len(chunk)
                yield chunk
                elapsed = time.monotonic() - start
                if elapsed > self.pace.max_seconds or (
                    elapsed > self.pace.grace and received / elapsed < self.pace.min_rate
                ):
                    raise _TooSlow(
                        f"{received} bytes in {elapsed:.0f} s, under the {self.pace.min_rate / 1024:.0f} KiB/s "
                        f"a download must keep up (or over {self.pace.max_seconds:.0f} s in all)"
                    )
        except urllib3.exceptions.TimeoutError as e:  # no data for socket_timeout seconds
            raise tuf_errors.SlowRetrievalError from e
        finally:
            response.release_conn()


class _ProxyFetcher(_PacedFetcher):
    """``Urllib3Fetcher`` sending every request through one explicit proxy (the clinic's), not the
    ``*_proxy`` environment variables: ``Urllib3Fetcher`` only needs ``.request()`` of its pool
    manager, which a ``urllib3.ProxyManager`` provides."""

    def __init__(self, proxy: str, socket_timeout: float, app_user_agent: str):
        super().__init__(socket_timeout=socket_timeout, app_user_agent=app_user_agent)
        if not hasattr(self, "_proxy_env"):  # tuf changed its internals: fail loudly, never bypass the proxy
            raise FeedClientError(f"This python-tuf ({tuf.__version__}) does not support a configured proxy")
        headers = {"User-Agent": f"{app_user_agent} python-tuf/{tuf.__version__}"}
        try:
            parts = urllib3.util.parse_url(proxy)
            # urllib3 does not turn user:password@ into a header by itself: Basic proxy authentication.
            auth = urllib3.make_headers(proxy_basic_auth=parts.auth) if parts.auth else None
            self._proxy_env = urllib3.ProxyManager(parts._replace(auth=None).url, headers=headers, proxy_headers=auth)
        except (ValueError, urllib3.exceptions.HTTPError) as e:
            raise FeedClientError(f"The proxy {redact_url(proxy)!r} is not a valid proxy URL: {e}") from None


class FeedClient:
    """Checks and downloads model packages from a TUF feed into ``cache_dir``.

    ``cache_dir/metadata`` keeps the last trusted metadata (the basis of rollback protection);
    ``cache_dir/packages/<version>/`` holds verified packages. One client per cache folder.
    ``timeout`` (seconds) bounds connecting and each wait for data: offline, a refused connection or
    an unknown host fail within a second; a server that accepts but never answers fails after about
    4 × ``timeout`` (urllib3 tries a GET four times). ``proxy`` (``http://host:port``) sends every
    request through that proxy; without it the ``*_proxy`` environment variables apply as usual.
    """

    def __init__(
        self,
        trusted_root: Path,
        feed_url: str,
        cache_dir: Path,
        timeout: float = 5.0,
        proxy: str | None = None,
        pace: Pace = Pace(),
    ):
        try:
            self._root_bytes = Path(trusted_root).read_bytes()
        except OSError as e:
            raise FeedClientError(f"Cannot read the trusted root {trusted_root}: {e.strerror or e}") from None
        self.feed_url = feed_url.rstrip("/")
        self.cache_dir = Path(cache_dir)
        self.timeout = timeout
        self.proxy = proxy or None
        self.pace = pace

    @property
    def packages_dir(self) -> Path:
        return self.cache_dir / "packages"

    # -- public -------------------------------------------------------------------------------

    def check(self, installed_version: int | None = None) -> Offer | None:
        """Refresh the signed metadata and return the feed's champion.

        ``None`` when the feed has no champion yet or offers exactly ``installed_version``.
        Raises ``FeedUnreachable`` or ``UpdateRefused`` (including for a champion older than
        ``installed_version``: an app never goes back).
        """
        with self._errors():
            offer = self._offer(self._updater())
        if offer is None or offer.version == installed_version:
            return None
        self._refuse_rollback(offer.version, installed_version)
        return offer

    def download(self, installed_version: int | None = None, variant: str | None = None) -> Path:
        """Download and verify the feed's champion; return its folder ``cache_dir/packages/<version>``.

        ``variant`` (``fp32``/``int8``): only the files an app running it needs (``files_for``: the
        card, the reference image and that variant's model); ``None``: every file. What an earlier
        download of this version left there is kept, so switching variant fetches only the other
        model file. Every file is verified by TUF (signature chain, length, sha256), then the folder
        by ``ModelPackage.load`` against ``model.json``; a new folder is moved into place, a file
        added to an existing one is renamed into it, each only once verified, so no partial or
        unverified file is ever left where the app looks.
        """
        self._clean_staging()
        with self._errors():
            updater = self._updater()
            offer = self._offer(updater)
            if offer is None:
                raise UpdateRefused(f"The feed at {self.feed_url} has no champion model yet")
            self._refuse_rollback(offer.version, installed_version)
            return self._fetch(updater, offer, variant)

    def download_version(self, version: int, card: Path, variant: str | None = None) -> Path:
        """Like ``download``, for a version the app already has the card of (``card``, its ``model.json``):
        fetch the files ``variant`` needs that the app lacks (a model installed as int8, now run as
        fp32). The card must be the one the feed signed; the version need not be the champion any
        more (its files stay on the feed)."""
        self._clean_staging()
        try:
            data = Path(card).read_bytes()
            names = (*json.loads(data)["files"], CARD)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UpdateRefused(f"The installed card {card} of version {version} is unreadable ({e})") from None
        with self._errors():
            updater = self._updater()
            updater.refresh()
            info = self._targetinfo(updater, version, CARD)
            if info.hashes["sha256"] != hashlib.sha256(data).hexdigest() or info.length != len(data):
                raise UpdateRefused(f"The installed card of version {version} is not the one the feed signed")
            if not all(map(_plain_name, names)):
                raise UpdateRefused(f"The card of version {version} lists files {list(names)}")
            try:
                threshold = float(((info.custom or {}).get("pneumoscan") or {})["threshold"])
            except (KeyError, TypeError, ValueError) as e:
                raise UpdateRefused(
                    f"The feed's model.json metadata for version {version} is malformed ({e})"
                ) from None
            infos = {n: self._targetinfo(updater, version, n) for n in names}
            sizes = {n: i.length for n, i in infos.items()}
            offer = Offer(
                version, tuple(sorted(names)), sum(sizes.values()), info.hashes["sha256"], {}, threshold, sizes
            )
            return self._fetch(updater, offer, variant)

    # -- internals ----------------------------------------------------------------------------

    def _updater(self) -> Updater:
        """A fresh ``Updater`` per operation (ngclient refreshes once per instance)."""
        meta = self.cache_dir / "metadata"
        meta.mkdir(parents=True, exist_ok=True)
        fetcher = (
            _ProxyFetcher(self.proxy, self.timeout, "PneumoScan")
            if self.proxy
            else _PacedFetcher(socket_timeout=self.timeout, app_user_agent="PneumoScan")
        )
        fetcher.pace = self.pace
        try:
            return Updater(
                str(meta),
                f"{self.feed_url}/metadata/",
                str(self.cache_dir / "targets"),
                f"{self.feed_url}/targets/",
                fetcher=fetcher,
                bootstrap=self._root_bytes,
            )
        except tuf_errors.RepositoryError as e:
            raise FeedClientError(f"The trusted root is not valid TUF root metadata: {e}") from None

    def _offer(self, updater: Updater) -> Offer | None:
        updater.refresh()
        info = updater.get_targetinfo(CHAMPION)
        if info is None:
            return None
        cached = updater.find_cached_target(info)  # unchanged champion → no download at all
        path = cached or updater.download_target(info)
        try:
            champion = json.loads(Path(path).read_bytes())
            version, files = int(champion["version"]), tuple(champion["files"])
        except (ValueError, KeyError, TypeError) as e:
            raise UpdateRefused(f"The feed's {CHAMPION} is malformed ({e})") from None
        if version < 1 or CARD not in files or "model.onnx" not in files or not all(map(_plain_name, files)):
            raise UpdateRefused(f"The feed's {CHAMPION} is malformed: version {version}, files {list(files)}")
        infos = [self._targetinfo(updater, version, name) for name in files]
        card = infos[files.index(CARD)]
        essentials = (card.custom or {}).get("pneumoscan") or {}
        if essentials.get("version") != version:
            raise UpdateRefused(
                f"The feed's champion says version {version} but its model.json metadata says "
                f"{essentials.get('version')!r}"
            )
        try:
            metrics = {k: _number(v) for k, v in (essentials.get("metrics") or {}).items()}
            threshold = float(essentials["threshold"])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UpdateRefused(f"The feed's model.json metadata for version {version} is malformed ({e})") from None
        size = sum(i.length for i in infos)
        if size > MAX_PACKAGE_BYTES:
            raise UpdateRefused(
                f"The feed's version {version} is {size / 2**20:.0f} MiB, over the "
                f"{MAX_PACKAGE_BYTES // 2**20} MiB a model package may be: not downloaded"
            )
        sizes = {name: i.length for name, i in zip(files, infos, strict=True)}
        return Offer(version, files, size, card.hashes["sha256"], metrics, threshold, sizes)

    @staticmethod
    def _targetinfo(updater: Updater, version: int, name: str) -> TargetFile:
        info = updater.get_targetinfo(f"models/{version}/{name}")
        if info is None:
            raise UpdateRefused(f"The feed's champion lists models/{version}/{name}, which is not a signed target")
        return info

    @staticmethod
    def _refuse_rollback(version: int, installed_version: int | None) -> None:
        if installed_version is not None and version < installed_version:
            raise UpdateRefused(
                f"The feed offers version {version}, older than the installed version "
                f"{installed_version}: refusing to go back"
            )

    def _fetch(self, updater: Updater, offer: Offer, variant: str | None) -> Path:
        """``packages/<version>`` holding (at least) the files ``variant`` needs, each verified."""
        final = self.packages_dir / str(offer.version)
        names = files_for(offer.files, variant)
        if final.is_dir() and not self._matches(final, offer):
            logger.warning("Discarding %s: it no longer matches the signed version %d", final, offer.version)
            shutil.rmtree(final)
        have = final.is_dir()
        missing = sorted(n for n in names if not (final / n).is_file()) if have else sorted(names)
        if not missing:
            return final
        self.packages_dir.mkdir(parents=True, exist_ok=True)
        size = sum(offer.sizes[n] for n in missing)
        free = shutil.disk_usage(self.packages_dir).free
        if free < 2 * size:  # the download, then the app's installed copy
            raise UpdateRefused(
                f"Not enough free disk space for version {offer.version}: {size / 2**20:.0f} MiB to download "
                f"and install, {free / 2**20:.0f} MiB free in {self.packages_dir}"
            )
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.packages_dir))
        try:
            for name in missing:
                self._download_file(updater, offer.version, name, staging / name)
            if have:  # same signed card: the already verified files stay, the new ones join them
                for name in missing:
                    os.replace(staging / name, final / name)
                self._check_package(final, offer, variant)
            else:
                self._check_package(staging, offer, variant)
                os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(staging, ignore_errors=True)
        logger.info("Downloaded and verified %s of model version %d into %s", ", ".join(missing), offer.version, final)
        return final

    @staticmethod
    def _matches(folder: Path, offer: Offer) -> bool:
        """An earlier download of this version whose card is the signed one and whose files verify."""
        try:
            pkg = ModelPackage.load(folder, verify=False)
            ok = pkg.version == offer.version and sha256_of(folder / CARD) == offer.card_sha256
            if ok:
                pkg.verify_present()
        except (PackageError, OSError):
            return False
        return ok

    def _download_file(self, updater: Updater, version: int, name: str, dest: Path) -> None:
        info = self._targetinfo(updater, version, name)
        try:
            updater.download_target(info, str(dest))
        except tuf_errors.LengthOrHashMismatchError:
            raise UpdateRefused(
                f"{info.path} from the feed does not match its signed sha256 and length: "
                "altered on the server or in transit"
            ) from None
        except tuf_errors.DownloadLengthMismatchError:
            raise UpdateRefused(
                f"The feed sent more than the signed {info.length} bytes of {info.path}: refusing endless data"
            ) from None

    @staticmethod
    def _check_package(folder: Path, offer: Offer, variant: str | None) -> None:
        try:
            pkg = ModelPackage.load(folder, variant=variant)
        except PackageError as e:
            raise UpdateRefused(f"Version {offer.version} from the feed fails its model card check: {e}") from None
        if pkg.version != offer.version or set(offer.files) != {*pkg.card["files"], CARD}:
            raise UpdateRefused(
                f"Version {offer.version} from the feed does not match its card "
                f"(card version {pkg.version}, files {sorted(pkg.card['files'])})"
            )
        if pkg.card["threshold"] != offer.threshold:
            raise UpdateRefused(
                f"Version {offer.version}'s card says threshold {pkg.card['threshold']!r} but the feed's signed "
                f"metadata says {offer.threshold!r}: refusing a package that says two things"
            )

    def _clean_staging(self) -> None:
        """Remove half-downloaded folders a crash may have left."""
        if self.packages_dir.is_dir():
            for p in self.packages_dir.glob(".incoming-*"):
                shutil.rmtree(p, ignore_errors=True)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn python-tuf and urllib3 errors into one-line FeedUnreachable / UpdateRefused messages."""
        try:
            yield
        except tuf_errors.DownloadLengthMismatchError as e:
            raise UpdateRefused(
                f"The feed sent more data than its signed metadata allows ({e}): refusing endless data"
            ) from None
        except tuf_errors.DownloadHTTPError as e:
            if e.status_code == 407:
                raise FeedUnreachable(
                    f"The proxy {redact_url(self.proxy) or '(from the environment)'} refused "
                    "the request (HTTP 407): check the proxy user name and password"
                ) from None
            raise FeedUnreachable(
                f"The feed at {self.feed_url} answered HTTP {e.status_code}; is the URL right and the feed published?"
            ) from None
        except _TooSlow as e:
            raise FeedUnreachable(
                f"The feed at {self.feed_url} sends too slowly ({e}); the app carries on with its model "
                "and tries again later"
            ) from None
        except (tuf_errors.DownloadError, urllib3.exceptions.HTTPError) as e:
            cause = e.__cause__ or e
            reason = getattr(cause, "reason", None) or cause
            via = f" through the proxy {redact_url(self.proxy)}" if self.proxy else ""
            raise FeedUnreachable(f"Cannot reach the feed at {self.feed_url}{via}: {reason}") from None
        except tuf_errors.ExpiredMetadataError as e:
            raise UpdateRefused(
                f"The feed's signed metadata has expired ({e}): the feed is stale or being "
                "replayed; the hub must run `feed refresh`"
            ) from None
        except tuf_errors.BadVersionNumberError as e:
            raise UpdateRefused(
                f"The feed served metadata older than, or not matching, what this app has already "
                f"seen ({e}): a rollback or mix-and-match attack, or a feed restored from an old "
                "backup"
            ) from None
        except tuf_errors.UnsignedMetadataError as e:
            raise UpdateRefused(f"The feed's metadata is not signed by the trusted keys ({e})") from None
        except tuf_errors.LengthOrHashMismatchError as e:
            raise UpdateRefused(
                f"The feed's metadata files do not match the sha256/length signed for them ({e}): "
                "mix-and-match or tampering"
            ) from None
        except tuf_errors.RepositoryError as e:
            raise UpdateRefused(f"The feed's metadata failed verification: {e}") from None
        except OSError as e:
            if e.errno not in DISK_FULL:
                raise
            free = shutil.disk_usage(self.cache_dir).free if self.cache_dir.is_dir() else 0
            raise UpdateRefused(
                f"The disk filled up while downloading from the feed ({free / 2**20:.0f} MiB free in "
                f"{self.cache_dir}): nothing was installed; free some space, the next check tries again"
            ) from None
