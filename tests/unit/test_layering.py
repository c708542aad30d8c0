"""The house rules of DESIGN.md §1, checked by walking imports.

``policies/`` is pure: it imports nothing of ``server``, ``state``, grpc,
redis or the generated protobuf modules. ``state/`` never imports
``server``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "policies": (
        "server",
        "state",
        "grpc",
        "redis",
        "arbiter",
        "google.protobuf",
        "socket",
        "asyncio",
    ),
    "state": ("server", "grpc", "arbiter"),
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_respect_the_layers(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in imported_modules(path):
            for banned in FORBIDDEN[package]:
                if module == banned or module.startswith(banned + "."):
                    offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []
