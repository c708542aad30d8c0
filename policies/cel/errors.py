"""Errors of the CEL toolchain.

Hierarchy::

    CelError
    ├── CompileError        parse or type-check failure; carries every issue
    └── EvalError           evaluation failed (CEL error value surfaced)
        └── CostLimitError  a runtime cost bound was exceeded

``Issue`` is one located problem (line, column, message). Compile errors
collect all issues of one expression, sorted by position.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CelError", "CompileError", "CostLimitError", "EvalError", "Issue"]


@dataclass(frozen=True, slots=True, order=True)
class Issue:
    """One problem found while compiling, located in the source."""

    line: int
    column: int
    message: str
    source: str = "<expr>"

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}: {self.message}"


class CelError(Exception):
    """Base class of all CEL errors."""


class CompileError(CelError):
    """The expression does not parse or does not type-check."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = sorted(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class EvalError(CelError):
    """Evaluation produced a CEL error (overflow, division by zero, no such
    key, no matching overload, ...). The message is the CEL error text."""


class CostLimitError(EvalError):
    """Evaluation exceeded a cost bound (iterations, string/list size)."""
