"""Makes the differential helpers importable and reports known differences that were hit."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """List every documented difference that excused a disagreement in this run."""
    test_file = str(Path(_HERE) / "test_cel_differential.py")
    modules = [m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == test_file]
    hits = getattr(modules[0], "KNOWN_DIFFERENCE_HITS", None) if modules else None
    if not hits:
        return
    terminalreporter.section("CEL differential: known differences excused")
    for name, count in sorted(hits.items()):
        terminalreporter.write_line(f"{count:6d}  {name}")
