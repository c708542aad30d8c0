"""docs/cel.md documents every extension function with an example, and every example is right.

Each table row ``| `expression` | `result` |`` under "Extension libraries" is
evaluated; the result column is a CEL literal (compared by type and value) or
``error: <part of the message>``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import pytest

from arbiter.policies import cel
from arbiter.policies.cel.extlists import LIST_FUNCTIONS, SET_FUNCTIONS
from arbiter.policies.cel.extmath import MATH_FUNCTIONS
from arbiter.policies.cel.extoptional import OPTIONAL_FUNCTIONS
from arbiter.policies.cel.extstrings import STRING_FUNCTIONS

DOC: Final = Path(__file__).resolve().parents[2] / "docs" / "cel.md"
_ROW: Final = re.compile(r"^\| `(?P<expr>.+)` \| `(?P<result>.+)` \|$")


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Extension libraries")
    end = text.index("\n## ", start + 1)
    return text[start:end]


EXAMPLES: Final = [
    (m["expr"], m["result"]) for m in map(_ROW.match, _section().splitlines()) if m is not None
]


def _short(name: str) -> str:
    return (
        name
        if name.startswith(("strings.", "lists.", "sets.", "optional."))
        else name.rsplit(".", maxsplit=1)[-1]
    )


# Functions that are syntax, checked by their own patterns below.
_SYNTAX: Final = {"_?._": ".?", "_[?_]": "[?"}


def test_every_extension_function_has_an_example() -> None:
    exprs = " ".join(expr for expr, _ in EXAMPLES)
    missing = [
        decl.name
        for decl in (
            *STRING_FUNCTIONS,
            *MATH_FUNCTIONS,
            *LIST_FUNCTIONS,
            *SET_FUNCTIONS,
            *(d for d in OPTIONAL_FUNCTIONS if d.name not in _SYNTAX),
        )
        if not re.search(
            rf"(?<![\w.]){re.escape(decl.name)}\(|\.{re.escape(_short(decl.name))}\(", exprs
        )
    ]
    assert not missing
    assert all(spelling in exprs for spelling in _SYNTAX.values())
    assert "[?optional" in exprs and "{?" in exprs  # optional list elements and map entries


@pytest.mark.parametrize(("expr", "result"), EXAMPLES, ids=[e for e, _ in EXAMPLES])
def test_documented_example_evaluates_as_documented(expr: str, result: str) -> None:
    program = cel.compile(expr)
    if result.startswith("error: "):
        with pytest.raises(cel.EvalError, match=re.escape(result.removeprefix("error: "))):
            program.evaluate({})
        return
    got = program.evaluate({})
    want = cel.compile(result).evaluate({})
    assert type(got) is type(want)
    assert got == want
