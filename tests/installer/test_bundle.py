"""The installer end to end: build the PyInstaller bundle from this tree, install it with install.sh, run it.

One build per session (module fixtures): a real 64 px model package as the feed's champion (version 7),
a real TUF feed on a loopback HTTP server, ``installer/build.py`` taking the champion from it, the
.tar.gz unpacked and installed with ``install.sh --prefix --config``. Each test runs the installed
binary with its own HOME (so its own per-user data folder) and nothing of the dev venv on the path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import sample_files
from tests.desktop.conftest import make_package

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
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
}
BUDGET = 300e6


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[int, Path]:
    out = tmp_path_factory.mktemp("packages")
    return {v: make_package(out, version=v, seed=v, images_per_class=2, int8=False) for v in (7, 8)}


@pytest.fixture(scope="module")
def feed(tmp_path_factory, packages):
    from feed.repository import init_feed, publish
    from feed.server import serve

    base = tmp_path_factory.mktemp("feed")
    root = init_feed(base / "feed", base / "keys")
    publish(base / "feed", base / "keys", packages[7])
    with serve(base / "feed", "127.0.0.1", 0).start() as server:
        yield types.SimpleNamespace(
            url=server.url, root=root, publish=lambda pkg: publish(base / "feed", base / "keys", pkg)
        )


@pytest.fixture(scope="module")
def release(tmp_path_factory, feed) -> Path:
    """``build.py`` from this working tree into a fresh dist/work folder; the .tar.gz it made."""
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):  # CI must build the bundle, never skip it quietly
            pytest.fail("PyInstaller is missing: install the `installer` extra (pip install -e '.[installer]')")
        pytest.skip("PyInstaller is not installed (the `installer` extra)")
    out = tmp_path_factory.mktemp("build")
    t0 = time.monotonic()
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "installer" / "build.py"),
            "--feed-url",
            feed.url,
            "--root",
            str(feed.root),
            "--dist",
            str(out / "dist"),
            "--work",
            str(out / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    print(f"build: {time.monotonic() - t0:.0f} s\n{run.stdout[-1500:]}")
    archives = list((out / "dist").glob("pneumoscan-*-linux-*.tar.gz"))
    assert len(archives) == 1
    return archives[0]


def _unpack(archive: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(dest)], check=True)
    (top,) = dest.iterdir()
    return top


@pytest.fixture(scope="module")
def unpacked(release, tmp_path_factory) -> Path:
    return _unpack(release, tmp_path_factory.mktemp("unpacked"))


@pytest.fixture(scope="module")
def admin_config(tmp_path_factory, feed) -> Path:
    path = tmp_path_factory.mktemp("it") / "config.toml"
    path.write_text(
        f'feed_url = "{feed.url}"\ncheck_interval_hours = 2\nproxy = ""\nvariant = "fp32"\nlocked = ["feed_url"]\n'
    )
    return path


def _install(unpacked: Path, prefix: Path, *extra: str, path: str = "/usr/bin:/bin") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(unpacked / "install.sh"), "--prefix", str(prefix), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env={**_env(prefix.parent / "installer-home"), "PATH": path},
    )


def _as_user(cmd: list[str]) -> list[str]:
    """``cmd`` run by an unprivileged account, as a radiologist would. When the tests run as root: in a user
    namespace (EUID 65534, no capability over this machine's files; the test's files stay its own to delete)."""
    if os.geteuid() != 0:
        return cmd
    if subprocess.run(["unshare", "--user", "true"], capture_output=True).returncode != 0:
        pytest.skip("the tests run as root and cannot drop it (unshare --user)")
    return ["unshare", "--user", *cmd]


def _uninstall(prefix: Path, home: Path, *args: str, as_root: bool = False) -> subprocess.CompletedProcess:
    cmd = ["bash", str(prefix / "lib" / "pneumoscan" / "uninstall.sh"), *args]
    return subprocess.run(cmd if as_root else _as_user(cmd), capture_output=True, text=True, env=_env(home), timeout=60)


def _other_account() -> str | None:
    """An account other than this one that root can run commands as (``runuser``), else None."""
    if os.geteuid() != 0 or not shutil.which("runuser"):
        return None
    return "nobody" if subprocess.run(["getent", "passwd", "nobody"], capture_output=True).returncode == 0 else None


@pytest.fixture(scope="module")
def public_dir():
    """A folder every account can reach (pytest's own folders are root's only when the tests run as root)."""
    path = Path(tempfile.mkdtemp(prefix="pneumoscan-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def installed(unpacked, admin_config, tmp_path_factory):
    prefix = tmp_path_factory.mktemp("prefix")
    run = _install(unpacked, prefix, "--config", str(admin_config))
    assert run.returncode == 0, run.stdout + run.stderr
    return types.SimpleNamespace(
        prefix=prefix, app=prefix / "lib" / "pneumoscan", exe=prefix / "bin" / "pneumo-desktop"
    )


def _env(home: Path) -> dict:
    """A user's environment: a HOME of its own, no venv, no PNEUMO_*/XDG overrides (admin config: the installed one)."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "QT_QPA_PLATFORM": "offscreen"}


def _run(exe: Path, home: Path, *args: str, offline: bool = False) -> subprocess.CompletedProcess:
    cmd = [str(exe), *args]
    if offline:  # a network namespace with no interface up: every address is unreachable, loopback included
        cmd = ["unshare", "--net", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=_env(home))


def _json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): (
            os.readlink(p) if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        )
        for p in sorted(folder.rglob("*"))
    }


def _samples(tmp: Path) -> list[Path]:
    from PIL import Image

    from tests.desktop.conftest import write_dicom

    dcm = write_dicom(tmp / "study.dcm", np.asarray(Image.open(sample_files("PNEUMONIA", 1, offset=3)[0]).convert("L")))
    return [*sample_files("NORMAL", 1, offset=5), *sample_files("PNEUMONIA", 1, offset=5), dcm]


def _source_predict(model_dir: Path, files: list[Path], home: Path) -> list[dict]:
    """The source tree's ``pneumo-desktop predict --model-dir`` (dev venv), as the reference."""
    env = {**_env(home), "PNEUMO_DESKTOP_CONFIG": str(home / "none.toml")}
    home.mkdir(parents=True, exist_ok=True)
    (home / "none.toml").write_text("")
    run = subprocess.run(
        [sys.executable, "-m", "desktop_app.main", "predict", "--model-dir", str(model_dir), *map(str, files)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return _json_lines(run.stdout)


def _same_results(got: list[dict], want: list[dict]) -> None:
    assert [r["file_name"] for r in got] == [r["file_name"] for r in want]
    for g, w in zip(got, want):
        assert (g["label"], g["model_version"], g["sha256"], g["threshold"]) == (
            w["label"],
            w["model_version"],
            w["sha256"],
            w["threshold"],
        )
        assert g["probability"] == pytest.approx(w["probability"], abs=1e-6)


# ----- the bundle --------------------------------------------------------------------------------------------------


def test_bundle_is_versioned_self_contained_and_within_budget(release, unpacked, feed):
    from PyInstaller.archive.readers import pkg_archive_contents

    from desktop_app import __version__

    assert release.name.startswith(f"pneumoscan-{__version__}-linux-")
    bundle = unpacked / "pneumoscan"
    assert (unpacked / "install.sh").is_file() and (bundle / "uninstall.sh").is_file()
    frozen = {m.split(".")[0] for m in pkg_archive_contents(str(bundle / "pneumo-desktop"))}
    on_disk = {p.name.split(".")[0].split("-")[0] for p in (bundle / "_internal").iterdir()}
    assert {"desktop_app", "onnxruntime", "PySide6"} <= frozen | on_disk
    assert not FORBIDDEN & (frozen | on_disk), FORBIDDEN & (frozen | on_disk)
    assert not list(bundle.rglob("libtorch*")) and not list(bundle.rglob("*.pt"))
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file() and not p.is_symlink())
    assert size <= BUDGET, f"{size / 1e6:.0f} MB"
    info = json.loads((bundle / "VERSION").read_text())
    assert (info["app_version"], info["model_version"]) == (__version__, 7)
    assert json.loads((bundle / "resources" / "model" / "model.json").read_text())["version"] == 7
    assert (bundle / "resources" / "root.json").read_bytes() == Path(feed.root).read_bytes()
    print(f"bundle: {size / 1e6:.1f} MB unpacked, {release.stat().st_size / 1e6:.1f} MB as .tar.gz")


def test_installed_layout_and_launcher(installed, admin_config):
    from desktop_app import __version__

    assert installed.exe.is_symlink() and installed.exe.resolve() == (installed.app / "pneumo-desktop").resolve()
    assert (installed.app / "config.toml").read_text() == admin_config.read_text()
    desktop = (installed.prefix / "share" / "applications" / "pneumoscan.desktop").read_text()
    assert f'Exec="{installed.app}/pneumo-desktop" %F' in desktop
    assert f"Icon={installed.app}/share/pneumoscan.png" in desktop and "@APP@" not in desktop
    run = _run(installed.exe, installed.prefix / "home-version", "--version")
    assert run.returncode == 0 and run.stdout.strip() == f"pneumo-desktop {__version__}"


def test_self_test_passes_with_the_installed_config_and_the_feed(installed, feed, tmp_path):
    run = _run(installed.exe, tmp_path / "home", "self-test", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["passed"] and all(c["status"] == "ok" for c in checks.values()), checks
    assert "version 7 (fp32, built in) passes its reference check" in checks["model"]["detail"]
    assert f"{feed.url} is reachable and trusted" in checks["feed"]["detail"]
    assert report["paths"]["admin_config"] == str(installed.app / "config.toml")
    assert report["paths"]["data_dir"] == str(tmp_path / "home" / ".local" / "share" / "pneumoscan")
    text = _run(installed.exe, tmp_path / "home", "self-test")
    assert text.returncode == 0 and text.stdout.rstrip().endswith("Result: PASSED")


def test_bundle_predicts_like_the_source_tree(installed, packages, tmp_path):
    files = _samples(tmp_path)
    run = _run(installed.exe, tmp_path / "home", "predict", *map(str, files))
    assert run.returncode == 0, run.stderr
    got = _json_lines(run.stdout)
    assert [r["model_version"] for r in got] == [7, 7, 7]
    _same_results(got, _source_predict(packages[7], files, tmp_path / "source-home"))


def test_first_start_without_network_predicts_with_the_builtin_model(installed, tmp_path):
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here (unshare --net)")
    home = tmp_path / "home"
    st = _run(installed.exe, home, "self-test", "--json", offline=True)
    assert st.returncode == 0, st.stdout + st.stderr  # unreachable feed: a warning, not a failure
    checks = {c["name"]: c for c in json.loads(st.stdout)["checks"]}
    assert checks["feed"]["status"] == "warning" and "Cannot reach the feed" in checks["feed"]["detail"]
    assert checks["model"]["status"] == "ok"
    pred = _run(installed.exe, home, "predict", str(sample_files("PNEUMONIA", 1)[0]), offline=True)
    assert pred.returncode == 0 and _json_lines(pred.stdout)[0]["model_version"] == 7
    up = _run(installed.exe, home, "update", offline=True)
    assert up.returncode == 3 and json.loads(up.stdout)["status"] == "offline"
    assert "Cannot reach the feed" in up.stderr and "Traceback" not in up.stderr


def test_update_takes_the_newer_feed_model_without_touching_the_install(installed, feed, packages, tmp_path):
    home = tmp_path / "home"
    before = _tree_digest(installed.app)
    feed.publish(packages[8])
    up = _run(installed.exe, home, "update")
    assert up.returncode == 0, up.stdout + up.stderr
    assert json.loads(up.stdout) == {"status": "updated", "version": 8, "reason": ""}
    assert (home / ".local" / "share" / "pneumoscan" / "models" / "8" / "model.onnx").is_file()
    files = _samples(tmp_path)
    pred = _run(installed.exe, home, "predict", *map(str, files))
    assert pred.returncode == 0, pred.stderr
    got = _json_lines(pred.stdout)
    assert [r["model_version"] for r in got] == [8, 8, 8]
    _same_results(got, _source_predict(packages[8], files, tmp_path / "source-home"))
    again = _run(installed.exe, home, "update")
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "up to date"
    st = json.loads(_run(installed.exe, home, "self-test", "--json").stdout)
    assert "version 8 (fp32, from the feed)" in {c["name"]: c for c in st["checks"]}["model"]["detail"]
    assert _tree_digest(installed.app) == before


def test_viewer_starts_from_the_launcher_command(installed, tmp_path):
    """The .desktop entry runs the bare binary with the chosen files: the viewer opens and predicts the file."""
    audit = tmp_path / "home" / ".local" / "share" / "pneumoscan" / "audit.sqlite"
    image = sample_files("NORMAL", 1)[0]
    proc = subprocess.Popen(
        [str(installed.exe), str(image)],
        env=_env(tmp_path / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    rows: list = []
    try:
        deadline = time.monotonic() + 60
        while not rows and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            if audit.is_file():
                with sqlite3.connect(audit) as db:
                    rows = db.execute("SELECT file_name, label FROM results").fetchall()
        alive = proc.poll() is None
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert alive and rows, f"exit code {proc.returncode}: {out}{err}"
    assert rows[0][0] == image.name and rows[0][1] in ("NORMAL", "PNEUMONIA")
    assert "Traceback" not in err


def test_uninstall_keeps_the_audit_log_and_purge_deletes_only_the_apps_files(unpacked, admin_config, tmp_path):
    prefix, home = tmp_path / "prefix", tmp_path / "home"
    assert _install(unpacked, prefix, "--config", str(admin_config)).returncode == 0
    exe, data = prefix / "bin" / "pneumo-desktop", home / ".local" / "share" / "pneumoscan"
    pred = _run(exe, home, "predict", "--audit", str(data / "audit.sqlite"), str(sample_files("NORMAL", 1)[0]))
    assert pred.returncode == 0, pred.stderr

    run = _uninstall(prefix, home)
    assert run.returncode == 0, run.stderr
    assert not (prefix / "lib" / "pneumoscan").exists() and not exe.exists() and not exe.is_symlink()
    assert not (prefix / "share" / "applications" / "pneumoscan.desktop").exists()
    with sqlite3.connect(data / "audit.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 1
    assert f"Kept the audit log and data in {data}" in run.stdout
    # nothing left of the install: not even the folders install.sh made for it
    assert not (prefix / "bin").exists() and not (prefix / "lib").exists() and not (prefix / "share").exists()
    # the kept data can still be purged later, by the release's own copy of the script
    cmd = ["bash", str(unpacked / "pneumoscan" / "uninstall.sh"), "--prefix", str(prefix), "--purge"]
    late = subprocess.run(_as_user(cmd), capture_output=True, text=True, env=_env(home), timeout=60)
    assert late.returncode == 0, late.stderr
    assert "deleting the data it left only" in late.stdout and not (data / "audit.sqlite").exists()
    cmd = ["bash", str(unpacked / "pneumoscan" / "uninstall.sh"), "--prefix", str(prefix)]
    nothing = subprocess.run(_as_user(cmd), capture_output=True, text=True, env=_env(home), timeout=60)
    assert nothing.returncode == 2 and "run pneumoscan/uninstall.sh --purge from the unpacked release" in nothing.stderr

    assert _install(unpacked, prefix).returncode == 0
    # What the app writes in its data folder, beside a file of the user's and a link out of the folder.
    (data / "models" / "8").mkdir(parents=True)
    (data / "models" / "8" / "model.onnx").write_bytes(b"model")
    (data / "feed").mkdir()
    (data / "feed" / "timestamp.json").write_text("{}")
    (data / "audit.sqlite-wal").write_bytes(b"")
    (data / "audit.sqlite.damaged-20261201T101500Z").write_bytes(b"set aside by the app")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "pneumoscan.log").write_text("not the app's to delete")
    (data / "logs").symlink_to(elsewhere, target_is_directory=True)
    (data / "notes.txt").write_text("the user's own file")
    settings = home / ".config" / "pneumoscan" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text('{"language": "fr"}')
    before = _tree_digest(home)

    dry = _uninstall(prefix, home, "--purge", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"Would delete {data / 'audit.sqlite'}" in dry.stdout and f"Would delete {settings}" in dry.stdout
    assert _tree_digest(home) == before and (prefix / "lib" / "pneumoscan").is_dir()

    run = _uninstall(prefix, home, "--purge")
    assert run.returncode == 0, run.stderr
    assert [p.name for p in data.iterdir()] == ["notes.txt"]  # the audit log, models, feed cache and logs went
    assert (elsewhere / "pneumoscan.log").is_file()  # the link went, not what it pointed to
    assert not settings.parent.exists() and (home / ".config").is_dir()
    assert f"Kept {data}: it holds other files" in run.stdout
    assert not (prefix / "lib" / "pneumoscan").exists()


def test_purge_refuses_a_data_dir_set_by_the_admin_config(unpacked, admin_config, public_dir, tmp_path):
    shared = tmp_path / "shared"  # where IT put every user's data
    (shared / "models" / "8").mkdir(parents=True)
    (shared / "models" / "8" / "model.onnx").write_bytes(b"model")
    with sqlite3.connect(shared / "audit.sqlite") as db:
        db.execute("CREATE TABLE results (id INTEGER)")
        db.execute("INSERT INTO results VALUES (1)")
    config = tmp_path / "config.toml"
    config.write_text(admin_config.read_text() + f'data_dir = "{shared}"\n')
    prefix = public_dir / "prefix-shared-data"  # reachable by another account, for --user below
    assert _install(unpacked, prefix, "--config", str(config)).returncode == 0
    before = _tree_digest(shared)

    run = _uninstall(prefix, tmp_path / "home", "--purge")
    assert run.returncode == 2
    assert (
        f"not purging {shared.resolve()}: the admin config {prefix}/lib/pneumoscan/config.toml sets data_dir"
        in run.stderr
        and "Nothing was changed" in run.stderr
    )
    if os.geteuid() == 0:  # sudo keeps HOME=/root: root must say whose data
        run = _uninstall(prefix, tmp_path / "home", "--purge", as_root=True)
        assert (
            run.returncode == 2 and "as root, --purge deletes the data of the accounts named with --user" in run.stderr
        )
        user = _other_account()
        if user:  # checked as that account (runuser), which runs the installed app itself
            run = _uninstall(prefix, tmp_path / "home", "--purge", "--user", user, as_root=True)
            assert run.returncode == 2 and f"not purging {shared.resolve()}" in run.stderr, run.stderr
    assert _tree_digest(shared) == before
    assert (prefix / "lib" / "pneumoscan" / "pneumo-desktop").is_file() and (prefix / "bin" / "pneumo-desktop").exists()


def test_install_with_umask_077_is_usable_by_every_user(release, public_dir):
    src, prefix = public_dir / "unpacked-077", public_dir / "prefix-077"
    src.mkdir()
    # a user's tar applies the umask (root's keeps the archive's modes unless told not to)
    unpack = f'umask 077 && tar --no-same-permissions -xzf "{release}" -C "{src}"'
    if os.geteuid() == 0:  # root's tar keeps the archive's owner: here as if another account had built it
        unpack += f' && chown -R 65534:65534 "{src}"'
    subprocess.run(["bash", "-c", unpack], check=True)
    (top,) = src.iterdir()
    assert stat.S_IMODE((top / "pneumoscan" / "pneumo-desktop").stat().st_mode) == 0o700
    run = subprocess.run(
        ["bash", "-c", f'umask 077 && exec bash "{top}/install.sh" --prefix "{prefix}"'],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(public_dir / "installer-home"),
    )
    assert run.returncode == 0, run.stderr
    app = prefix / "lib" / "pneumoscan"
    bad = []
    for path in [
        prefix / "lib",
        prefix / "bin",
        prefix / "share" / "applications" / "pneumoscan.desktop",
        app,
        *app.rglob("*"),
    ]:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        mode = stat.S_IMODE(st.st_mode)
        need = 0o755 if stat.S_ISDIR(st.st_mode) or mode & 0o100 else 0o644
        if mode & need != need or mode & 0o022 or st.st_uid != os.getuid():
            bad.append(f"{oct(mode)} uid {st.st_uid} {path}")
    assert not bad, f"{len(bad)} files not for every user, e.g. {bad[:5]}"
    user = _other_account()
    if user:
        other = subprocess.run(
            ["runuser", "-u", user, "--", str(prefix / "bin" / "pneumo-desktop"), "--version"],
            capture_output=True,
            text=True,
            cwd="/",
            timeout=60,
        )
        assert other.returncode == 0 and other.stdout.startswith("pneumo-desktop "), other.stderr


def test_install_and_uninstall_refuse_while_the_app_runs(unpacked, installed, tmp_path):
    before = _tree_digest(installed.app)
    viewer = subprocess.Popen(
        [str(installed.exe)], env=_env(tmp_path / "home"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        run = _install(unpacked, installed.prefix)
        assert run.returncode == 3, run.stdout + run.stderr
        assert f"PneumoScan is running from {installed.app} (process {viewer.pid}" in run.stderr
        assert "close PneumoScan first" in run.stderr
        run = _uninstall(installed.prefix, tmp_path / "home", as_root=True)
        assert run.returncode == 3 and "close PneumoScan first" in run.stderr
        assert _tree_digest(installed.app) == before
        assert viewer.poll() is None, viewer.stderr.read()
        forced = _install(unpacked, installed.prefix, "--force")
        assert forced.returncode == 0, forced.stderr
    finally:
        viewer.terminate()
        viewer.communicate(timeout=30)
    assert _tree_digest(installed.app) == before  # the same release, the admin config kept


def test_a_failed_swap_puts_the_previous_install_back(unpacked, installed, tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "mv").write_text(
        "#!/bin/bash\n# the new copy cannot be moved into place (e.g. a read-only folder)\n"
        'for a; do [[ "$a" != */.pneumoscan-new.* ]] || exit 1; done\n'
        f'exec {shutil.which("mv")} "$@"\n'
    )
    (shim / "mv").chmod(0o755)
    before = _tree_digest(installed.app)
    run = _install(unpacked, installed.prefix, path=f"{shim}:/usr/bin:/bin")
    assert run.returncode == 1 and "the previous install (if any) is unchanged" in run.stderr, run.stderr
    assert _tree_digest(installed.app) == before
    assert [p.name for p in (installed.prefix / "lib").iterdir()] == ["pneumoscan"]  # no copy left beside it
    assert _run(installed.exe, tmp_path / "home", "--version").returncode == 0


def test_install_refuses_a_missing_config_and_keeps_the_current_install(unpacked, installed):
    before = _tree_digest(installed.app)
    run = _install(unpacked, installed.prefix, "--config", str(installed.prefix / "no-such.toml"))
    assert run.returncode == 2 and "does not exist" in run.stderr
    assert _tree_digest(installed.app) == before


# ----- the same commands from the source tree: failures IT must see ---------------------------------------------------


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    """Per-user dirs of this test only, and an admin config the test writes (``app_env(text)``)."""
    monkeypatch.setenv("PNEUMO_DESKTOP_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("PNEUMO_DESKTOP_USER_CONFIG", str(tmp_path / "settings.json"))
    admin = tmp_path / "config.toml"
    monkeypatch.setenv("PNEUMO_DESKTOP_CONFIG", str(admin))
    return lambda text: admin.write_text(text)


def _self_test(capsys) -> tuple[int, dict]:
    from desktop_app.main import main

    code = main(["self-test", "--json"])
    return code, {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}


def test_self_test_fails_on_a_tampered_model_and_a_bad_config(app_env, packages, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(packages[7], model)
    with open(model / "model.onnx", "r+b") as f:  # one flipped byte in the weights
        f.seek(-100, os.SEEK_END)
        byte = f.read(1)
        f.seek(-100, os.SEEK_END)
        f.write(bytes([byte[0] ^ 0xFF]))
    app_env(f'builtin_model = "{model}"\nvariant = "int9"\n')
    code, checks = _self_test(capsys)
    assert code == 1
    assert checks["model"]["status"] == "failed" and "sha256" in checks["model"]["detail"]
    assert checks["settings"]["status"] == "failed"
    assert "variant must be one of fp32, int8" in checks["settings"]["detail"]
    assert checks["audit log"]["status"] == "ok"  # the other checks still ran


def test_self_test_fails_on_a_feed_signed_by_other_keys(app_env, packages, feed, tmp_path, capsys):
    from feed.repository import init_feed

    other_root = init_feed(tmp_path / "other-feed", tmp_path / "other-keys")  # what an impostor feed would ship
    app_env(f'builtin_model = "{packages[7]}"\nfeed_url = "{feed.url}"\ntrusted_root = "{other_root}"\n')
    code, checks = _self_test(capsys)
    assert code == 1 and checks["model"]["status"] == "ok"
    assert checks["feed"]["status"] == "failed" and "failed verification" in checks["feed"]["detail"]


def test_self_test_without_feed_or_model(app_env, capsys):
    app_env("# nothing: no feed, no model\n")
    code, checks = _self_test(capsys)
    assert code == 1 and checks["model"]["status"] == "failed" and "No model is installed" in checks["model"]["detail"]
    assert checks["feed"] == {
        "name": "feed",
        "status": "ok",
        "detail": "no feed configured: the app keeps the model it has",
    }


@pytest.mark.parametrize(
    "argv,expected",
    [
        ([], ["view"]),
        (["{file}"], ["view", "{file}"]),
        (["--model-dir", "x"], ["view", "--model-dir", "x"]),
        (["predict", "{file}"], ["predict", "{file}"]),
        (["--version"], ["--version"]),
        (["no-such-command"], ["no-such-command"]),  # argparse then says "invalid choice", not a window
    ],
)
def test_no_command_opens_the_viewer(argv, expected):
    from desktop_app.main import _default_to_view

    image = str(sample_files("NORMAL", 1)[0])
    fill = lambda args: [a.replace("{file}", image) for a in args]  # noqa: E731
    assert _default_to_view(fill(argv)) == fill(expected)
