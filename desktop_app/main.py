"""``pneumo-desktop`` entry point: headless ``predict`` and ``update --check``, and the ``view`` window."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

MODEL_DIR_ENV = "PNEUMO_DESKTOP_MODEL_DIR"
CACHE_DIR_ENV = "PNEUMO_DESKTOP_CACHE_DIR"
MODEL_HELP = (f"model package folder (default: ${MODEL_DIR_ENV}, else the active model of the app's store: "
              "the newest verified feed model or the one installed with the app)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pneumo-desktop", description="PneumoScan desktop app.")
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("predict", help="predict each FILE; one JSON line per file")
    pr.add_argument("files", nargs="+", metavar="FILE")
    pr.add_argument("--model-dir", default=os.environ.get(MODEL_DIR_ENV), help=MODEL_HELP)
    pr.add_argument("--variant", choices=("fp32", "int8"), help="default: the settings' variant (fp32)")
    pr.add_argument("--audit", metavar="DB", help="also record each result in this SQLite audit log")
    up = sub.add_parser("update", help="ask the model feed what it offers")
    up.add_argument("--check", action="store_true", required=True, help="only report what the feed offers")
    up.add_argument("--feed-url", help="default: the settings' feed_url")
    up.add_argument("--root", metavar="ROOT_JSON", help="trusted TUF root.json (default: the installed one)")
    up.add_argument("--cache", default=os.environ.get(CACHE_DIR_ENV),
                    help=f"feed metadata cache (default: ${CACHE_DIR_ENV} or <data dir>/feed)")
    up.add_argument("--model-dir", default=os.environ.get(MODEL_DIR_ENV),
                    help="model package to compare versions with (default: the newest the app knows)")
    vw = sub.add_parser("view", help="open the viewer window, optionally with FILEs")
    vw.add_argument("files", nargs="*", metavar="FILE")
    vw.add_argument("--model-dir", default=os.environ.get(MODEL_DIR_ENV), help=MODEL_HELP)
    vw.add_argument("--variant", choices=("fp32", "int8"), help="default: the settings' variant (fp32)")
    vw.add_argument("--audit", metavar="DB", help="audit log (default: <data dir>/audit.sqlite)")
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
    """The engine for ``model_dir``, else the store's active model; raises EngineError or StoreError."""
    from desktop_app.engine import Engine
    from desktop_app.models import ModelStore

    variant = variant or settings.variant
    if model_dir:
        return Engine(model_dir, variant)
    engine, warnings = ModelStore(settings.paths().models, settings.builtin_model or None).open_engine(variant)
    for w in warnings:
        print(f"pneumo-desktop: warning: {w}", file=sys.stderr)
    return engine


def cmd_predict(args: argparse.Namespace) -> int:
    from desktop_app.audit import AuditLog, result_record
    from desktop_app.engine import EngineError
    from desktop_app.images import load_image
    from desktop_app.models import StoreError
    from export.preprocess import ImageError

    try:
        engine = open_engine(args.model_dir, args.variant, _settings())
    except (EngineError, StoreError) as e:
        return _fail(f"{e} (or pass --model-dir)" if isinstance(e, StoreError) else str(e))
    audit = AuditLog(args.audit) if args.audit else None
    failed = 0
    for f in args.files:
        try:
            pred = engine.predict(load_image(f))
            rec = audit.record(pred, f) if audit else result_record(pred, f)
        except Exception as e:  # one bad file must not stop the batch or print a traceback
            failed += 1
            reason = (str(e) if isinstance(e, ImageError) else f"cannot read file: {e.strerror or e}"
                      if isinstance(e, OSError) else f"prediction failed ({type(e).__name__}: {e})")
            rec = {"file_name": Path(f).name, "file_path": str(Path(f).resolve()), "error": reason}
        print(json.dumps(rec), flush=True)
    if audit:
        audit.close()
    return 1 if failed else 0


def cmd_update(args: argparse.Namespace) -> int:
    from desktop_app.models import ModelStore
    from export.feed_client import FeedClient, FeedClientError
    from export.package import ModelPackage, PackageError

    settings = _settings()
    feed_url, root = args.feed_url or settings.feed_url, args.root or settings.trusted_root
    if not feed_url or not root:
        return _fail("no feed configured: pass --feed-url and --root, or set feed_url (and trusted_root) "
                     "in the admin config or the settings")
    if args.model_dir:
        try:
            installed = ModelPackage.load(args.model_dir, verify=False).version
        except PackageError as e:
            return _fail(f"installed model unreadable: {e}")
    else:
        installed = ModelStore(settings.paths().models, settings.builtin_model or None).newest_known()
    cache = Path(args.cache) if args.cache else settings.paths().feed_cache
    try:
        offer = FeedClient(Path(root), feed_url, cache).check(installed)
    except FeedClientError as e:
        return _fail(str(e).splitlines()[0], 3)
    if offer is None:
        print(json.dumps({"update": False, "installed_version": installed}))
    else:
        print(json.dumps({"update": True, "installed_version": installed, "version": offer.version,
                          "files": list(offer.files), "size": offer.size, "threshold": offer.threshold,
                          "metrics": offer.metrics}))
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    from desktop_app.ui.app import run_viewer

    return run_viewer(args.model_dir, args.variant, args.audit, args.files)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    return {"predict": cmd_predict, "update": cmd_update, "view": cmd_view}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
