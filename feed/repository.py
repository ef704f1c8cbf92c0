"""The model feed, repository side: a TUF repository of static files (python-tuf Metadata API).

Layout (docs/model-package.md, "Feed")::

    <feed>/metadata/  1.root.json, N.targets.json, N.snapshot.json, timestamp.json, root.json
    <feed>/targets/   models/<version>/<sha256>.<file>   and   <sha256>.champion.json

One ed25519 key per top-level role, threshold 1, private keys as PEM files. The online keys
(targets, snapshot, timestamp) sit in the keys folder, 0600, and are refused when other users can
read them; ``publish`` and ``refresh`` need only those. The root key is written apart, to
``offline_key_path`` (``<keys>-offline/root.pem``), encrypted with a passphrase when one is given
(``feed init`` asks for one): it signs root only (``init_feed``, a root re-sign, ``rotate`` of the
online keys) and belongs off the hub. ``rotate`` replaces online keys through a new root version that
installed apps follow from the root they shipped with.

Longer than most modules: init, publish, refresh and status share the signing and metadata helpers
of one TUF repository.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    TOP_LEVEL_ROLE_NAMES,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)

from contract.atomic import sync_folder_entries, write_atomic
from contract.package import CARD, ModelPackage, PackageError
from feed import CHAMPION

logger = logging.getLogger(__name__)

ROLES = ("root", "targets", "snapshot", "timestamp")


class FeedError(RuntimeError):
    """The feed cannot be created, published to or read; the message says why."""


@dataclasses.dataclass(frozen=True)
class Expiry:
    """How long each role's signature stays valid after signing.

    The timestamp is re-signed by ``refresh`` (a daily cron job), so its period is the longest
    a client can be kept on stale metadata (freeze attack) — and the longest the hub may be down.
    """

    root: timedelta = timedelta(days=365)
    targets: timedelta = timedelta(days=90)
    snapshot: timedelta = timedelta(days=30)
    timestamp: timedelta = timedelta(days=7)


# How long before its expiry ``feed status`` warns about a role: a missed daily refresh (timestamp),
# a stalled publish (snapshot, targets), the offline root key to bring back (root).
WARN_BEFORE = {
    "root": timedelta(days=30),
    "targets": timedelta(days=14),
    "snapshot": timedelta(days=5),
    "timestamp": timedelta(days=2),
}


@dataclasses.dataclass(frozen=True)
class RoleStatus:
    version: int
    expires: datetime


@dataclasses.dataclass(frozen=True)
class FeedStatus:
    champion: int | None
    files: tuple[str, ...]
    roles: dict[str, RoleStatus]
    registered_version: str | None = None  # the champion's MLflow registry version, from its card

    def expired(self, now: datetime | None = None) -> list[str]:
        now = now or datetime.now(UTC)
        return [r for r, s in self.roles.items() if s.expires <= now]

    def expiring(self, now: datetime | None = None) -> list[str]:
        """Roles not expired yet but inside their warning window (``WARN_BEFORE``): re-sign them soon."""
        now = now or datetime.now(UTC)
        return [r for r, s in self.roles.items() if now < s.expires <= now + WARN_BEFORE[r]]

    def to_dict(self) -> dict:
        return {
            "champion": self.champion,
            "registered_version": self.registered_version,
            "files": list(self.files),
            "roles": {r: {"version": s.version, "expires": s.expires.isoformat()} for r, s in self.roles.items()},
        }


# ---- files ------------------------------------------------------------------------------------


def metadata_dir(feed_dir: Path) -> Path:
    return Path(feed_dir) / "metadata"


def _targets_dir(feed_dir: Path) -> Path:
    return Path(feed_dir) / "targets"


def _consistent_name(target_path: str, sha256: str) -> str:
    """``models/3/model.onnx`` → ``models/3/<sha256>.model.onnx`` (what ngclient requests)."""
    dirname, sep, base = target_path.rpartition("/")
    return f"{dirname}{sep}{sha256}.{base}"


@contextlib.contextmanager
def _publish_lock(feed_dir: Path) -> Iterator[None]:
    """One writer at a time (a DAG run and a person may both publish)."""
    if not metadata_dir(feed_dir).is_dir():
        raise FeedError(f"{feed_dir} is not a feed (no metadata/ folder); create one with `feed init`")
    with open(Path(feed_dir) / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FeedError(f"Another publish or refresh is running on {feed_dir}; try again when it ends") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ---- keys -------------------------------------------------------------------------------------


ONLINE = ("targets", "snapshot", "timestamp")
ROOT_PASSPHRASE_ENV = "PNEUMO_FEED_ROOT_PASSPHRASE"
MIN_PASSPHRASE = 12  # characters; the root key's file may be copied anywhere once it is offline


def _crypto():
    """``cryptography``'s serialization module, imported where keys are handled: the hub has it (the
    ``hub`` extra); serving and reading a feed (``feed.server``, ``status``, the bundle build's ``--feed``)
    does not need it."""
    from cryptography.hazmat.primitives import serialization

    return serialization


def load_pem_private_key(data: bytes, password: bytes | None):
    return _crypto().load_pem_private_key(data, password)


def offline_key_path(keys_dir: Path) -> Path:
    """Where ``init_feed`` writes the root key: a folder beside the online keys, to be taken away."""
    keys_dir = Path(keys_dir)
    return keys_dir.parent / f"{keys_dir.name}-offline" / "root.pem"


def env_passphrase() -> bytes | None:
    """``PNEUMO_FEED_ROOT_PASSPHRASE``, for automatic feed creation and unattended root re-signs."""
    value = os.environ.get(ROOT_PASSPHRASE_ENV)
    return value.encode() if value else None


def check_passphrase(passphrase: bytes) -> None:
    if len(passphrase.decode(errors="replace").strip()) < MIN_PASSPHRASE:
        raise FeedError(f"The root key's passphrase must have at least {MIN_PASSPHRASE} characters")


def key_is_encrypted(key_file: Path) -> bool:
    try:
        return b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in Path(key_file).read_bytes()[:200]
    except OSError:
        return False


def _pem(signer: CryptoSigner, passphrase: bytes | None) -> bytes:
    if passphrase is None:
        return signer.private_bytes
    check_passphrase(passphrase)
    ser = _crypto()
    key = ser.load_pem_private_key(signer.private_bytes, None)
    return key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.BestAvailableEncryption(passphrase))


def _write_key(path: Path, signer: CryptoSigner, passphrase: bytes | None = None) -> None:
    """A new private key file, 0600 from its creation, durable before anything refers to it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(_pem(signer, passphrase))
        f.flush()
        os.fsync(f.fileno())
    sync_folder_entries(path.parent)


def _load_signer(key_file: Path, root: Root, role: str, passphrase: bytes | None = None) -> CryptoSigner:
    """Load a PEM key (decrypted with ``passphrase`` when it is encrypted) and check it is one of
    ``role``'s keys in the feed's current root."""
    try:
        data = Path(key_file).read_bytes()
    except FileNotFoundError:
        hint = " (the root key belongs offline: pass its path)" if role == "root" else ""
        raise FeedError(f"No {role} key at {key_file}{hint}") from None
    encrypted = key_is_encrypted(key_file)
    if encrypted and passphrase is None:
        raise FeedError(
            f"{key_file} is encrypted: give its passphrase (on the terminal, --passphrase-file or "
            f"{ROOT_PASSPHRASE_ENV})"
        )
    try:
        private = load_pem_private_key(data, passphrase if encrypted else None)
    except ValueError as e:
        if encrypted:
            raise FeedError(f"Wrong passphrase for {key_file} (or the file is damaged)") from None
        raise FeedError(f"{key_file} is not a PEM private key ({e})") from None
    except TypeError as e:
        raise FeedError(f"{key_file} is not a PEM private key ({e})") from None
    signer = CryptoSigner(private)
    if signer.public_key.keyid not in root.roles[role].keyids:
        raise FeedError(f"{key_file} is not a {role} key of this feed (keyid {signer.public_key.keyid[:12]}…)")
    return signer


def _check_private(path: Path) -> None:
    """The online keys sign what every clinic installs: readable by the hub's service user only."""
    if os.name != "posix":
        return
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return  # said by _load_signer
    if mode & 0o077:
        raise FeedError(
            f"{path} can be read or written by other users (mode {oct(mode & 0o777)}): the feed's online keys "
            f"must be private to the hub's service user. Run: chmod 600 {path}"
        )


def _finish_rotation(keys_dir: Path, root: Root, role: str) -> None:
    """A ``rotate`` killed between writing the new root and putting the new key in place: finish it
    (the new key is the root's), or drop a new key that the root never took (killed before it)."""
    new = Path(keys_dir) / f"{role}.pem.new"
    if not new.exists():
        return
    try:
        keyid = CryptoSigner(load_pem_private_key(new.read_bytes(), None)).public_key.keyid
    except (OSError, ValueError, TypeError):
        keyid = None
    if keyid in root.roles[role].keyids:
        os.replace(new, Path(keys_dir) / f"{role}.pem")
        logger.warning("Finished an interrupted rotation of the %s key", role)
    else:
        new.unlink()
    sync_folder_entries(Path(keys_dir))


def _signers(keys_dir: Path, root: Root, roles: tuple[str, ...]) -> dict[str, CryptoSigner]:
    out = {}
    for r in roles:
        _finish_rotation(keys_dir, root, r)
        path = Path(keys_dir) / f"{r}.pem"
        _check_private(path)
        out[r] = _load_signer(path, root, r)
    return out


# ---- reading the current state ----------------------------------------------------------------


@dataclasses.dataclass
class _State:
    root: Metadata[Root]
    targets: Metadata[Targets]
    snapshot: Metadata[Snapshot]
    timestamp: Metadata[Timestamp]


def _load_md(path: Path) -> Metadata:
    try:
        return Metadata.from_file(str(path))
    except FileNotFoundError:
        raise FeedError(f"{path} is missing: not a feed, or a damaged one (create one with `feed init`)") from None
    except Exception as e:  # a deserialisation error of any kind: say which file
        raise FeedError(f"{path} is not valid TUF metadata ({e})") from None


def _latest_root_path(meta: Path) -> Path:
    versions = [int(m.group(1)) for p in meta.glob("*.root.json") if (m := re.fullmatch(r"(\d+)\.root\.json", p.name))]
    if not versions:
        raise FeedError(f"{meta} has no N.root.json: not a feed (create one with `feed init`)")
    return meta / f"{max(versions)}.root.json"


def _load_state(feed_dir: Path) -> _State:
    meta = metadata_dir(feed_dir)
    root = _load_md(_latest_root_path(meta))
    timestamp = _load_md(meta / "timestamp.json")
    snapshot = _load_md(meta / f"{timestamp.signed.snapshot_meta.version}.snapshot.json")
    targets = _load_md(meta / f"{snapshot.signed.meta['targets.json'].version}.targets.json")
    return _State(root, targets, snapshot, timestamp)


def _read_champion(feed_dir: Path, targets: Targets) -> dict | None:
    info = targets.targets.get(CHAMPION)
    if info is None:
        return None
    path = _targets_dir(feed_dir) / _consistent_name(CHAMPION, info.hashes["sha256"])
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise FeedError(f"The feed's {CHAMPION} cannot be read ({e}); the feed is damaged") from None


# ---- signing ----------------------------------------------------------------------------------


def _sign_bytes(md: Metadata, signer: CryptoSigner, expires: datetime, bump: bool = True) -> bytes:
    if bump:  # every re-signed file is a new version: clients refuse anything not newer than what they saw
        md.signed.version += 1
    md.signed.expires = expires
    md.sign(signer)
    return md.to_bytes()


def _sign_top_level(
    state: _State, signers: dict[str, CryptoSigner], expiry: Expiry, now: datetime, new_targets: bool, bump: bool = True
) -> list[tuple[str, bytes]]:
    """Sign [targets →] snapshot → timestamp; return ``(file name, bytes)`` in the order they must be written.

    Everything is signed in memory first, so a signing error leaves the feed untouched.
    """
    out = []
    if new_targets:
        data = _sign_bytes(state.targets, signers["targets"], now + expiry.targets, bump)
        out.append((f"{state.targets.signed.version}.targets.json", data))
        state.snapshot.signed.meta["targets.json"] = MetaFile.from_data(state.targets.signed.version, data, ["sha256"])
    data = _sign_bytes(state.snapshot, signers["snapshot"], now + expiry.snapshot, bump)
    out.append((f"{state.snapshot.signed.version}.snapshot.json", data))
    state.timestamp.signed.snapshot_meta = MetaFile.from_data(state.snapshot.signed.version, data, ["sha256"])
    out.append(("timestamp.json", _sign_bytes(state.timestamp, signers["timestamp"], now + expiry.timestamp, bump)))
    return out


def _write_metadata(feed_dir: Path, files: list[tuple[str, bytes]]) -> None:
    for name, data in files:  # each in place before the next one refers to it; timestamp.json last
        write_atomic(metadata_dir(feed_dir) / name, data)


def _canonical(value):
    """TUF's canonical JSON has no floats: custom metadata carries them as exact decimal strings."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


# ---- public API -------------------------------------------------------------------------------


def init_feed(
    feed_dir: Path,
    keys_dir: Path,
    expiry: Expiry = Expiry(),
    now: datetime | None = None,
    root_passphrase: bytes | None = None,
    root_key_path: Path | None = None,
) -> Path:
    """Create an empty feed: one ed25519 key per role and signed v1 metadata.

    The online keys go to ``keys_dir`` (0600); the root key to ``root_key_path`` (default
    ``offline_key_path(keys_dir)``), encrypted with ``root_passphrase`` when given (PKCS#8, the best
    encryption ``cryptography`` offers). Returns the path of the trust root
    (``<feed>/metadata/root.json``) that the installer ships. Refuses to touch an existing feed or keys.
    """
    feed_dir, keys_dir = Path(feed_dir).resolve(), Path(keys_dir).resolve()
    root_key_path = Path(root_key_path or offline_key_path(keys_dir)).resolve()
    meta = metadata_dir(feed_dir)
    if meta.exists() and any(meta.iterdir()):
        raise FeedError(f"{feed_dir} already holds a feed; refusing to overwrite it")
    if keys_dir == feed_dir or feed_dir in keys_dir.parents:
        raise FeedError(
            f"The keys folder {keys_dir} is inside the feed folder {feed_dir}, which is served to "
            "everyone; choose a keys folder outside it"
        )
    if feed_dir == root_key_path.parent or feed_dir in root_key_path.parents:
        raise FeedError(
            f"The root key {root_key_path} would be inside the feed folder {feed_dir}; choose another place"
        )
    existing = [str(keys_dir / f"{r}.pem") for r in ROLES if (keys_dir / f"{r}.pem").exists()]
    existing += [str(root_key_path)] if root_key_path.exists() else []
    if existing:
        raise FeedError(
            f"Keys already exist ({', '.join(existing)}): the keys folder already holds keys; "
            "refusing to overwrite them"
        )
    if root_passphrase is not None:
        check_passphrase(root_passphrase)
    now = now or datetime.now(UTC)

    signers = {r: CryptoSigner.generate_ed25519() for r in ROLES}
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for role in ONLINE:
        _write_key(keys_dir / f"{role}.pem", signers[role])
    _write_key(root_key_path, signers["root"], root_passphrase)

    root = Metadata(Root(expires=now + expiry.root, consistent_snapshot=True))
    for role in TOP_LEVEL_ROLE_NAMES:
        root.signed.add_key(signers[role].public_key, role)
    root.sign(signers["root"])
    root_bytes = root.to_bytes()
    write_atomic(meta / "1.root.json", root_bytes)
    write_atomic(meta / "root.json", root_bytes)
    _targets_dir(feed_dir).mkdir(parents=True, exist_ok=True)
    state = _State(root, Metadata(Targets()), Metadata(Snapshot()), Metadata(Timestamp()))
    _write_metadata(feed_dir, _sign_top_level(state, signers, expiry, now, new_targets=True, bump=False))
    logger.info("Created feed %s (online keys in %s, root key in %s)", feed_dir, keys_dir, root_key_path)
    return meta / "root.json"


def publish(
    feed_dir: Path, keys_dir: Path, package_dir: Path, expiry: Expiry = Expiry(), now: datetime | None = None
) -> int:
    """Publish a verified model package as the new champion; returns its version.

    Target files are written first, then targets → snapshot → timestamp, each via an atomic
    rename, so a reader sees the old champion or the new one, never half of a version.
    Refuses (``FeedError``, nothing written) a package that fails verification or whose version
    is not above the current champion's.
    """
    feed_dir = Path(feed_dir)
    try:
        pkg = ModelPackage.load(package_dir)
    except PackageError as e:
        raise FeedError(f"Refusing to publish {package_dir}: {e}") from None
    now = now or datetime.now(UTC)
    with _publish_lock(feed_dir):
        state = _load_state(feed_dir)
        current = _read_champion(feed_dir, state.targets.signed)
        if current is not None and pkg.version <= int(current["version"]):
            raise FeedError(
                f"Refusing to publish version {pkg.version}: the feed's champion is already version "
                f"{current['version']} (versions only go up)"
            )
        signers = _signers(keys_dir, state.root.signed, ONLINE)

        # Read and check every file, build and sign all metadata in memory; write only when all of that passed.
        names = sorted({*pkg.card["files"], CARD})
        blobs = {f"models/{pkg.version}/{name}": _read_checked(pkg, name) for name in names}
        blobs[CHAMPION] = json.dumps({"version": pkg.version, "files": names}, sort_keys=True).encode()
        added = {path: TargetFile.from_data(path, data, ["sha256"]) for path, data in blobs.items()}
        card_info = added[f"models/{pkg.version}/{CARD}"]
        card_info.unrecognized_fields["custom"] = {
            "pneumoscan": _canonical(
                {
                    "version": pkg.version,
                    "sha256": card_info.hashes["sha256"],
                    "metrics": pkg.card["metrics"],
                    "threshold": pkg.card["threshold"],
                }
            )
        }
        state.targets.signed.targets.update(added)
        metadata = _sign_top_level(state, signers, expiry, now, new_targets=True)

        for path, data in blobs.items():  # 1. files, under content-addressed names nothing refers to yet
            write_atomic(_targets_dir(feed_dir) / _consistent_name(path, added[path].hashes["sha256"]), data)
        _write_metadata(feed_dir, metadata)  # 2. N.targets.json → N.snapshot.json → timestamp.json
    logger.info("Published version %d to %s (targets v%d)", pkg.version, feed_dir, state.targets.signed.version)
    return pkg.version


def _read_checked(pkg: ModelPackage, name: str) -> bytes:
    """The bytes of one package file, re-checked against the card (the folder may change after ``load``)."""
    data = pkg.path(name).read_bytes()
    if name == CARD:
        changed = json.loads(data) != pkg.card
    else:
        entry = pkg.card["files"][name]
        changed = hashlib.sha256(data).hexdigest() != entry["sha256"] or len(data) != entry["size"]
    if changed:
        raise FeedError(f"{pkg.path(name)} changed after it was verified; nothing was published")
    return data


def refresh(
    feed_dir: Path,
    keys_dir: Path,
    expiry: Expiry = Expiry(),
    root_key: Path | None = None,
    now: datetime | None = None,
    passphrase: bytes | None = None,
) -> FeedStatus:
    """Re-sign snapshot and timestamp with fresh expiry dates (run daily, well before timestamp expiry).

    Targets is re-signed too when less than half of its validity is left. With ``root_key``
    (the offline root key), root is re-signed as a new version N+1 with a fresh expiry as well.
    """
    feed_dir = Path(feed_dir)
    now = now or datetime.now(UTC)
    with _publish_lock(feed_dir):
        state = _load_state(feed_dir)
        if root_key is not None:
            signer = _load_signer(Path(root_key), state.root.signed, "root", passphrase)
            _resign_root(feed_dir, state.root, signer, expiry, now)
        signers = _signers(keys_dir, state.root.signed, ONLINE)
        new_targets = state.targets.signed.expires - now < expiry.targets / 2
        _write_metadata(feed_dir, _sign_top_level(state, signers, expiry, now, new_targets=new_targets))
    logger.info("Refreshed %s: timestamp v%d", feed_dir, state.timestamp.signed.version)
    return status(feed_dir)


def rotate(
    feed_dir: Path,
    keys_dir: Path,
    root_key: Path,
    roles: tuple[str, ...] = ONLINE,
    expiry: Expiry = Expiry(),
    passphrase: bytes | None = None,
    now: datetime | None = None,
) -> FeedStatus:
    """Replace the online keys of ``roles`` (one suspected stolen, a person leaving, a schedule).

    New keys are written beside the old ones (``<role>.pem.new``), root is re-signed as version N+1
    with the root key naming the new keys instead of the old, the new keys replace the old files,
    and targets, snapshot and timestamp are re-signed with them. Installed apps follow root N → N+1
    from the root they shipped with and from then on refuse anything the old keys sign. Killed at any
    point, the next publish, refresh or rotate finishes it or leaves the old keys valid.
    """
    bad = sorted(set(roles) - set(ONLINE))
    if bad or not roles:
        raise FeedError(f"Only the online keys rotate ({', '.join(ONLINE)}); not {', '.join(bad) or 'none'}")
    feed_dir, keys_dir = Path(feed_dir), Path(keys_dir)
    now = now or datetime.now(UTC)
    with _publish_lock(feed_dir):
        state = _load_state(feed_dir)
        root_signer = _load_signer(Path(root_key), state.root.signed, "root", passphrase)
        _signers(keys_dir, state.root.signed, ONLINE)  # an earlier rotation finished, the current keys sound
        new = {r: CryptoSigner.generate_ed25519() for r in roles}
        for r, signer in new.items():
            (keys_dir / f"{r}.pem.new").unlink(missing_ok=True)
            _write_key(keys_dir / f"{r}.pem.new", signer)
        root = state.root.signed
        for r, signer in new.items():
            for keyid in list(root.roles[r].keyids):
                root.revoke_key(keyid, r)
            root.add_key(signer.public_key, r)
        _resign_root(feed_dir, state.root, root_signer, expiry, now)
        for r in new:  # the root names them now: killed before this, ``_finish_rotation`` does it
            os.replace(keys_dir / f"{r}.pem.new", keys_dir / f"{r}.pem")
        sync_folder_entries(keys_dir)
        signers = _signers(keys_dir, root, ONLINE)
        _write_metadata(feed_dir, _sign_top_level(state, signers, expiry, now, new_targets=True))
    logger.warning("Rotated the %s key(s) of %s: root v%d", ", ".join(roles), feed_dir, state.root.signed.version)
    return status(feed_dir)


def protect_root_key(key_file: Path, passphrase: bytes, out: Path | None = None) -> Path:
    """Encrypt an unencrypted root key (a feed the cycle created unattended) with ``passphrase``: the
    encrypted copy replaces it (or goes to ``out``, and the plain file is deleted either way)."""
    key_file = Path(key_file)
    if key_is_encrypted(key_file):
        raise FeedError(f"{key_file} is encrypted already")
    try:
        signer = CryptoSigner(load_pem_private_key(key_file.read_bytes(), None))
    except FileNotFoundError:
        raise FeedError(f"No key at {key_file}") from None
    except (ValueError, TypeError) as e:
        raise FeedError(f"{key_file} is not a PEM private key ({e})") from None
    dest = Path(out or key_file)
    tmp = dest.with_name(dest.name + ".encrypting")
    tmp.unlink(missing_ok=True)
    _write_key(tmp, signer, passphrase)
    os.replace(tmp, dest)
    sync_folder_entries(dest.parent)
    if dest.resolve() != key_file.resolve():
        key_file.unlink()
    return dest


def _resign_root(feed_dir: Path, root: Metadata[Root], signer: CryptoSigner, expiry: Expiry, now: datetime) -> None:
    meta = metadata_dir(feed_dir)
    data = _sign_bytes(root, signer, now + expiry.root)
    write_atomic(meta / f"{root.signed.version}.root.json", data)
    write_atomic(meta / "root.json", data)  # new installers may ship this one; old ones chain up to it
    logger.info("Re-signed root as version %d", root.signed.version)


def status(feed_dir: Path) -> FeedStatus:
    """Current champion, and the version and expiry date of each role's metadata."""
    state = _load_state(Path(feed_dir))
    champion = _read_champion(Path(feed_dir), state.targets.signed)
    roles = {
        name: RoleStatus(md.signed.version, md.signed.expires)
        for name, md in (
            ("root", state.root),
            ("targets", state.targets),
            ("snapshot", state.snapshot),
            ("timestamp", state.timestamp),
        )
    }
    if champion is None:
        return FeedStatus(None, (), roles)
    registered = None
    info = state.targets.signed.targets.get(f"models/{champion['version']}/{CARD}")
    if info is not None:
        try:
            card = json.loads(
                (_targets_dir(Path(feed_dir)) / _consistent_name(info.path, info.hashes["sha256"])).read_bytes()
            )
            registered = card.get("provenance", {}).get("registered_version")
        except (OSError, ValueError, AttributeError):
            registered = None  # a card made by hand, without provenance: nothing to compare
    return FeedStatus(
        int(champion["version"]), tuple(champion["files"]), roles, None if registered is None else str(registered)
    )
