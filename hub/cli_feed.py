"""``pneumo-hub feed ...``: create, publish to, re-sign, serve and inspect the signed model feed.

A thin layer over ``feed.repository``; errors are ``feed.repository.FeedError`` with one-line messages.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from datetime import timedelta
from pathlib import Path

from feed.repository import (
    ONLINE,
    ROOT_PASSPHRASE_ENV,
    Expiry,
    FeedError,
    env_passphrase,
    init_feed,
    key_is_encrypted,
    offline_key_path,
    protect_root_key,
    publish,
    refresh,
    rotate,
    status,
)
from feed.server import serve
from hub.config import HubPaths

logger = logging.getLogger(__name__)

_DEFAULTS = Expiry()

ROOT_KEY_GUIDANCE = """\
Next steps — the root key:
  {root_key} ({protection}) signs only the feed's root of trust;
  `feed publish` and `feed refresh` never use it. Move it off this machine now (two copies: e.g. a USB
  stick in a safe and a second one elsewhere), then delete it here:  shred -u {root_key}
  Anyone holding it{unlocked} can make every clinic trust a model of their choosing.
  Root expires on {root_expires:%Y-%m-%d}. Before then, re-sign it with the key brought back briefly:
      pneumo-hub feed refresh --root-key /media/usb/root.pem
  If an online key may have leaked, replace it:  pneumo-hub feed rotate --root-key /media/usb/root.pem
  Either writes the next N.root.json; installed apps follow the chain from the root they shipped with.
Ship {trust_root} with the desktop installer as the trusted root.
Keep {keys}/targets.pem, snapshot.pem and timestamp.pem on the hub, readable by the hub's service user
only (0600; other modes are refused), and run `pneumo-hub feed refresh` daily (the feed_refresh DAG does):
clients refuse a timestamp older than {timestamp_days} days."""

PASSPHRASE_HELP = "file holding the root key's passphrase (default: ${env}, else asked on the terminal)".replace(
    "{env}", ROOT_PASSPHRASE_ENV
)


def _passphrase(args, confirm: bool = False) -> bytes:
    """The root key's passphrase: ``--passphrase-file``, ``$PNEUMO_FEED_ROOT_PASSPHRASE``, or the terminal."""
    if getattr(args, "passphrase_file", None):
        try:
            value = Path(args.passphrase_file).read_bytes().rstrip(b"\r\n")
        except OSError as e:
            raise FeedError(f"Cannot read the passphrase file {args.passphrase_file}: {e.strerror}") from None
    elif env_passphrase() is not None:
        value = env_passphrase()
    elif sys.stdin.isatty():
        value = getpass.getpass("Root key passphrase: ").encode()
        if confirm and getpass.getpass("Again: ").encode() != value:
            raise FeedError("The two passphrases differ; nothing was written")
    else:
        raise FeedError(
            f"The root key needs a passphrase and there is no terminal to ask on: use --passphrase-file FILE or "
            f"set {ROOT_PASSPHRASE_ENV}" + (" (or --no-passphrase, not recommended)" if confirm else "")
        )
    if not value:
        raise FeedError("The passphrase is empty")
    return value


def _root_key_passphrase(args, key: Path) -> bytes | None:
    return _passphrase(args) if key_is_encrypted(key) else None


def _days(s: str) -> timedelta:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of days, got {s!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of days, got {s}")
    return timedelta(days=v)


def _expiry_options(p: argparse.ArgumentParser, root: bool) -> None:
    if root:
        p.add_argument(
            "--root-days",
            type=_days,
            default=_DEFAULTS.root,
            help=f"validity of a root signature ({_DEFAULTS.root.days})",
        )
    for role in ("targets", "snapshot", "timestamp"):
        default = getattr(_DEFAULTS, role)
        p.add_argument(
            f"--{role}-days", type=_days, default=default, help=f"validity of a {role} signature ({default.days})"
        )


def _expiry(args) -> Expiry:
    return Expiry(
        root=getattr(args, "root_days", _DEFAULTS.root),
        targets=args.targets_days,
        snapshot=args.snapshot_days,
        timestamp=args.timestamp_days,
    )


def add_feed_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``feed`` and its commands to ``pneumo-hub``'s subparsers."""
    feed = subparsers.add_parser(
        "feed",
        help="the signed model feed (TUF) the desktop apps update from",
        description="The model feed is a TUF repository of static files: metadata/ and targets/ under the feed "
        "folder, servable by any web server. Defaults: feed $PNEUMO_FEED_DIR or $PNEUMO_HOME/feed, "
        "keys $PNEUMO_FEED_KEYS or $PNEUMO_HOME/feed-keys.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--feed", type=Path, help="feed folder (default $PNEUMO_FEED_DIR or $PNEUMO_HOME/feed)")
    common.add_argument(
        "--keys",
        type=Path,
        help="signing keys folder, never inside the feed folder (default $PNEUMO_FEED_KEYS or $PNEUMO_HOME/feed-keys)",
    )
    fsub = feed.add_subparsers(dest="feed_command", required=True, parser_class=type(feed))

    i = fsub.add_parser(
        "init",
        parents=[common],
        help="create an empty feed and one ed25519 key per role",
        description="Create an empty feed: one ed25519 key per TUF role (root, targets, snapshot, timestamp; "
        "threshold 1) and signed version-1 metadata in <feed>/metadata/, including root.json, the trust "
        "root to ship with the desktop installer. The online keys (targets, snapshot, timestamp) are 0600 "
        "PEM files in the keys folder. The root key is written apart, to <keys>-offline/root.pem (or "
        "--root-key-out), encrypted with a passphrase (asked twice on the terminal, or --passphrase-file, "
        f"or ${ROOT_PASSPHRASE_ENV}): it belongs OFFLINE. Move it off this machine (two copies) and delete "
        "it here; publish and refresh never need it. Bring it back briefly to re-sign root before it "
        "expires (`feed refresh --root-key PATH`) or to replace the online keys (`feed rotate`). "
        "Refuses to overwrite an existing feed or keys.",
    )
    i.add_argument("--root-key-out", type=Path, help="where to write the root key (default <keys>-offline/root.pem)")
    i.add_argument("--passphrase-file", type=Path, help=PASSPHRASE_HELP)
    i.add_argument(
        "--no-passphrase",
        action="store_true",
        help="write the root key unencrypted (a throw-away feed; never for one clinics trust)",
    )
    _expiry_options(i, root=True)

    p = fsub.add_parser(
        "publish",
        parents=[common],
        help="sign a verified model package into the feed as the new champion",
        description="Verify a model package folder (model.json + the files it lists, sha256 and sizes) and publish "
        "it as models/<version>/<file> plus champion.json, re-signing targets, snapshot and timestamp. "
        "Files go in first, then metadata, each by atomic rename: clients see the old champion or the "
        "new one, never half. Refuses a version not above the current champion's.",
    )
    p.add_argument("package", type=Path, help="model package folder (from `pneumo-hub export`)")
    _expiry_options(p, root=False)

    r = fsub.add_parser(
        "refresh",
        parents=[common],
        help="re-sign snapshot and timestamp with fresh expiry dates (daily cron)",
        description="Re-sign snapshot and timestamp (and targets when less than half its validity is left) with "
        "fresh expiry dates. Clients refuse expired metadata, so run this daily, e.g. from cron. "
        "With --root-key, also re-sign root as its next version (use the offline root key).",
    )
    r.add_argument("--root-key", type=Path, help="the offline root key (PEM): also re-sign root")
    r.add_argument("--passphrase-file", type=Path, help=PASSPHRASE_HELP)
    _expiry_options(r, root=True)

    ro = fsub.add_parser(
        "rotate",
        parents=[common],
        help="replace the online signing keys (a key may have leaked, someone left): needs the root key",
        description="Generate new keys for the online roles (default all three), re-sign root as its next version "
        "naming them instead of the old ones (with the offline root key), and re-sign targets, snapshot and "
        "timestamp with them. Installed apps follow the new root and refuse from then on anything the old "
        "keys sign. The old key files are replaced; nothing else changes for the clinics.",
    )
    ro.add_argument("--root-key", type=Path, required=True, help="the offline root key (PEM)")
    ro.add_argument(
        "--role", action="append", choices=ONLINE, help="rotate only this role's key (repeatable; default: all)"
    )
    ro.add_argument("--passphrase-file", type=Path, help=PASSPHRASE_HELP)
    _expiry_options(ro, root=True)

    pk = fsub.add_parser(
        "protect-root",
        parents=[common],
        help="encrypt an unencrypted root key with a passphrase (a feed the cycle created unattended)",
        description="Encrypt the root key in place (default <keys>-offline/root.pem) with a passphrase asked on the "
        "terminal (or --passphrase-file, or $" + ROOT_PASSPHRASE_ENV + "), then take it offline.",
    )
    pk.add_argument("--root-key", type=Path, help="the unencrypted root key (default <keys>-offline/root.pem)")
    pk.add_argument("--passphrase-file", type=Path, help=PASSPHRASE_HELP)

    s = fsub.add_parser(
        "serve",
        parents=[common],
        help="serve the feed folder over HTTP (embedded single-machine setup)",
        description="Serve the feed folder as static files (no directory listings). Production can use any web "
        "server, bucket or CDN instead: the feed is plain files.",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1; 0.0.0.0 for the LAN)")
    s.add_argument("--port", type=int, default=8765, help="port (8765)")

    st = fsub.add_parser(
        "status",
        parents=[common],
        help="current champion, metadata versions and expiry dates, and whether the feed ships the "
        "registry's champion (exit 1 when a role expired or the two differ)",
    )
    st.add_argument("--json", action="store_true", help="print as JSON")
    st.add_argument(
        "--no-registry", action="store_true", help="do not compare with the MLflow registry's champion alias"
    )
    return feed


def feed_paths(args, paths: HubPaths) -> tuple[Path, Path]:
    """The feed and keys folders: ``--feed``/``--keys``, else the hub's (``HubPaths.feed``/``feed_keys``)."""
    return args.feed or paths.feed, args.keys or paths.feed_keys


def run_feed(args, paths: HubPaths) -> int:
    """Run one ``feed`` command; raises ``feed.repository.FeedError`` with a one-line message on failure."""
    feed_dir, keys_dir = feed_paths(args, paths)
    cmd = args.feed_command
    if cmd == "init":
        expiry = _expiry(args)
        root_key = args.root_key_out or offline_key_path(keys_dir)
        passphrase = None if args.no_passphrase else _passphrase(args, confirm=True)
        trust_root = init_feed(feed_dir, keys_dir, expiry, root_passphrase=passphrase, root_key_path=root_key)
        print(f"created feed {feed_dir} (online keys in {keys_dir}, root key {root_key})")
        if passphrase is None:
            print(f"WARNING: the root key is NOT encrypted: pneumo-hub feed protect-root --root-key {root_key}")
        print(
            ROOT_KEY_GUIDANCE.format(
                keys=keys_dir,
                root_key=root_key,
                protection="encrypted with your passphrase" if passphrase else "NOT encrypted",
                unlocked=" and its passphrase" if passphrase else "",
                trust_root=trust_root,
                timestamp_days=expiry.timestamp.days,
                root_expires=status(feed_dir).roles["root"].expires,
            )
        )
        return 0
    if cmd == "rotate":
        roles = tuple(dict.fromkeys(args.role or ONLINE))
        st = rotate(feed_dir, keys_dir, args.root_key, roles, _expiry(args), _root_key_passphrase(args, args.root_key))
        print(
            f"rotated the {', '.join(roles)} key(s): root is now v{st.roles['root'].version}; installed apps follow "
            f"it at their next check. Take {args.root_key} offline again."
        )
        return 0
    if cmd == "protect-root":
        key = args.root_key or offline_key_path(keys_dir)
        protect_root_key(key, _passphrase(args, confirm=True))
        print(f"encrypted {key}; now take it off this machine (two copies) and delete it here: shred -u {key}")
        return 0
    if cmd == "publish":
        version = publish(feed_dir, keys_dir, args.package, _expiry(args))
        print(f"published version {version} to {feed_dir}")
        return 0
    if cmd == "refresh":
        passphrase = _root_key_passphrase(args, args.root_key) if args.root_key else None
        st = refresh(feed_dir, keys_dir, _expiry(args), root_key=args.root_key, passphrase=passphrase)
        print(
            f"re-signed; timestamp v{st.roles['timestamp'].version} expires "
            f"{st.roles['timestamp'].expires:%Y-%m-%d %H:%M} UTC"
        )
        return 0
    if cmd == "serve":
        server = serve(feed_dir, args.host, args.port)
        print(f"serving {feed_dir} at {server.url} (Ctrl-C stops)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        return 0
    if cmd == "status":
        st = status(feed_dir)
        registry, unreachable = (None, "not asked") if args.no_registry else _registry_champion(paths)
        drift = unreachable is None and registry != st.registered_version
        bad = bool(st.expired()) or drift
        on_hub = [k for k in (offline_key_path(keys_dir), keys_dir / "root.pem") if k.exists()]
        if args.json:
            print(
                json.dumps(
                    {
                        **st.to_dict(),
                        "root_key_on_hub": [{"path": str(k), "encrypted": key_is_encrypted(k)} for k in on_hub],
                        "expired": st.expired(),
                        "expiring": st.expiring(),
                        "registry_champion": registry,
                        "registry_unchecked": unreachable,
                        "registry_differs": drift,
                    },
                    indent=2,
                )
            )
            return 1 if bad else 0
        print(
            f"champion: {'none yet' if st.champion is None else f'version {st.champion}'}"
            + (f" ({', '.join(st.files)})" if st.files else "")
        )
        for role, rs in st.roles.items():
            print(f"{role:9} v{rs.version:<5} expires {rs.expires:%Y-%m-%d %H:%M} UTC")
        for role in st.expiring():
            print(
                f"EXPIRES SOON: {role} — "
                + (
                    "bring the offline root key back and run `feed refresh --root-key`"
                    if role == "root"
                    else "is the daily feed_refresh running? (`pneumo-hub feed refresh` re-signs by hand)"
                )
            )
        for role in st.expired():
            print(
                f"EXPIRED: {role} — clients refuse the feed until it is re-signed "
                + ("(feed refresh --root-key)" if role == "root" else "(feed refresh)")
            )
        for k in on_hub:
            print(
                f"ROOT KEY ON THIS HUB: {k} ({'encrypted' if key_is_encrypted(k) else 'NOT encrypted'}) — take it "
                "offline and delete it here"
                + ("" if key_is_encrypted(k) else " (encrypt it first: `pneumo-hub feed protect-root`)")
            )
        if unreachable is not None:
            print(f"registry: not compared ({unreachable})")
        elif not drift:
            print(f"registry: its champion alias is the feed's model (registered version {registry or 'none'})")
        else:
            print(
                f"DIFFERS: the registry's champion is registered version {registry or 'none'}, the feed ships "
                f"{st.registered_version or 'no registered model'}. Clinics get only what the feed ships, and only the "
                "pipeline publishes: moving an alias by hand (MLflow UI) publishes nothing. Move the champion alias "
                "back to the feed's model; a model becomes the feed's only through a cycle's promotion or "
                "`pneumo-hub promote --rollback`."
            )
        return 1 if bad else 0
    raise AssertionError(cmd)


def _registry_champion(paths: HubPaths) -> tuple[str | None, str | None]:
    """The registry's champion version, and why it could not be read (None when it was)."""
    import os

    if paths.tracking_uri().startswith("sqlite:") and not paths.mlflow_db.exists():
        return None, f"no registry at {paths.mlflow_db}"  # a feed run by hand, without the hub's MLflow
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a status line, not a minute of back-off
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    try:
        import mlflow

        from hub import registry

        mlflow.set_tracking_uri(paths.tracking_uri())
        ref = registry.get_alias(registry.CHAMPION)
    except Exception as e:  # noqa: BLE001 - any failure to reach the registry is reported, not fatal
        return None, f"MLflow at {paths.tracking_uri()} unreachable: {' '.join(str(e).split())[:200]}"
    return (ref.version if ref else None), None
