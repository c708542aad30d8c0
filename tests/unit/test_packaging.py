"""The wheel carries every product subpackage.

setuptools is given an explicit ``packages`` list (the folders install under the
``arbiter`` namespace through ``package-dir``), so a new subpackage that is not
added to it is silently left out of the wheel: the tests pass from the checkout
and ``arbiter serve`` fails with ImportError after ``pip install``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_subpackage_is_listed_in_pyproject() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    missing = []
    for name, folder in setuptools["package-dir"].items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT / folder)
            dotted = ".".join((name, *rel.parts))
            if dotted not in listed:
                missing.append(dotted)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
