"""The layering of the house (docs/architecture.md), checked by walking imports.

``policies/`` is pure: it imports nothing of ``server``, ``state``, grpc,
redis or the generated protobuf modules. Its engine evaluates the compiled
plan and never imports the compiler (nor the loader and model it compiles
from). ``state/`` never imports ``server``. ``server/`` -- the transports,
the service core and the CLI -- reaches ``policies`` and ``state`` only
through their front doors, ``arbiter.policies`` and ``arbiter.state`` (their
``__all__``).
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
    """Every module ``path`` imports, relative imports resolved (``policies/engine/x.py``:
    ``from ..plan import P`` is ``arbiter.policies.plan``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ["arbiter", *path.relative_to(ROOT).parent.parts]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1]
            names.add(".".join([*base, node.module] if node.module else base))
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


# The evaluation side of ``policies``: it reads the plan, never what builds it.
ENGINE = ("policies/engine", "policies/activation.py", "policies/plan.py")
COMPILE_SIDE = (
    "arbiter.policies.compiler",
    "arbiter.policies.loader",
    "arbiter.policies.model",
    "arbiter.policies.scenarios",
)


def _engine_files() -> list[Path]:
    files: list[Path] = []
    for entry in ENGINE:
        path = ROOT / entry
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return files


def test_the_engine_never_imports_the_compiler() -> None:
    files = _engine_files()
    assert len(files) > 3
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files
        for module in imported_modules(path)
        if any(module == banned or module.startswith(banned + ".") for banned in COMPILE_SIDE)
    ]
    assert offenders == []


FRONT_DOORS = ("arbiter.policies", "arbiter.state")


def test_the_server_uses_only_the_front_doors() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / "server").rglob("*.py"))
        for module in imported_modules(path)
        if any(module.startswith(door + ".") for door in FRONT_DOORS)
    ]
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
