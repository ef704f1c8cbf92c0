"""``pneumo-hub``: the hub's command line. Each command is a few lines over library functions."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from hub.config import HubPaths, telemetry_off

logger = logging.getLogger("hub")
SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data" / "chest_xray"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not a usage dump
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {s}")
    return v


def _fraction(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {s!r}") from None
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {s}")
    return v


def _existing_dir(s: str) -> Path:
    p = Path(s)
    if not p.is_dir():
        raise argparse.ArgumentTypeError(f"folder not found: {s}")
    return p


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pneumo-hub", description="PneumoScan hub: data, training, evaluation, MLflow tracking.")
    p.add_argument("--home", help="hub state folder (pool, split, checkpoints, embedded MLflow); "
                                  "default $PNEUMO_HOME or ./.pneumo")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    data = sub.add_parser("data", help="validate, import, split and inspect labelled X-rays")
    dsub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    v = dsub.add_parser("validate", help="check every file in a folder and report what would be rejected and why")
    v.add_argument("folder", type=_existing_dir, help="Kaggle layout <root>/{train,val,test}/{NORMAL,PNEUMONIA} "
                                                     "or a batch <batch>/{NORMAL,PNEUMONIA}")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    i = dsub.add_parser("import", help="validate a folder and add its accepted images to the pool (new DVC version)")
    i.add_argument("folder", type=_existing_dir, help="same layouts as validate")
    i.add_argument("--source", help="name recorded for these images (default: the folder's name)")
    s = dsub.add_parser("split", help="make the persisted patient-level train/val/gold split (once; "
                                      "later patients go to train/val, never gold)")
    s.add_argument("--gold-frac", type=_fraction, default=0.15, help="fraction of patients in the gold test set (0.15)")
    s.add_argument("--val-frac", type=_fraction, default=0.15, help="fraction of patients in val (0.15)")
    s.add_argument("--seed", type=int, default=42, help="split seed (42)")
    s.add_argument("--reset", action="store_true", help="discard the existing split (breaks comparability "
                                                        "with models scored on the old gold set)")
    st = dsub.add_parser("status", help="pool size, split counts, dataset version")
    st.add_argument("--json", action="store_true")

    t = sub.add_parser("train", help="train a ResNet18, calibrate on val, score on gold, log and register in MLflow")
    _train_options(t)
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint of the same data and seed")
    t.add_argument("--no-register", action="store_true", help="log the model but do not register it")
    t.add_argument("--run-name", help="MLflow run name")

    e = sub.add_parser("evaluate", help="score a trained model on the gold test set")
    e.add_argument("--model", required=True, help="bundle folder, runs:/<run_id>/bundle, models:/<name>/<version> "
                                                  "or models:/<name>@<alias>")
    e.add_argument("--plots", type=Path, help="also write confusion/ROC/reliability PNGs to this folder")
    e.add_argument("--no-log", action="store_true", help="do not record an MLflow evaluation run")

    x = sub.add_parser("export", help="export a trained model to a verified ONNX model package (fp32 + int8)")
    x.add_argument("--model", required=True, help="bundle folder, runs:/<run_id>/bundle, models:/<name>/<version> "
                                                  "or models:/<name>@<alias>")
    x.add_argument("--version", type=_positive_int, required=True,
                   help="package version: an integer above every version already published")
    x.add_argument("--out", type=Path, help="package folder to create (default $PNEUMO_HOME/packages/<version>)")
    x.add_argument("--no-int8", action="store_true", help="skip the int8 model")

    d = sub.add_parser("demo", help="the main job on the embedded default: import the bundled sample, split, "
                                    "train, evaluate, log to MLflow")
    d.add_argument("--data", type=_existing_dir, default=SAMPLE_DATA, help="data folder (default: bundled sample)")
    _train_options(d, epochs=4, image_size=160, weights="auto")
    return p


def _train_options(p: argparse.ArgumentParser, epochs: int = 10, image_size: int = 224, weights: str = "imagenet"):
    p.add_argument("--epochs", type=_positive_int, default=epochs, help=f"maximum epochs ({epochs})")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="batch size (32)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (0.001, the seed recipe)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="Adam weight decay (0)")
    p.add_argument("--image-size", type=_positive_int, default=image_size,
                   help=f"input side in px ({image_size}; the product model uses 224)")
    p.add_argument("--weights", default=weights,
                   help="initial weights: imagenet (torchvision cache, no download), none, or a .pt/.pth path"
                        + ("; auto = imagenet if cached, else none" if weights == "auto" else "")
                        + f" ({weights})")
    p.add_argument("--trainable", choices=("all", "layer4", "head"), default="all",
                   help="which layers learn: all (seed recipe), layer4 + head, or head only")
    p.add_argument("--seed", type=int, default=42, help="training seed (42)")
    p.add_argument("--patience", type=_positive_int, default=3, help="early-stopping patience in epochs (3)")
    p.add_argument("--no-augment", action="store_true", help="turn off augmentation")
    p.add_argument("--no-class-weights", action="store_true", help="plain loss instead of inverse-frequency weights")
    p.add_argument("--workers", type=int, default=1, help="data-loading worker processes (1)")
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu or cuda")
    p.add_argument("--max-train-images", type=_positive_int, help="use a seeded, stratified subset of train")
    p.add_argument("--target-sensitivity", type=_fraction, default=0.95,
                   help="operating threshold is set on val to reach this sensitivity (0.95)")


def _config(args):
    from hub.train import TrainConfig
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                       image_size=args.image_size, weights=args.weights, trainable=args.trainable, seed=args.seed,
                       patience=args.patience, augment=not args.no_augment,
                       class_weights=not args.no_class_weights, num_workers=args.workers, device=args.device,
                       max_train_images=args.max_train_images)


def _print_train(result, paths: HubPaths) -> None:
    print(f"gold test: {result.metrics.summary()}")
    print(f"MLflow run {result.run_id} (dataset {result.dataset_version})"
          + (f", registered as version {result.registered_version}" if result.registered_version else ""))
    print(f"model bundle: {result.bundle_dir}")
    uri = paths.tracking_uri()
    if uri.startswith("sqlite:"):
        print(f"browse the runs: mlflow ui --backend-store-uri {uri}   (then open http://127.0.0.1:5000)")
    else:
        print(f"browse the runs: {uri}")


def run(args, paths: HubPaths) -> int:
    from hub import datastore

    if args.command == "data":
        if args.data_command == "validate":
            report = datastore.validate(args.folder, paths if paths.pool.exists() else None)
            print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
            return 0 if report.accepted else 1
        if args.data_command == "import":
            report, added = datastore.import_data(paths, args.folder, args.source)
            print(report.summary())
            print(f"added {len(added)} images to the pool at {paths.pool}")
            return 0
        if args.data_command == "split":
            s, new = datastore.split(paths, args.gold_frac, args.val_frac, args.seed, args.reset)
            print(("made a new" if new else "kept the existing") + f" split (seed {s.seed}, {len(s.gold)} gold images)")
            print(json.dumps(datastore.training_view(paths).counts()))
            return 0
        st = datastore.status(paths)
        print(json.dumps(st, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in st.items()))
        return 0

    if args.command == "train":
        from hub.pipeline import train_and_evaluate
        result = train_and_evaluate(paths, _config(args), args.target_sensitivity, register=not args.no_register,
                                    resume=args.resume, run_name=args.run_name)
        _print_train(result, paths)
        return 0

    if args.command == "evaluate":
        from hub.pipeline import evaluate_model
        metrics, run_id = evaluate_model(paths, args.model, log=not args.no_log, out_dir=args.plots)
        print(f"gold test: {metrics.summary()}")
        if run_id:
            print(f"MLflow run {run_id}")
        return 0

    if args.command == "export":
        from export.package import ModelPackage
        from hub.packaging import export_model
        out = export_model(paths, args.model, args.version, args.out, int8=not args.no_int8)
        card = ModelPackage.load(out).card
        print(f"model package v{card['version']} at {out}: {', '.join(sorted(card['files']))}")
        v = card["verification"]
        print(f"verified against torch on {v['n']} gold images: max |dp| {v['max_abs_prob_diff']:.1e}, "
              f"min CAM correlation {v['min_cam_correlation']:.4f}")
        if card.get("int8"):
            q = card["int8"]
            print(f"int8 {'kept' if q['kept'] else 'dropped'}: label agreement {q['label_agreement']:.3f}, "
                  f"sensitivity drop {q['sensitivity_drop']:+.3f} on {q['n']} gold images")
        return 0

    if args.command == "demo":
        from hub.model import imagenet_cache_file
        from hub.pipeline import train_and_evaluate
        if args.weights == "auto":
            args.weights = "imagenet" if imagenet_cache_file().is_file() else "none"
            if args.weights == "none":
                print(f"note: no ImageNet weights at {imagenet_cache_file()}; training from random init")
        report, added = datastore.import_data(paths, args.data, "sample")
        print(f"[1/3] data: {len(report.accepted)} accepted, {len(report.rejected)} rejected, "
              f"{len(added)} new in the pool at {paths.pool}")
        s, _ = datastore.split(paths)
        print(f"[2/3] split by patient: {json.dumps(datastore.training_view(paths).counts())}")
        print(f"[3/3] training {args.epochs} epochs at {args.image_size}px on the CPU/GPU ...")
        result = train_and_evaluate(paths, _config(args), args.target_sensitivity, run_name="demo")
        _print_train(result, paths)
        return 0
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("mlflow", "alembic", "urllib3", "matplotlib", "PIL", "git"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    telemetry_off()
    paths = HubPaths.from_env(args.home)
    from hub.data import DataError
    from hub.dvc import DvcError
    from hub.model import WeightsError
    errors: tuple[type[BaseException], ...] = (DataError, DvcError, WeightsError, FileNotFoundError, ValueError)
    if args.command == "export":
        from export.onnx_export import ExportError
        errors += (ExportError,)
    try:
        return run(args, paths)
    except errors as e:
        print(f"pneumo-hub: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pneumo-hub: interrupted (a training run can continue with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
