"""How numbers are shown in the UI (one definition, shared by the viewer and the triage table)."""
from __future__ import annotations


def percent(p: float) -> str:
    """How a probability or threshold is shown: one decimal, e.g. ``87.3 %``."""
    return f"{p * 100:.1f} %"
