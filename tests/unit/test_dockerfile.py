"""The Dockerfile parses and references only files that exist (no Docker engine here to build it).

Checks what a reviewer would: instructions are known, every COPY source
(outside ``--from`` stages) exists in the repository and is not excluded by
.dockerignore, the image is multi-stage, runs as a non-root user and has a
health check whose script exists.
"""

from __future__ import annotations

import fnmatch
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, rest = full.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continuation line"
    return result


def ignored(path: str) -> bool:
    ignore = ROOT / ".dockerignore"
    if not ignore.exists():
        return False
    patterns = [
        p.strip() for p in ignore.read_text().splitlines() if p.strip() and not p.startswith("#")
    ]
    excluded = False
    for line in patterns:
        negate = line.startswith("!")
        pattern = line.removeprefix("!").rstrip("/")
        if fnmatch.fnmatch(path.rstrip("/"), pattern) or path.startswith(pattern + "/"):
            excluded = not negate
    return excluded


def test_every_instruction_is_known() -> None:
    unknown = [keyword for keyword, _ in instructions() if keyword not in INSTRUCTIONS]
    assert unknown == []


def test_copy_sources_exist_and_are_not_ignored() -> None:
    missing = []
    for keyword, args in instructions():
        if keyword not in ("COPY", "ADD"):
            continue
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        if "--from=" in args:
            continue
        for source in words[:-1]:
            if not (ROOT / source).exists() or ignored(source):
                missing.append(source)
    assert missing == []


def test_image_is_multi_stage_non_root_with_a_health_check() -> None:
    parsed = instructions()
    assert sum(1 for keyword, _ in parsed if keyword == "FROM") >= 2
    users = [args for keyword, args in parsed if keyword == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    checks = [args for keyword, args in parsed if keyword == "HEALTHCHECK"]
    assert checks
    assert (ROOT / "scripts" / "healthcheck.py").exists()
