"""The fenced code blocks of a Markdown document and their docs-test markers: what the docs tests run.

The rules -- languages that run, ``output`` blocks, ``<!-- docs-test: skip:
REASON -->`` and ``<!-- docs-test: server -->`` markers, what is rewritten --
are documented for writers in docs/contributing.md ("Docs that run").
"""

from __future__ import annotations

import doctest
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from markdown_it import MarkdownIt

RUNNABLE: Final = frozenset({"python", "sh", "bash", "shell", "console"})
OUTPUT: Final = "output"
DIRECTIVES: Final = ("run", "skip", "server")

_MARKER: Final = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<body>.*?)\s*-->\s*$")
_MARKER_PREFIX: Final = re.compile(r"<!--\s*docs-test\b")

# Commands that must never run inside the suite unmarked: the suite itself
# (recursion), Docker (no engine on the build machines), installs (they
# would change the environment that runs the tests).
NEVER_UNMARKED: Final = re.compile(
    r"\bmake\s+(test|check)\b|\bpytest\b|\.ci/run\b|\bdocker\b|\bpip\s+install\b"
)


class MarkdownRuleError(ValueError):
    """A block breaks one of the docs-test rules; the message starts with ``file:line``."""


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced block: where it is, what it says, what the docs claim it prints."""

    path: str  # relative to the repository root
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    directive: str = "run"  # one of DIRECTIVES
    reason: str = ""  # why a skipped block is not run
    output: str | None = None  # the following ``output`` block, if any

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}:{self.lang}"

    @property
    def runnable(self) -> bool:
        return self.lang in RUNNABLE


def read_blocks(path: Path, root: Path) -> list[Block]:
    """Every fenced block of ``path`` (shown-only ones too), outputs attached to their blocks."""
    rel = path.relative_to(root).as_posix()
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    blocks: list[Block] = []
    fences: list[tuple[int, int]] = []  # [first, end) line indexes of each fence
    markers: set[int] = set()  # line indexes of the markers that belong to a fence
    for token in MarkdownIt("commonmark").parse(source):
        if token.type == "code_block":
            line = _first_line(token.map)
            raise MarkdownRuleError(
                f"{rel}:{line}: indented code block; use a fenced block with a language"
            )
        if token.type != "fence":
            continue
        line = _first_line(token.map)
        lang = token.info.split()[0] if token.info.strip() else ""
        where = f"{rel}:{line}"
        if not lang:
            raise MarkdownRuleError(f"{where}: fenced block without a language (e.g. `text`)")
        directive, reason, marker_index = _marker(lines, line - 1, where)
        fences.append((line - 1, (token.map or [0, 0])[1]))
        if marker_index is not None:
            markers.add(marker_index)
        if lang == OUTPUT:
            if directive != "run":
                raise MarkdownRuleError(f"{where}: an `output` block takes no docs-test marker")
            blocks[-1] = _with_output(blocks[-1] if blocks else None, token.content, where)
            continue
        if directive != "run" and lang not in RUNNABLE:
            raise MarkdownRuleError(
                f"{where}: docs-test marker on a `{lang}` block, which never runs"
            )
        if directive == "run" and lang in RUNNABLE and NEVER_UNMARKED.search(token.content):
            raise MarkdownRuleError(
                f"{where}: this block cannot run inside the test suite (the suite itself, "
                "Docker or an install): mark it `<!-- docs-test: skip: REASON -->`"
            )
        blocks.append(Block(rel, line, lang, token.content, directive, reason))
    _no_stray_markers(rel, lines, fences, markers)
    return blocks


def _no_stray_markers(
    rel: str, lines: list[str], fences: list[tuple[int, int]], markers: set[int]
) -> None:
    """A docs-test marker that is not right above a fence would silently do nothing."""
    inside = {i for first, end in fences for i in range(first, end)}
    for index, text in enumerate(lines):
        if _MARKER_PREFIX.search(text) and index not in markers and index not in inside:
            raise MarkdownRuleError(
                f"{rel}:{index + 1}: docs-test marker not directly above a fenced block"
            )


def _first_line(line_map: list[int] | None) -> int:
    return (line_map[0] if line_map else 0) + 1


def _with_output(previous: Block | None, content: str, where: str) -> Block:
    if previous is None or not previous.runnable or previous.directive != "run":
        raise MarkdownRuleError(f"{where}: an `output` block must follow a block that runs")
    if previous.output is not None:
        raise MarkdownRuleError(f"{where}: a second `output` block for {previous.id}")
    if previous.lang == "console":
        raise MarkdownRuleError(f"{where}: a `console` block carries its output after each `$`")
    return replace(previous, output=content)


def _marker(lines: list[str], fence_index: int, where: str) -> tuple[str, str, int | None]:
    """(directive, reason, marker line index) from the last non-blank line before the fence."""
    index = fence_index - 1
    while index >= 0 and not lines[index].strip():
        index -= 1
    above = lines[index] if index >= 0 else ""
    match = _MARKER.match(above)
    if match is None:
        if _MARKER_PREFIX.search(above):
            raise MarkdownRuleError(f"{where}: malformed docs-test marker: {above.strip()}")
        return "run", "", None
    body = match["body"]
    name, _, reason = body.partition(":")
    name, reason = name.strip(), reason.strip()
    if name not in DIRECTIVES[1:]:
        raise MarkdownRuleError(
            f"{where}: unknown docs-test directive `{name}` (known: skip: REASON, server)"
        )
    if name == "skip" and not reason:
        raise MarkdownRuleError(f"{where}: `docs-test: skip` needs a reason after a colon")
    if name == "server" and reason:
        raise MarkdownRuleError(f"{where}: `docs-test: server` takes no argument")
    return name, reason, index


def rewrite(text: str, addresses: Mapping[int, str], bin_dir: Path) -> str:
    """The block as the test runs it.

    ``127.0.0.1:PORT`` and ``localhost:PORT`` become ``addresses[PORT]`` for
    every documented port, and ``.venv/bin/`` becomes ``bin_dir``.
    """
    for port, address in addresses.items():
        text = re.sub(rf"\b(?:127\.0\.0\.1|localhost):{port}\b", address, text)
    return re.sub(r"(?<![\w/.-])\.venv/bin/", f"{bin_dir}/", text)


def console_steps(text: str) -> list[tuple[str, str]]:
    """(command, expected output) pairs of a ``console`` block; ``\\`` continues a command."""
    steps: list[tuple[str, list[str]]] = []
    continuing = False
    for line in text.splitlines():
        if continuing:
            steps[-1] = (steps[-1][0] + "\n" + line, steps[-1][1])
            continuing = line.endswith("\\")
        elif line.startswith("$ "):
            steps.append((line[2:], []))
            continuing = line.endswith("\\")
        elif steps:
            steps[-1][1].append(line)
        elif line.strip():
            raise MarkdownRuleError(f"console block: output before the first `$ `: {line!r}")
    return [(command, "\n".join(out).strip("\n")) for command, out in steps]


_CHECKER: Final = doctest.OutputChecker()
_FLAGS: Final = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def output_matches(want: str, got: str) -> bool:
    """``got`` is what ``want`` documents: doctest rules, ``...`` matches anything."""
    want = want.strip("\n") + "\n"
    got = got.strip("\n") + "\n"
    return bool(_CHECKER.check_output(want, got, _FLAGS))
