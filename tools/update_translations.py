"""Refresh the desktop app's translations from the code, then compile them.

Usage (from the repository root)::

    .venv/bin/python tools/update_translations.py          # update every desktop_app/translations/*.ts
    .venv/bin/python tools/update_translations.py de       # also start pneumoscan_de.ts

1. ``pyside6-lupdate`` reads every ``desktop_app/**/*.py`` (``self.tr(...)`` in QObject subclasses, with
   the class name as context; ``QCoreApplication.translate("Context", ...)`` elsewhere) and merges the
   strings into ``desktop_app/translations/pneumoscan_<lang>.ts``: existing translations are kept, new
   strings arrive as ``type="unfinished"``, strings gone from the code are dropped.
2. Translate the unfinished ones (Qt Linguist: ``.venv/bin/pyside6-linguist <file>.ts``, or any editor),
   keeping ``%1`` placeholders and ``&`` accelerators (one per letter within a menu).
3. Run this script again: ``pyside6-lrelease`` compiles each ``.ts`` to the ``.qm`` the app loads
   (``desktop_app.i18n``). Commit both files; ``tests/desktop/test_i18n_settings.py`` fails while a string
   is untranslated or a ``.qm`` is stale.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "desktop_app"
TRANSLATIONS = SOURCES / "translations"
PREFIX = "pneumoscan_"


def tool(name: str) -> str:
    """``pyside6-<name>`` from the running interpreter's environment (the venv), else from PATH."""
    found = shutil.which(f"pyside6-{name}", path=str(Path(sys.executable).parent)) or shutil.which(f"pyside6-{name}")
    if not found:
        sys.exit(f"pyside6-{name} not found: install PySide6 (the desktop extra) in this environment")
    return found


def source_files() -> list[Path]:
    """Every Python file of the app, sorted (lupdate ignores files without translatable strings)."""
    return sorted(p for p in SOURCES.rglob("*.py") if "__pycache__" not in p.parts)


def lupdate(ts: Path) -> None:
    """Merge the code's current strings into ``ts`` (created if missing); no line numbers, for quiet diffs."""
    subprocess.run(
        [tool("lupdate"), "-silent", "-no-obsolete", "-locations", "none", *map(str, source_files()), "-ts", str(ts)],
        check=True,
    )


def lrelease(ts: Path, qm: Path) -> None:
    subprocess.run([tool("lrelease"), "-silent", str(ts), "-qm", str(qm)], check=True)


def unfinished(ts: Path) -> int:
    import xml.etree.ElementTree as ET

    return sum(
        1 for t in ET.parse(ts).iter("translation") if t.get("type") == "unfinished" or not (t.text or "").strip()
    )


def main(languages: list[str]) -> int:
    TRANSLATIONS.mkdir(exist_ok=True)
    files = sorted({*TRANSLATIONS.glob(f"{PREFIX}*.ts"), *(TRANSLATIONS / f"{PREFIX}{lang}.ts" for lang in languages)})
    if not files:
        print("no translations yet: pass a language code, e.g. fr", file=sys.stderr)
        return 2
    for ts in files:
        lupdate(ts)
        lrelease(ts, ts.with_suffix(".qm"))
        todo = unfinished(ts)
        print(f"{ts.relative_to(ROOT)}: " + (f"{todo} string(s) to translate" if todo else "complete"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
