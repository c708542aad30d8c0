"""Shared by the hostile suites: the long-run switch and the tables printed at the end of a run.

``FULL`` is set by ``ARBITER_RELIABILITY_FULL=1`` (what ``make reliability``
does): the long versions run. Tests add rows with :func:`record_row`;
``tests/reliability/conftest.py`` prints every table when the session ends.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["FULL", "TABLES", "record_row", "render"]

FULL = os.environ.get("ARBITER_RELIABILITY_FULL", "") not in ("", "0")
TABLES: dict[str, list[dict[str, Any]]] = {}


def record_row(table: str, row: dict[str, Any]) -> None:
    """Add a row to one of the tables printed at the end of the session."""
    TABLES.setdefault(table, []).append(row)


def render(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of ``rows`` (columns in order of first appearance)."""
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    head = "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    return "\n".join([head, rule, *body])
