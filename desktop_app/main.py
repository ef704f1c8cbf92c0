"""``pneumo-desktop`` entry point: headless ``predict``, ``update`` and ``self-test``, and the ``view`` window.

With no subcommand (how the desktop launcher starts it, possibly with files) it opens the viewer.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

MODEL_DIR_ENV = "PNEUMO_DESKTOP_MODEL_DIR"
CACHE_DIR_ENV = "PNEUMO_DESKTOP_CACHE_DIR"
MODEL_HELP = (
    f"model package folder (default: ${MODEL_DIR_ENV}, else the active model of the app's store: "
    "the newest verified feed model or the one installed with the app)"
)


def _parser() -> argparse.ArgumentParser:
    from contract.package import VARIANTS
    from desktop_app import __version__

    p = argparse.ArgumentParser(
        prog="pneumo-desktop", description="PneumoScan desktop app. With no command (or only files): the viewer."
    )
    p.add_argument("--version", action="version", version=f"pneumo-desktop {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser(
        "predict",
        help="predict each FILE; one JSON line per file. Exit 0: every file has a result (a result withheld "
        "as unsuitable included: suitable false, label null, reason); 1: a file could not be used (error); "
        "2: no usable model",
    )
    pr.add_argument("files", nargs="+", metavar="FILE")
    pr.add_argument(
        "--show-withheld",
        action="store_true",
        help="also print the model's answer for a withheld image (withheld_label, withheld_probability)",
    )
    pr.add_argument("--model-dir", default=os.environ.get(MODEL_DIR_ENV), help=MODEL_HELP)
    pr.add_argument("--variant", choices=VARIANTS, help="default: the settings' variant (fp32)")
    pr.add_argument("--audit", metavar="DB", help="also record each result in this SQLite audit log")
    up = sub.add_parser(
        "update",
        help="install the feed's newer model (verified) and make it active; "
        "with --check only report what the feed offers",
    )
    up.add_argument("--check", action="store_true", help="only report what the feed offers")
    up.add_argument(
        "--allow",
        type=int,
        metavar="VERSION",
        help="use a version this computer rolled back from again (installed: at once; else from the feed)",
    )
    up.add_argument("--feed-url", help="default: the settings' feed_url")
    up.add_argument("--root", metavar="ROOT_JSON", help="trusted TUF root.json (default: the installed one)")
    up.add_argument(
        "--cache",
        default=os.environ.get(CACHE_DIR_ENV),
        help=f"feed metadata cache (default: ${CACHE_DIR_ENV} or <data dir>/feed)",
    )
    up.add_argument(
        "--model-dir",
        default=os.environ.get(MODEL_DIR_ENV),
        help="model package to compare versions with (default: the newest the app knows)",
    )
    vw = sub.add_parser("view", help="open the viewer window, optionally with FILEs")
    vw.add_argument("files", nargs="*", metavar="FILE")
    vw.add_argument("--model-dir", default=os.environ.get(MODEL_DIR_ENV), help=MODEL_HELP)
    vw.add_argument("--variant", choices=VARIANTS, help="default: the settings' variant (fp32)")
    vw.add_argument("--audit", metavar="DB", help="audit log (default: <data dir>/audit.sqlite)")
    st = sub.add_parser("self-test", help="check the installation: settings, model, data folder, audit log, feed")
    st.add_argument("--json", action="store_true", help="one JSON object instead of the readable report")
    st.add_argument("--paths", action="store_true", help="only print where the app keeps things (no checks)")
    st.add_argument("--image", metavar="FILE", help="also predict this image (default: the model's reference image)")
    return p


def _fail(message: str, code: int = 2) -> int:
    print(f"pneumo-desktop: {message}", file=sys.stderr)
    return code


def _settings():
    from desktop_app.config import load_settings

    settings = load_settings()
    for problem in settings.problems:
        print(f"pneumo-desktop: warning: {problem}", file=sys.stderr)
    return settings


def open_engine(model_dir: str | None, variant: str | None, settings):
    """``models.open_model``, its warnings printed; raises EngineError or StoreError."""
    from desktop_app.models import open_model

    engine, warnings = open_model(model_dir, variant, settings)
    for w in warnings:
        print(f"pneumo-desktop: warning: {w}", file=sys.stderr)
    return engine


def predict_record(rec: dict, pred, show_withheld: bool = False) -> dict:
    """The JSON line of one result: the audit fields, ``suitable`` and, when withheld, no label.

    A withheld result has ``label`` and ``probability`` null and ``reason`` saying why; with the
    expert setting ``show_withheld`` the model's answer follows as ``withheld_label`` and
    ``withheld_probability``. Every value is finite (``PredictionError`` stops a NaN before here).
    """
    out = {k: v for k, v in rec.items() if k not in ("suitable", "withheld_reason")}
    out.update(
        {
            "suitable": bool(pred.suitable),
            "variant": pred.variant,
            "operating_point": pred.operating_point,
            "ood_score": float(pred.ood),
        }
    )
    if not pred.suitable:
        out.update({"label": None, "probability": None, "reason": pred.reason, "reason_code": pred.reason_code})
        if show_withheld:
            out.update({"withheld_label": pred.label, "withheld_probability": float(pred.probability)})
    return out


def cmd_predict(args: argparse.Namespace) -> int:
    from contract.preprocess import ImageError
    from desktop_app.audit import AuditLog, result_record
    from desktop_app.engine import EngineError, PredictionError
    from desktop_app.models import StoreError

    try:
        settings = _settings()
        engine = open_engine(args.model_dir, args.variant, settings)
    except (EngineError, StoreError) as e:
        return _fail(f"{e} (or pass --model-dir)" if isinstance(e, StoreError) else str(e))
    audit = AuditLog.open_or_recover(args.audit) if args.audit else None
    if audit is not None and audit.problem:
        print(f"pneumo-desktop: warning: {audit.problem}", file=sys.stderr)
    show_withheld = args.show_withheld or settings.show_withheld
    failed = 0
    for f in args.files:
        try:
            pred = engine.predict(engine.load(f, display=False))
            rec = predict_record(audit.record(pred, f) if audit else result_record(pred, f), pred, show_withheld)
        except Exception as e:  # one bad file must not stop the batch or print a traceback
            failed += 1
            reason = (
                str(e)
                if isinstance(e, (ImageError, PredictionError))
                else f"cannot read file: {e.strerror or e}"
                if isinstance(e, OSError)
                else f"prediction failed ({type(e).__name__}: {e})"
            )
            rec = {"file_name": Path(f).name, "file_path": str(Path(f).resolve()), "error": reason}
        print(json.dumps(rec), flush=True)
    if audit:
        audit.close()
    return 1 if failed else 0


def cmd_update(args: argparse.Namespace) -> int:
    from contract.package import ModelPackage, PackageError
    from desktop_app.models import ModelStore
    from feed.client import FeedClient, FeedClientError

    settings = _settings()
    feed_url, root = args.feed_url or settings.feed_url, args.root or settings.trusted_root
    if not feed_url or not root:
        return _fail(
            "no feed configured: pass --feed-url and --root, or set feed_url (and trusted_root) "
            "in the admin config or the settings"
        )
    if args.model_dir:
        try:
            installed = ModelPackage.load(args.model_dir, verify=False).version
        except PackageError as e:
            return _fail(f"installed model unreadable: {e}")
    else:
        store = ModelStore.from_settings(settings)
        installed = store.active_version()
    cache = Path(args.cache) if args.cache else settings.paths().feed_cache
    if not args.check:
        return update_now(settings, feed_url, root, cache, allow=args.allow)
    # versions rolled back from count as known: the feed offering one is no update
    known = installed if args.model_dir else store.newest_known()
    try:
        client = FeedClient(Path(root), feed_url, cache, proxy=settings.proxy or None)
        offer = client.check(known)
        champion = client.check(None) if offer is None and known != installed else None
    except FeedClientError as e:
        return _fail(str(e).splitlines()[0], 3)
    if offer is None:
        out = {"update": False, "installed_version": installed}
        if champion is not None and not args.model_dir and store.is_skipped(champion.version):
            out["rolled_back"] = champion.version  # the feed's model, rolled back from here
            print(
                f"pneumo-desktop: the feed's model is version {champion.version}, which was rolled back on this "
                f"computer; `pneumo-desktop update --allow {champion.version}` takes it again",
                file=sys.stderr,
            )
        print(json.dumps(out))
    else:
        print(
            json.dumps(
                {
                    "update": True,
                    "installed_version": installed,
                    "version": offer.version,
                    "files": list(offer.files),
                    "size": offer.size,
                    "variant": settings.variant,
                    "download_size": offer.size_for(settings.variant),  # what the update fetches
                    "threshold": offer.threshold,
                    "metrics": offer.metrics,
                }
            )
        )
    return 0


def update_now(settings, feed_url: str, root: str, cache: Path, allow: int | None = None) -> int:
    """Download, verify, install and activate the feed's newer champion in the per-user model store.

    Prints one JSON line (status, active version, reason); exit code 0 updated or up to date,
    3 feed unreachable, 4 refused, 2 not configured. The install folder is never written.
    """
    from desktop_app.models import ModelStore
    from desktop_app.updater import ModelUpdater, Status

    store = ModelStore.from_settings(settings)
    updater = ModelUpdater(store, feed_url, root, cache, settings.variant, settings.proxy or None)
    outcome = updater.update_once() if allow is None else updater.allow_again(allow)
    out = {"status": outcome.status.value, "version": outcome.version, "reason": outcome.reason}
    if outcome.rolled_back is not None:
        out["rolled_back"] = outcome.rolled_back
    print(json.dumps(out))
    if outcome.reason:
        print(f"pneumo-desktop: {outcome.reason}", file=sys.stderr)
    return {Status.UPDATED: 0, Status.UP_TO_DATE: 0, Status.OFFLINE: 3, Status.REFUSED: 4}.get(outcome.status, 2)


def cmd_self_test(args: argparse.Namespace) -> int:
    from desktop_app.config import load_settings
    from desktop_app.selftest import paths_report, run_self_test

    settings = load_settings()
    if args.paths:
        report = paths_report(settings)
        print(json.dumps(report, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in report.items()))
        return 0
    result = run_self_test(settings, image=args.image)
    print(json.dumps(result.as_dict(), indent=2) if args.json else result.text())
    return 0 if result.passed else 1


def cmd_view(args: argparse.Namespace) -> int:
    from desktop_app.ui.app import run_viewer

    return run_viewer(args.model_dir, args.variant, args.audit, args.files)


COMMANDS = {"predict": cmd_predict, "update": cmd_update, "view": cmd_view, "self-test": cmd_self_test}


def _default_to_view(argv: list[str]) -> list[str]:
    """``view`` when no command is given: nothing, view options, or files (the launcher's ``%F``)."""
    if not argv or (
        argv[0] not in COMMANDS
        and argv[0] not in ("-h", "--help", "--version")
        and (argv[0].startswith("-") or Path(argv[0]).exists())
    ):
        return ["view", *argv]
    return argv


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(_default_to_view(sys.argv[1:] if argv is None else list(argv)))
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
