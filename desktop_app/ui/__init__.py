"""The PySide6 viewer (imported only by ``pneumo-desktop view`` and the Qt tests; nothing runs at import)."""
