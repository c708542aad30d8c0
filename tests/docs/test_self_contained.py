"""The repository stands on its own: no file points a reader at a design brief that is not in it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
# Folders that are not the project's own text (environments, caches, build output).
NOT_OURS: Final = frozenset(
    {".git", ".venv", "node_modules", "build", "dist", ".mypy_cache", ".ruff_cache"}
)
SUFFIXES: Final = frozenset({".py", ".md", ".toml", ".yaml", ".yml", ".sh", ".lua", ".proto"})
# Spelled so that this file does not match itself.
OUTSIDE_BRIEFS: Final = re.compile(r"\b(DESIGN|STYLE)\.md\b|\bDESIGN\s+§")


def project_files() -> list[Path]:
    files: list[Path] = []
    for path in sorted(ROOT.rglob("*")):
        parts = path.relative_to(ROOT).parts
        if any(part in NOT_OURS or part.endswith(".egg-info") for part in parts):
            continue
        named = path.name in {"Makefile", "Dockerfile", "run"}
        if path.is_file() and (path.suffix in SUFFIXES or named):
            files.append(path)
    return files


def test_no_file_points_at_a_brief_outside_the_repository() -> None:
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in project_files()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE_BRIEFS.search(line)
    ]
    assert hits == [], "point at a document in this repository (docs/) instead:\n" + "\n".join(hits)


def test_the_scan_sees_the_project() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in project_files()}
    expected = {
        "README.md",
        "Makefile",
        ".ci/run",
        "clients/python/README.md",
        "tests/docs/test_self_contained.py",
    }
    assert expected <= names
