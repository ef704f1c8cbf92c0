"""The UI language: PneumoScan's own translations plus Qt's, chosen from the settings or the OS locale.

English is the source language (no translator needed). Translations are compiled ``.qm`` files in
``desktop_app/translations``, found relative to this module so that a PyInstaller bundle (which keeps
``desktop_app/translations`` as data beside the frozen modules) finds them the same way as the
source tree. ``tools/update_translations.py`` regenerates them from the code.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QTranslator

logger = logging.getLogger(__name__)

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"
SOURCE_LANGUAGE = "en"
LANGUAGES = ("en", "fr")  # what the app can show; "auto" picks one of these from the OS

# The translators installed by the last call, kept alive here (Qt does not own them) and removed on
# the next call, so switching language never stacks two translations.
_installed: list[QTranslator] = []


def resolve_language(language: str, locale: QLocale | None = None) -> str:
    """``language`` if the app has it, else the first of the OS's preferred UI languages it has, else English."""
    if language in LANGUAGES:
        return language
    for name in (locale or QLocale.system()).uiLanguages():  # e.g. ["fr-FR", "en-US"], most preferred first
        code = name.replace("_", "-").split("-")[0].lower()
        if code in LANGUAGES:
            return code
    return SOURCE_LANGUAGE


def qt_translations_dirs() -> list[Path]:
    """Where Qt's own translations (``qtbase_fr.qm``: standard buttons and dialogs) may be."""
    dirs = [Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath))]
    try:  # a PyInstaller bundle may report a path that does not exist; PySide6's own folder is the fallback
        import PySide6

        dirs.append(Path(PySide6.__file__).resolve().parent / "Qt" / "translations")
    except (ImportError, TypeError):
        pass
    return dirs


def _load(app: QCoreApplication, name: str, dirs: list[Path]) -> bool:
    translator = QTranslator(app)
    if any(translator.load(name, str(d)) for d in dirs):
        app.installTranslator(translator)
        _installed.append(translator)
        return True
    translator.deleteLater()
    return False


def install_translator(app: QCoreApplication, language: str = "auto") -> str:
    """Install the translation for ``language`` ("auto", "en", "fr") into ``app``; return the language used.

    Call it before creating any window: widgets translate their strings when they are built. A missing
    ``.qm`` is logged and leaves the UI in English, it never stops the app.
    """
    while _installed:
        app.removeTranslator(_installed.pop())
    lang = resolve_language(language)
    if lang != SOURCE_LANGUAGE and not _load(app, f"pneumoscan_{lang}", [TRANSLATIONS_DIR]):
        logger.warning("No %s translation in %s; the interface stays in English", lang, TRANSLATIONS_DIR)
        lang = SOURCE_LANGUAGE
    if lang != SOURCE_LANGUAGE and not _load(app, f"qtbase_{lang}", qt_translations_dirs()):
        logger.info("Qt's own %s translation is not installed; standard buttons stay in English", lang)
    # Number fields and Qt's dialogs follow the UI language; "auto" keeps the OS's regional formats.
    system = QLocale.system()
    QLocale.setDefault(system if language == "auto" and resolve_language("auto", system) == lang else QLocale(lang))
    return lang
