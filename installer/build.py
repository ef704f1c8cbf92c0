"""Build the PneumoScan desktop bundle: one folder that runs with no Python on the target.

    python installer/build.py --feed-url https://hub.example.org/feed --root root.json   # champion from the feed
    python installer/build.py --feed .pneumo-demo/feed                                   # a local feed folder
    python installer/build.py --model <package> --root root.json                         # a given package

The model is the feed's current champion, downloaded and verified through TUF like the app does
(or a package folder, checked against its card), so a fresh install predicts offline from its
first start. Steps: PyInstaller runs ``installer/pneumoscan.spec``; the model, the feed's
``root.json``, ``VERSION``, the example admin config (and ``--config`` as ``config.toml``) and the
Linux install files go beside the executable; the bundle is checked (no hub packages, size budget,
its own ``self-test`` passes) and, on Linux, packed as ``pneumoscan-<version>-linux-<arch>.tar.gz``
with ``install.sh`` on top. See docs/install.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from contract.atomic import replacing  # noqa: E402
from desktop_app import __version__  # noqa: E402

BUDGET_MB = 300
NAME = "pneumoscan"
EXE = "pneumo-desktop.exe" if sys.platform == "win32" else "pneumo-desktop"
# Never in a clinic install (docs/design.md); checked on the frozen modules and on the files.
FORBIDDEN = (
    "torch",
    "torchvision",
    "mlflow",
    "airflow",
    "hub",
    "dags",
    "matplotlib",
    "sklearn",
    "scipy",
    "pandas",
    "dvc",
    "onnx",
    "onnxscript",
)


class BuildError(RuntimeError):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--feed-url", help="served feed: bundle its current champion (needs --root)")
    src.add_argument("--feed", type=Path, help="local feed folder: bundle its champion; root.json from its metadata/")
    src.add_argument("--model", type=Path, help="model package folder to bundle (needs --root)")
    p.add_argument("--root", type=Path, help="the feed's trusted root.json")
    p.add_argument(
        "--config",
        type=Path,
        help="admin config to bake in as <app>/config.toml (else none: IT sets it at install time or later)",
    )
    p.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder (default: dist/)")
    p.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller", help="PyInstaller's work folder")
    p.add_argument("--clean", action="store_true", help="empty PyInstaller's cache first")
    p.add_argument("--no-archive", action="store_true", help="leave the folder, skip the .tar.gz (Linux)")
    return p


# ----- inputs --------------------------------------------------------------------------------------


def champion(feed_url: str, root: Path, cache: Path) -> Path:
    """The feed's champion, downloaded and verified exactly as the app would (TUF + card)."""
    from feed.client import FeedClient, FeedClientError

    try:
        return FeedClient(root, feed_url, cache).download()
    except FeedClientError as e:
        raise BuildError(f"cannot take the champion from {feed_url}: {e}") from None


def model_and_root(args: argparse.Namespace, tmp: Path) -> tuple[Path, Path]:
    from contract.package import ModelPackage, PackageError

    root = args.root
    if args.feed:
        from feed.repository import FeedError
        from feed.server import serve

        root = root or args.feed / "metadata" / "root.json"
        try:
            with serve(args.feed, "127.0.0.1", 0).start() as server:
                model = champion(server.url, root, tmp / "feed-cache")
        except FeedError as e:
            raise BuildError(str(e)) from None
    elif root is None:
        raise BuildError("--root is needed with --feed-url or --model: the feed's root.json ships with the app")
    else:
        model = champion(args.feed_url, root, tmp / "feed-cache") if args.feed_url else args.model
    try:
        ModelPackage.load(model)
        from tuf.api.metadata import Metadata, Root

        if not isinstance(Metadata.from_file(str(root)).signed, Root):
            raise ValueError("not root metadata")
    except PackageError as e:
        raise BuildError(f"model package refused: {e}") from None
    except Exception as e:  # tuf raises several types for a file that is not root metadata
        raise BuildError(f"{root} is not a TUF root.json: {e}") from None
    return model, root


# ----- building ------------------------------------------------------------------------------------


def pyinstaller(dist: Path, work: Path, clean: bool) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work),
        *(["--clean"] if clean else []),
        str(HERE / "pneumoscan.spec"),
    ]
    print("build:", " ".join(cmd), flush=True)
    if subprocess.run(cmd, cwd=ROOT).returncode != 0:
        raise BuildError("PyInstaller failed (see above)")
    return dist / NAME


def strip_debug_info(bundle: Path) -> None:
    """Drop the debug info CPython's own libraries carry (libpython alone: ~17 MB of 22).

    Only those: stripping wheels' libraries (``numpy.libs``...) breaks them, which is why the spec
    does not ask PyInstaller to strip everything.
    """
    strip = shutil.which("strip")
    internal = bundle / "_internal"
    targets = [
        p
        for p in [*internal.glob("libpython3*.so*"), *internal.glob("python3*/lib-dynload/*.so")]
        if p.is_file() and not p.is_symlink()
    ]
    if strip and targets:
        subprocess.run([strip, "--strip-debug", *map(str, targets)], check=True)


def add_files(bundle: Path, model: Path, root: Path, config: Path | None, tmp: Path) -> dict:
    """Model, root.json and the install files beside the executable; returns what VERSION records."""
    from contract.package import ModelPackage
    from desktop_app.config import load_settings

    pkg = ModelPackage.load(model)
    res = bundle / "resources"
    shutil.rmtree(res, ignore_errors=True)
    (res / "model").mkdir(parents=True)
    for name in [*pkg.card["files"], "model.json"]:
        shutil.copy2(pkg.path(name), res / "model" / name)
    shutil.copy2(root, res / "root.json")
    shutil.copy2(HERE / "config.example.toml", bundle / "config.example.toml")
    if config is not None:
        problems = load_settings(admin_file=config, user_file=tmp / "no-user-settings.json").problems
        if problems:
            raise BuildError("--config: " + "; ".join(problems))
        shutil.copy2(config, bundle / "config.toml")
    if sys.platform.startswith("linux"):
        shutil.copy2(HERE / "linux" / "uninstall.sh", bundle / "uninstall.sh")
        (bundle / "share").mkdir(exist_ok=True)
        for name in ("pneumoscan.desktop", "pneumoscan.png"):
            shutil.copy2(HERE / "linux" / name, bundle / "share" / name)
    info = {
        "app_version": __version__,
        "model_version": pkg.version,
        "model_created_at": pkg.card["created_at"],
        "platform": f"{sys.platform}-{platform.machine().lower()}",
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (bundle / "VERSION").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


# ----- checks --------------------------------------------------------------------------------------


def frozen_modules(bundle: Path) -> list[str]:
    """Module names frozen into the executable (PyInstaller keeps them in an archive inside it)."""
    from PyInstaller.archive.readers import pkg_archive_contents

    return pkg_archive_contents(str(bundle / EXE))


def forbidden_parts(bundle: Path) -> list[str]:
    """Hub-side packages that made it into the bundle, as modules or as files (should be none)."""
    found = {m for m in frozen_modules(bundle) if m.split(".")[0] in FORBIDDEN}
    internal = bundle / "_internal"
    found |= {p.name for p in internal.iterdir() if p.name.split(".")[0].split("-")[0] in FORBIDDEN}
    return sorted(found)


def sizes(bundle: Path) -> dict[str, int]:
    """Bytes per part of the bundle (regular files only: PyInstaller links some libraries twice)."""
    parts: dict[str, int] = {}
    for f in bundle.rglob("*"):
        if f.is_symlink() or not f.is_file():
            continue
        rel = f.relative_to(bundle).parts
        if rel[0] == "_internal" and len(rel) == 2:
            key = (
                "python runtime"
                if rel[1].startswith(("libpython", "base_library", "python"))
                else "system libraries (X11, glib, ssl, ...)"
            )
        elif rel[0] == "_internal":
            key = {"numpy.libs": "numpy", "pillow.libs": "PIL", "python3.11": "python runtime"}.get(rel[1], rel[1])
        elif rel[0] == "resources":
            key = "built-in model" if rel[1] == "model" else "resources (root.json)"
        else:
            key = "executable and install files"
        parts[key] = parts.get(key, 0) + f.stat().st_size
    return dict(sorted(parts.items(), key=lambda kv: -kv[1]))


def size_table(parts: dict[str, int]) -> str:
    total = sum(parts.values())
    rows = [f"| {k} | {v / 1e6:.1f} | {100 * v / total:.0f} % |" for k, v in parts.items() if v >= 1e6]
    small = sum(v for v in parts.values() if v < 1e6)
    rows.append(f"| other (each under 1 MB) | {small / 1e6:.1f} | {100 * small / total:.0f} % |")
    head = ["| part | MB | share |", "| --- | ---: | ---: |"]
    return "\n".join([*head, *rows, f"| **total** | **{total / 1e6:.1f}** | |"])


def smoke_test(bundle: Path) -> dict:
    """The bundle's own self-test, isolated from this machine's settings and data."""
    with tempfile.TemporaryDirectory() as tmp:
        admin = Path(tmp) / "config.toml"
        admin.write_text("# build check: defaults\n")
        env = {
            **os.environ,
            "PNEUMO_DESKTOP_CONFIG": str(admin),
            "PNEUMO_DESKTOP_DATA": str(Path(tmp) / "data"),
            "PNEUMO_DESKTOP_USER_CONFIG": str(Path(tmp) / "settings.json"),
            "QT_QPA_PLATFORM": "offscreen",
        }
        run = subprocess.run(
            [str(bundle / EXE), "self-test", "--json"], env=env, capture_output=True, text=True, timeout=120
        )
    try:
        report = json.loads(run.stdout)
    except ValueError:
        raise BuildError(f"the bundle's self-test did not run:\n{run.stdout}{run.stderr}") from None
    if run.returncode != 0 or not report["passed"]:
        raise BuildError("the bundle's self-test failed:\n" + json.dumps(report["checks"], indent=2))
    if report["version"] != __version__:  # the bundle reads its version from copied package metadata
        raise BuildError(
            f"the bundle says version {report['version']}, pyproject.toml {__version__}: "
            "reinstall the project (pip install -e .) and build again"
        )
    return report


def archive(bundle: Path, info: dict) -> Path:
    """``<name>.tar.gz`` holding ``<name>/install.sh`` and ``<name>/pneumoscan/`` (the bundle)."""
    name = f"{NAME}-{info['app_version']}-linux-{platform.machine().lower()}"
    out = bundle.parent / f"{name}.tar.gz"
    with replacing(out) as tmp, tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
        tar.add(HERE / "linux" / "install.sh", f"{name}/install.sh")
        tar.add(HERE / "config.example.toml", f"{name}/config.example.toml")
        tar.add(bundle, f"{name}/{NAME}")
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if sys.platform == "darwin":
            raise BuildError(
                "macOS is not supported by build.py (docs/install.md, section 8): run "
                "`pyinstaller installer/pneumoscan.spec` and see there what to add by hand"
            )
        with tempfile.TemporaryDirectory() as tmp:
            model, root = model_and_root(args, Path(tmp))
            bundle = pyinstaller(args.dist.resolve(), args.work.resolve(), args.clean)
            if sys.platform.startswith("linux"):
                strip_debug_info(bundle)
            info = add_files(bundle, model, root, args.config, Path(tmp))
        bad = forbidden_parts(bundle)
        if bad:
            raise BuildError(f"hub-side packages in the bundle: {', '.join(bad)}")
        parts = sizes(bundle)
        print(
            f"\nBundle {bundle} (app {info['app_version']}, model version {info['model_version']}):\n"
            f"{size_table(parts)}\n",
            flush=True,
        )
        if sum(parts.values()) > BUDGET_MB * 1e6:
            raise BuildError(f"the bundle is {sum(parts.values()) / 1e6:.0f} MB, over the {BUDGET_MB} MB budget")
        report = smoke_test(bundle)
        print("self-test:", "; ".join(f"{c['name']} {c['status']}" for c in report["checks"]), flush=True)
        if sys.platform.startswith("linux") and not args.no_archive:
            print(f"archive: {archive(bundle, info)}")
        elif sys.platform == "win32":
            print(
                f'installer: iscc /DAppVersion={info["app_version"]} /DDist="{bundle}" '
                f"{HERE / 'windows' / 'pneumoscan.iss'}"
            )
    except BuildError as e:
        print(f"build: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
