"""Arbiter's conformance cases for the CEL extension libraries (``tests/conformance/ext/*.json``).

Same JSON format as the public suite (``../shared/conformance/cel/README.md``),
written by hand from cel-go's documentation of each function. Stricter than
the public suite's runner: an ``error`` case without ``check_only`` must fail
at evaluation (not compile), a ``check_only`` error case must be rejected by
the checker, and the error message must contain one of the listed substrings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from arbiter.policies import cel
from arbiter.server.cli_cel import load_harness

_harness = load_harness()
CaseStatus = _harness.CaseStatus

EXT_DIR = Path(__file__).resolve().parent / "ext"
CASES: list[Mapping[str, Any]] = [
    case
    for path in sorted(EXT_DIR.glob("*.json"))
    for case in json.loads(path.read_text(encoding="utf-8"))["tests"]
]


def test_every_library_has_cases() -> None:
    files = {case["file"] for case in CASES}
    assert {"ext/strings", "ext/math", "ext/lists", "ext/sets", "ext/optional"} <= files


@pytest.mark.parametrize("case", CASES, ids=[_harness.case_id(c) for c in CASES])
def test_case(case: Mapping[str, Any]) -> None:
    result = _harness.run_case(case, strict_errors=True)
    assert result.status is CaseStatus.PASSED, f"{result.reason}: got {result.got}"
    wanted = case["expect"].get("error")
    if wanted:
        with pytest.raises(cel.CelError) as raised:
            cel.compile(case["expr"]).evaluate({})
        assert any(part in str(raised.value) for part in wanted), str(raised.value)
