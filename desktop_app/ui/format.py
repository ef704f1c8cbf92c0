"""How numbers are shown in the UI (one definition, shared by the viewer, the triage table and the audit log)."""
from __future__ import annotations

from PySide6.QtCore import QLocale


def percent(p: float) -> str:
    """A probability or threshold with one decimal in the UI's language: ``87.3 %``, in French ``87,3 %``."""
    return f"{QLocale().toString(p * 100, 'f', 1)} %"
