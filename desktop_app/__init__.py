"""PneumoScan desktop app (clinic side): PySide6 + onnxruntime; never imports torch, mlflow, airflow or hub."""

from __future__ import annotations


def _version() -> str:
    """The project's version: pyproject.toml in a source tree, else the installed metadata (bundle, wheel).

    The source tree's file wins so that a checkout never reports a stale editable-install version.
    """
    from pathlib import Path

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        try:
            return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
        except (OSError, ValueError, KeyError):
            pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pneumoscan")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _version()
