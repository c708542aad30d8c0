"""The docs-test rules: which blocks run, how markers and outputs attach, what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from markdown_blocks import (
    MarkdownRuleError,
    console_steps,
    output_matches,
    read_blocks,
    rewrite,
)

FENCE = "```"


def blocks_of(tmp_path: Path, markdown: str) -> list[tuple[int, str, str, str, str | None]]:
    (tmp_path / "DOC.md").write_text(markdown.replace("'''", FENCE))
    return [
        (b.line, b.lang, b.directive, b.reason, b.output)
        for b in read_blocks(tmp_path / "DOC.md", tmp_path)
    ]


def refused(tmp_path: Path, markdown: str) -> str:
    with pytest.raises(MarkdownRuleError) as info:
        blocks_of(tmp_path, markdown)
    return str(info.value)


def test_blocks_markers_and_outputs_attach_in_order(tmp_path: Path) -> None:
    markdown = """# Title

'''sh
echo one
'''

'''output
one
'''

- a list item:

  <!-- docs-test: skip: needs a GPU -->
  '''python
  import torch
  '''

<!-- docs-test: server -->
'''sh
make serve
'''

'''yaml
shown: only
'''
"""
    assert blocks_of(tmp_path, markdown) == [
        (3, "sh", "run", "", "one\n"),
        (14, "python", "skip", "needs a GPU", None),
        (19, "sh", "server", "", None),
        (23, "yaml", "run", "", None),
    ]


@pytest.mark.parametrize(
    ("markdown", "message"),
    [
        ("'''\nls\n'''\n", "DOC.md:1: fenced block without a language"),
        ("text\n\n    indented code\n", "DOC.md:3: indented code block"),
        (
            "<!-- docs-test: skip -->\n'''sh\nls\n'''\n",
            "DOC.md:2: `docs-test: skip` needs a reason",
        ),
        ("<!-- docs-test: later: x -->\n'''sh\nls\n'''\n", "unknown docs-test directive `later`"),
        ("<!-- docs-test skip: x -->\n'''sh\nls\n'''\n", "DOC.md:2: malformed docs-test marker"),
        ("<!-- docs-test: server: x -->\n'''sh\nls\n'''\n", "`docs-test: server` takes no"),
        ("<!-- docs-test: skip: x -->\n'''yaml\na: 1\n'''\n", "marker on a `yaml` block"),
        (
            "<!-- docs-test: skip: x -->\n\ntext\n\n'''sh\nls\n'''\n",
            "DOC.md:1: docs-test marker not",
        ),
        ("'''output\nx\n'''\n", "DOC.md:1: an `output` block must follow a block that runs"),
        ("'''text\nx\n'''\n'''output\nx\n'''\n", "must follow a block that runs"),
        ("'''sh\nls\n'''\n'''output\nx\n'''\n'''output\ny\n'''\n", "a second `output` block"),
        ("'''console\n$ ls\n'''\n'''output\nx\n'''\n", "carries its output after each"),
        ("'''sh\nmake test\n'''\n", "DOC.md:1: this block cannot run inside the test suite"),
        ("'''sh\ndocker build .\n'''\n", "cannot run inside the test suite"),
        ("'''console\n$ pip install x\n'''\n", "cannot run inside the test suite"),
    ],
)
def test_rule_breaks_are_refused_with_the_line(tmp_path: Path, markdown: str, message: str) -> None:
    assert message in refused(tmp_path, markdown)


def test_a_marker_shown_inside_a_block_is_not_a_stray_marker(tmp_path: Path) -> None:
    markdown = "'''markdown\n<!-- docs-test: skip: an example -->\n'''\n"
    assert blocks_of(tmp_path, markdown) == [(1, "markdown", "run", "", None)]


def test_rewrite_points_the_documented_address_and_venv_at_the_test_run() -> None:
    text = (
        ".venv/bin/python demo.py --target 127.0.0.1:50051\n"
        "curl http://localhost:50051/x  # not 127.0.0.1:500510 nor my.venv/bin/x\n"
    )
    assert rewrite(text, {50051: "127.0.0.1:4242"}, Path("/env/bin")) == (
        "/env/bin/python demo.py --target 127.0.0.1:4242\n"
        "curl http://127.0.0.1:4242/x  # not 127.0.0.1:500510 nor my.venv/bin/x\n"
    )


def test_console_steps_pair_commands_with_their_output() -> None:
    text = "$ echo a \\\n  b\na b\n$ true\n$ printf 'x\\n\\ny'\nx\n\ny\n"
    assert console_steps(text) == [
        ("echo a \\\n  b", "a b"),
        ("true", ""),
        ("printf 'x\\n\\ny'", "x\n\ny"),
    ]
    with pytest.raises(MarkdownRuleError):
        console_steps("output first\n$ true\n")


@pytest.mark.parametrize(
    ("want", "got", "matches"),
    [
        ("a  b\nc", "a b\nc\n", True),  # runs of whitespace are equal
        ('{\n  "id": "...",\n  ...\n}', '{\n  "id": "x1",\n  "more": 1\n}', True),
        ("SELECTED", "NOT_SELECTED", False),
        ("one\n", "one\ntwo\n", False),  # the whole output, unless `...` says otherwise
        ("", "", True),
        ("", "something\n", False),
    ],
)
def test_output_matches_doctest_style(want: str, got: str, matches: bool) -> None:
    assert output_matches(want, got) is matches
