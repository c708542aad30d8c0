"""Hostile checks: bad input, broken Redis, stopping servers -- and the tables ``make reliability`` prints.

Every test here reproduces a failure found by attacking a running Arbiter
(see ``docs/runbook.md``). Tests are fast by default (``make test`` runs
them); ``ARBITER_RELIABILITY_FULL=1`` (what ``make reliability`` sets) runs
the long versions -- 10,000 mutated requests per RPC, every fault under load
for longer -- and the session ends by printing the tables the tests recorded
(:func:`hostile.record_row`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).resolve().parent
# Appended, not prepended: other suites import their own `conftest` by name.
for _path in (str(_HERE.parent), str(_HERE.parent / "integration"), str(_HERE)):
    if _path not in sys.path:
        sys.path.append(_path)

from hostile import TABLES, render  # noqa: E402
from redis_support import RedisServer  # noqa: E402


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for name, rows in TABLES.items():
        terminalreporter.write_sep("=", name)
        terminalreporter.write_line(render(rows))


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own (it may be frozen, filled, killed or restarted)."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()
