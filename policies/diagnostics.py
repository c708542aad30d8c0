"""Positions and problems in a policy set: what loading and compiling report instead of raising one by one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import msgspec

__all__ = ["Diagnostic", "Location", "PolicyError", "Severity"]

Severity = Literal["error", "warning"]


class Location(msgspec.Struct, frozen=True, order=True):
    """A position in a policy file: ``file`` relative to the set root, 1-based line and column."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class Diagnostic(msgspec.Struct, frozen=True, order=True):
    """One problem. Sorting orders by file, line, column, then severity and message."""

    location: Location
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.severity}: {self.message}"


class PolicyError(Exception):
    """A policy set failed to load or compile; ``diagnostics`` lists every problem (sorted)."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(sorted(diagnostics))
        errors = [d for d in self.diagnostics if d.severity == "error"]
        lines = [str(d) for d in errors[:20]]
        if len(errors) > 20:
            lines.append(f"... and {len(errors) - 20} more")
        super().__init__(f"{len(errors)} error(s) in policy set:\n" + "\n".join(lines))
