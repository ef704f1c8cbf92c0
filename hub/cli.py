"""``pneumo-hub``: the hub's command line. Each command is a few lines over library functions.

Longer than most modules: the argument parser of every command is here, so ``--help`` and the code
agree; the commands' work is in the library.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

from contract.preprocess import INTENSITY_METHODS
from hub.config import PRECISIONS, HubPaths, telemetry_off

logger = logging.getLogger("hub")
# failures that are the user's or the environment's, reported by their message alone
EXPECTED_ERRORS = {
    "DataError",
    "HubBusy",
    "DvcError",
    "WeightsError",
    "ExportError",
    "FeedError",
    "PackageError",
    "MlflowException",
    "RestException",
    "FeedClientError",
    "UpdateRefused",
    "FeedUnreachable",
}
SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data" / "chest_xray"
SAMPLE_SITE_B = SAMPLE_DATA.parent / "site_b"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not a usage dump
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_from(s: str, lowest: int, what: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {s!r}") from None
    if v < lowest:
        raise argparse.ArgumentTypeError(f"must be {what}, got {s}")
    return v


def _positive_int(s: str) -> int:
    return _int_from(s, 1, "a positive integer")


def _count(s: str) -> int:
    return _int_from(s, 0, "0 or a positive integer")


def _fraction(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {s!r}") from None
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {s}")
    return v


SITE_HELP = (
    "the hospital these images come from (default: the batch.json's site, else kermany); "
    "lower-case letters, digits, '.', '_', '-'"
)


def _site(value: str) -> str:
    from hub.pool import DataError, check_site

    try:
        return check_site(value)
    except DataError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _status_text(st: dict) -> str:
    """``data status`` for a person: the totals, then a table of images per site and split."""
    lines = [f"{k}: {v}" for k, v in st.items() if k not in ("split_by_site", "sites_carved", "retracted")]
    for r in st.get("retracted") or ():
        lines.append(f"retracted: batch {r['batch']} ({r['images']} images) on {r['at']} by {r['by']}: {r['reason']}")
    by_site = st.get("split_by_site")
    if by_site:
        splits = ("train", "val", "gold", "held_out", "pending")
        lines.append("images by site and split (NORMAL/PNEUMONIA):")
        lines.append("  " + f"{'site':16}" + "".join(f"{s:>14}" for s in splits))
        for site, counts in sorted(by_site.items()):
            cells = "".join(
                f"{counts.get(s, {}).get('NORMAL', 0):>7}/{counts.get(s, {}).get('PNEUMONIA', 0):<6}" for s in splits
            )
            carved = "" if site in st.get("sites_carved", {}) else "  (gold not carved yet: too few patients)"
            lines.append(f"  {site:16}{cells}{carved}")
    return "\n".join(lines)


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return f"uid {os.getuid()}"


def _existing_dir(s: str) -> Path:
    p = Path(s)
    if not p.is_dir():
        raise argparse.ArgumentTypeError(f"folder not found: {s}")
    return p


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pneumo-hub", description="PneumoScan hub: data, training, evaluation, MLflow tracking.")
    p.add_argument(
        "--home", help="hub state folder (pool, split, checkpoints, embedded MLflow); default $PNEUMO_HOME or ./.pneumo"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    data = sub.add_parser("data", help="validate, import, split and inspect labelled X-rays")
    dsub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    v = dsub.add_parser("validate", help="check every file in a folder and report what would be rejected and why")
    v.add_argument(
        "folder",
        type=_existing_dir,
        help="Kaggle layout <root>/{train,val,test}/{NORMAL,PNEUMONIA} or a batch <batch>/{NORMAL,PNEUMONIA}",
    )
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.add_argument("--site", type=_site, help=SITE_HELP)
    i = dsub.add_parser("import", help="validate a folder and add its accepted images to the pool (new DVC version)")
    i.add_argument("folder", type=_existing_dir, help="same layouts as validate")
    i.add_argument("--source", help="name recorded for these images (default: the folder's name)")
    i.add_argument("--site", type=_site, help=SITE_HELP)
    s = dsub.add_parser(
        "split",
        help="make the persisted patient-level train/val/gold split (once; later patients go to train/val, never gold)",
    )
    s.add_argument("--gold-frac", type=_fraction, default=0.15, help="fraction of patients in the gold test set (0.15)")
    s.add_argument("--val-frac", type=_fraction, default=0.15, help="fraction of patients in val (0.15)")
    s.add_argument("--seed", type=int, default=42, help="split seed (42)")
    s.add_argument(
        "--reset",
        action="store_true",
        help="discard the existing split (breaks comparability with models scored on the old gold set)",
    )
    rt = dsub.add_parser(
        "retract",
        help="take a harmful batch's images out of the pool again (recorded; a new DVC version)",
        description="Take every image that came with BATCH out of the pool: recorded in pool/RETRACTED.tsv (who, "
        "when, why; part of the pool's DVC version), the batch's folder moved from ingested/ to quarantine/, "
        "and its images refused if they are ever sent again. The next cycle trains on the pool without them. "
        "Safe to run again after an interruption.",
    )
    rt.add_argument("batch", help="the batch's name (its folder name in incoming/; `data status` lists sources)")
    rt.add_argument("--reason", required=True, help="why, for the record (e.g. 'labels flipped, challenger refused')")
    rt.add_argument("--by", help="who decided (default: the user running this)")
    st = dsub.add_parser("status", help="pool size, split counts, dataset version, retracted batches")
    st.add_argument("--json", action="store_true")

    t = sub.add_parser("train", help="train a ResNet18, calibrate on val, score on gold, log and register in MLflow")
    _train_options(t)
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint of the same data and seed")
    t.add_argument("--no-register", action="store_true", help="log the model but do not register it")
    t.add_argument("--run-name", help="MLflow run name")

    e = sub.add_parser("evaluate", help="score a trained model on the gold test set")
    e.add_argument(
        "--model",
        required=True,
        help="trained-model folder, runs:/<run_id>, models:/<name>/<version> or models:/<name>@<alias>",
    )
    e.add_argument("--plots", type=Path, help="also write confusion/ROC/reliability PNGs to this folder")
    e.add_argument("--no-log", action="store_true", help="do not record an MLflow evaluation run")

    x = sub.add_parser("export", help="export a trained model to a verified ONNX model package (fp32 + int8)")
    x.add_argument(
        "--model",
        required=True,
        help="trained-model folder, runs:/<run_id>, models:/<name>/<version> or models:/<name>@<alias>",
    )
    x.add_argument(
        "--version",
        type=_positive_int,
        required=True,
        help="package version: an integer above every version already published",
    )
    x.add_argument("--out", type=Path, help="package folder to create (default $PNEUMO_HOME/packages/<version>)")
    x.add_argument("--no-int8", action="store_true", help="skip the int8 model")

    from hub.cli_feed import add_feed_parser

    add_feed_parser(sub)

    c = sub.add_parser(
        "cycle",
        help="run one retraining cycle now (the same steps as the Airflow DAG): new "
        "batches → validate → ingest → train → judge → promote → publish",
    )
    c.add_argument(
        "--settings",
        type=json.loads,
        default={},
        help='JSON overrides, e.g. \'{"epochs": 3, "image_size": 128, "warm_start": true, '
        '"policy": {"min_recall": 0.9}}\'',
    )

    sub.add_parser(
        "settings",
        help="the hub settings file automatic runs use ($PNEUMO_HOME/hub.toml): write it if missing, "
        "check it, and print what a run gets after the environment's overrides",
    )

    rh = sub.add_parser(
        "rehome",
        help="re-root a copied or restored hub home: its MLflow store and records point at the old folder "
        "until this is run (every other command refuses such a home)",
    )
    rh.add_argument("--from", dest="old", type=Path, help="the folder it was copied from (default: its home.json)")

    pr = sub.add_parser("promote", help="registry operations on the champion")
    pr.add_argument(
        "--rollback",
        action="store_true",
        required=True,
        help="give the champion alias back to the previous model and republish it to the feed",
    )

    u = sub.add_parser(
        "up",
        help="start the embedded services: MLflow server, Airflow standalone with the "
        "DAGs, feed server; Ctrl-C stops them",
    )
    u.add_argument("--mlflow-port", type=_positive_int, default=5000)
    u.add_argument("--airflow-port", type=_positive_int, default=8080)
    u.add_argument("--feed-port", type=_positive_int, default=8765)

    d = sub.add_parser(
        "demo",
        help="the main job on the embedded default: two batches of the bundled sample "
        "through a full cycle each (first → champion, second → judged challenger), then a second "
        "hospital's batch (cycle 3: its gold carved, both sites learned and judged per site)",
    )
    d.add_argument("--data", type=_existing_dir, default=SAMPLE_DATA, help="data folder (default: bundled sample)")
    d.add_argument(
        "--site-b",
        type=_existing_dir,
        default=SAMPLE_SITE_B,
        help="a second hospital's labelled folder, sent as cycle 3's batch (default: the bundled NIH sample)",
    )
    d.add_argument("--no-site-b", action="store_true", help="only the two batches of the first site")
    d.add_argument("--epochs", type=_positive_int, default=4, help="epochs per training (4)")
    d.add_argument("--image-size", type=_positive_int, default=128, help="input side in px (128; the product uses 224)")
    return p


def _train_options(p: argparse.ArgumentParser, epochs: int = 10, image_size: int = 224, weights: str = "imagenet"):
    p.add_argument("--epochs", type=_positive_int, default=epochs, help=f"maximum epochs ({epochs})")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="batch size (32)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (0.001, the seed recipe)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="Adam weight decay (0)")
    p.add_argument(
        "--image-size",
        type=_positive_int,
        default=image_size,
        help=f"input side in px ({image_size}; the product model uses 224)",
    )
    p.add_argument(
        "--weights",
        default=weights,
        help=f"initial weights: imagenet (torchvision cache, no download), none, or a .pt/.pth path ({weights})",
    )
    p.add_argument(
        "--trainable",
        choices=("all", "layer4", "head"),
        default="all",
        help="which layers learn: all (seed recipe), layer4 + head, or head only",
    )
    p.add_argument("--seed", type=int, default=42, help="training seed (42)")
    p.add_argument("--patience", type=_positive_int, default=3, help="early-stopping patience in epochs (3)")
    p.add_argument("--no-augment", action="store_true", help="turn off augmentation")
    p.add_argument(
        "--augment-strength", type=float, default=1.0, help="scale of the augmentation ranges (1, the seed's mild one)"
    )
    p.add_argument("--no-class-weights", action="store_true", help="plain loss instead of inverse-frequency weights")
    p.add_argument("--workers", type=int, default=1, help="data-loading worker processes (1)")
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu or cuda")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="number format of the training step: auto (bf16 where the CPU or GPU has it in hardware, else fp32)",
    )
    p.add_argument("--max-train-images", type=_positive_int, help="use a seeded, stratified subset of train")
    p.add_argument(
        "--precise-bn-images",
        type=_count,
        default=512,
        help="re-estimate BatchNorm statistics on this many train images before each validation (512; 0 turns it off)",
    )
    p.add_argument(
        "--intensity",
        choices=INTENSITY_METHODS,
        default="none",
        help="intensity standardisation before the model (none; docs/training.md: the others did not help at site B)",
    )
    p.add_argument(
        "--target-sensitivity",
        type=_fraction,
        default=0.95,
        help="operating threshold is set on val to reach this sensitivity (0.95)",
    )


def _config(args):
    from hub.config import TrainConfig

    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        image_size=args.image_size,
        weights=args.weights,
        trainable=args.trainable,
        seed=args.seed,
        patience=args.patience,
        augment=not args.no_augment,
        augment_strength=args.augment_strength,
        class_weights=not args.no_class_weights,
        num_workers=args.workers,
        device=args.device,
        max_train_images=args.max_train_images,
        precise_bn_images=args.precise_bn_images,
        intensity=args.intensity,
        precision=args.precision,
    )


def _print_train(result, paths: HubPaths) -> None:
    print(f"gold test: {result.metrics.summary()}")
    print(
        f"MLflow run {result.run_id} (dataset {result.dataset_version})"
        + (f", registered as version {result.registered_version}" if result.registered_version else "")
    )
    print(f"trained model: {result.model_dir}")
    uri = paths.tracking_uri()
    if uri.startswith("sqlite:"):
        print(f"browse the runs: mlflow ui --backend-store-uri {uri}   (then open http://127.0.0.1:5000)")
    else:
        print(f"browse the runs: {uri}")


def run(args, paths: HubPaths) -> int:
    from hub import dataset

    if args.command == "data":
        if args.data_command == "validate":
            report = dataset.validate_folder(args.folder, paths if paths.pool.exists() else None, args.site)
            print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
            return 0 if report.accepted else 1
        if args.data_command == "import":
            report, added = dataset.import_data(paths, args.folder, args.source, args.site)
            print(report.summary())
            print(f"added {len(added)} images to the pool at {paths.pool}")
            return 0
        if args.data_command == "retract":
            from hub import cycle

            done = cycle.retract_batch(paths, args.batch, args.reason, args.by or _user())
            if done["already_retracted"]:
                print(f"batch {done['batch']} was already retracted on {done['at']} by {done['by']}: {done['reason']}")
            else:
                print(f"retracted batch {done['batch']}: {done['images']} images out of the pool ({done['reason']})")
            if done["gold_images"]:
                print(
                    f"WARNING: {done['gold_images']} of them were gold-set images: models scored before and after "
                    "are not compared on the same gold set"
                )
            print(f"dataset version {done['dataset_before']} -> {done['dataset_after']} (pool DVC {done['dvc_hash']})")
            if done.get("folder"):
                print(f"its files: {done['folder']}")
            return 0
        if args.data_command == "split":
            s, new = dataset.split(paths, args.gold_frac, args.val_frac, args.seed, args.reset)
            print(
                ("made or extended the" if new else "kept the existing")
                + f" split (seed {s.seed}, {len(s.gold)} gold images; sites carved: {', '.join(sorted(s.sites))})"
            )
            print(json.dumps(dataset.training_view(paths).counts()))
            return 0
        st = dataset.status(paths)
        print(json.dumps(st, indent=2) if args.json else _status_text(st))
        return 0

    if args.command == "train":
        from hub.experiment import train_and_evaluate

        result = train_and_evaluate(
            paths,
            _config(args),
            args.target_sensitivity,
            register=not args.no_register,
            resume=args.resume,
            run_name=args.run_name,
        )
        _print_train(result, paths)
        return 0

    if args.command == "evaluate":
        from hub.experiment import evaluate_model

        metrics, run_id = evaluate_model(paths, args.model, log=not args.no_log, out_dir=args.plots)
        print(f"gold test: {metrics.summary()}")
        if run_id:
            print(f"MLflow run {run_id}")
        return 0

    if args.command == "feed":
        from hub.cli_feed import run_feed

        return run_feed(args, paths)

    if args.command == "export":
        from contract.package import ModelPackage
        from hub.export import export_model

        out = export_model(paths, args.model, args.version, args.out, int8=not args.no_int8)
        card = ModelPackage.load(out).card
        print(f"model package v{card['version']} at {out}: {', '.join(sorted(card['files']))}")
        v = card["verification"]
        print(
            f"verified against torch on {v['n']} gold images: max |dp| {v['max_abs_prob_diff']:.1e}, "
            f"min CAM correlation {v['min_cam_correlation']:.4f}"
        )
        if card.get("int8"):
            q = card["int8"]
            print(
                f"int8 {'kept' if q['kept'] else 'dropped'}: label agreement {q['label_agreement']:.3f}, "
                f"sensitivity drop {q['sensitivity_drop']:+.3f} on {q['n']} gold images"
            )
        return 0

    if args.command == "cycle":
        from hub import cycle

        summary = cycle.run_once(paths, cycle.CycleConfig.from_env(paths, args.settings))
        print(cycle.describe(summary))
        return 0

    if args.command == "rehome":
        from hub.home import rehome

        r = rehome(paths, args.old)
        print(
            f"{r['to']} re-rooted from {r['from']}: {r['database_rows']} database rows and {r['files']} files "
            "now point here; the original is no longer used"
        )
        return 0

    if args.command == "settings":
        from hub import cycle, settings

        target, written = settings.ensure(paths)
        cfg = cycle.CycleConfig.from_env(paths)  # a bad file or variable: SettingsError, one line, exit 1
        print(f"{'wrote' if written else 'using'} {target}; an automatic run gets:")
        print(
            json.dumps(
                {
                    "train": dataclasses.asdict(cfg.train),
                    "cycle": {k: getattr(cfg, k) for k in settings.CYCLE_KEYS},
                    "policy": dataclasses.asdict(cfg.policy),
                },
                indent=2,
                default=str,
            )
        )
        return 0

    if args.command == "promote":
        from hub import cycle

        version, feed_version = cycle.rollback(paths, cycle.CycleConfig.from_env(paths))
        print(f"champion is now registered version {version}, published as feed version {feed_version}")
        return 0

    if args.command == "up":
        from hub.services import Ports, up

        return up(paths, Ports(args.mlflow_port, args.airflow_port, args.feed_port))

    if args.command == "demo":
        from hub.demo import demo

        site_b = None if args.no_site_b else args.site_b
        return demo(paths, args.data, epochs=args.epochs, image_size=args.image_size, site_b=site_b)
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("mlflow", "alembic", "urllib3", "matplotlib", "PIL", "git"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    telemetry_off()
    paths = HubPaths.from_env(args.home)
    try:
        from hub import home

        if args.command != "rehome":
            home.check(paths)  # a copied home must not write into the original
        code = run(args, paths)
        if args.command != "rehome":
            home.check(paths)  # a home this command created is recorded now
        return code
    except Exception as e:  # every failure is one line; the traceback is there with -v
        message = " ".join(str(e).split()) or type(e).__name__
        expected = type(e).__name__ in EXPECTED_ERRORS or isinstance(e, (ValueError, FileNotFoundError))
        logger.debug("traceback", exc_info=True)
        print(
            f"pneumo-hub: error: {message}" + ("" if expected else f" ({type(e).__name__}; run with -v for details)"),
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("pneumo-hub: interrupted (a training run can continue with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
