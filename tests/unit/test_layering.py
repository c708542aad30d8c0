"""The layering of the house (docs/architecture.md), checked by walking imports.

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
        "arbiter.server",
        "arbiter.state",
        "arbiter.v1",
        "arbiter_client",
        "grpc",
        "redis",
        "google.protobuf",
        "socket",
        "asyncio",
    ),
    "state": ("arbiter.server", "grpc", "arbiter.v1", "arbiter_client"),
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


def test_product_packages_are_imported_only_under_the_arbiter_namespace() -> None:
    """``policies``, ``state`` and ``server`` install as ``arbiter.*``; a bare import would break."""
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        if {".venv", "build", "node_modules", ".git"} & set(path.relative_to(ROOT).parts):
            continue
        for module in imported_modules(path):
            if module.split(".")[0] in {"policies", "state", "server"}:
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []
